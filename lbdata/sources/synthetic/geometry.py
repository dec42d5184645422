"""Triangles and rectangles with labelled lengths or angles; exact answers (``13``, ``12\\sqrt{2}``, ``35^\\circ``).

The figure is drawn to scale (rotated and mirrored at random), each label sits beside its side or
inside its angle, and the right angle, when there is one, carries a square marker.
"""

from __future__ import annotations

import math
import random
from fractions import Fraction
from typing import NamedTuple

from lbdata.sources.synthetic.common import (
    Item,
    fmt_degrees,
    fmt_number,
    fmt_sqrt,
    pick_size,
    unique_distractors,
)
from lbdata.sources.synthetic.draw import BACKGROUNDS, Canvas, unit

KINDS = ("hypotenuse", "leg", "right_area", "perimeter", "rect_area", "rect_perimeter", "missing_angle")
LETTERS = (("A", "B", "C"), ("P", "Q", "R"), ("X", "Y", "Z"), ("D", "E", "F"), ("K", "L", "M"))
RECT_LETTERS = (("A", "B", "C", "D"), ("P", "Q", "R", "S"), ("E", "F", "G", "H"), ("K", "L", "M", "N"))
TRIPLES = ((3, 4, 5), (5, 12, 13), (8, 15, 17), (6, 8, 10), (9, 12, 15), (7, 24, 25), (20, 21, 29), (12, 16, 20))
LINE_COLOURS = ("dark", "blue", "teal", "purple", "brown")
FILLS = (None, "paper_blue", "paper_cream", "band")


def generate(rng: random.Random) -> Item:
    kind = rng.choice(KINDS)
    unit_name = rng.choice(("", "", "cm", "m"))
    if kind in ("rect_area", "rect_perimeter"):
        return _rectangle(rng, kind, unit_name)
    if kind == "missing_angle":
        return _angles(rng)
    return _triangle_lengths(rng, kind, unit_name)


def _len_label(value: int, unit_name: str) -> str:
    return f"{value} {unit_name}" if unit_name else str(value)


class _RightAsk(NamedTuple):
    """What a right-triangle question marks and asks, and where its vertices lie."""

    sides: dict[str, dict]
    asked: list[str]
    unknown: str
    answer: str
    wrong: list[str]
    question: str
    pts: list[tuple[float, float]]


def _triangle_lengths(rng: random.Random, kind: str, unit_name: str) -> Item:
    v = list(rng.choice(LETTERS))
    if kind == "perimeter":
        return _triangle_perimeter(rng, v, unit_name)
    # right triangles: the right angle at v[1]; legs v0v1 and v1v2, hypotenuse v0v2
    leg1, leg2, hyp = _right_legs(rng)
    ask = {"hypotenuse": _ask_hypotenuse, "leg": _ask_leg}.get(kind, _ask_right_area)
    a = ask(rng, v, unit_name, leg1, leg2, hyp)
    scene = {"shape": "triangle", "vertices": v, "sides": a.sides, "angles": {}, "right_angle": v[1],
             "unit": unit_name, "asked": a.asked, "unknown": a.unknown}
    return Item(kind, a.question, a.answer, scene, _draw_triangle(rng, scene, a.pts),
                unique_distractors(a.answer, a.wrong))


def _triangle_perimeter(rng: random.Random, v: list[str], unit_name: str) -> Item:
    while True:
        a, b, c = (rng.randint(4, 20) for _ in range(3))
        if _min_angle(a, b, c) >= 28:
            break
    # side opposite vertex i: a opposite v0, b opposite v1, c opposite v2
    pts = _points_from_sides(a, b, c)
    lengths = {v[1] + v[2]: a, v[0] + v[2]: b, v[0] + v[1]: c}
    sides: dict[str, dict] = {}
    for name, value in lengths.items():
        sides[name] = {"length": value, "label": _len_label(value, unit_name)}
    order = list(lengths)
    rng.shuffle(order)
    answer = fmt_number(a + b + c)
    ordered = [lengths[n] for n in order]
    wrong = [a + b + c + 1, a + b + c - 1, a + b + c + 2, ordered[0] + ordered[1], a + b + c - 2]
    shape_name = f"triangle {''.join(v)}"
    question = rng.choice([
        f"What is the perimeter of {shape_name}?",
        f"Find the perimeter of {shape_name}.",
        f"The side lengths of {shape_name} are marked. What is its perimeter?",
        f"How long is the boundary of {shape_name} in total?",
    ])
    scene = {"shape": "triangle", "vertices": v, "sides": sides, "angles": {}, "right_angle": None,
             "unit": unit_name, "asked": order, "unknown": "perimeter"}
    return Item("perimeter", question, answer, scene, _draw_triangle(rng, scene, pts),
                unique_distractors(answer, [fmt_number(w) for w in wrong if w > 0]))


def _right_legs(rng: random.Random) -> tuple[int, int, int | None]:
    """Two legs, and the hypotenuse when they come from a Pythagorean triple (None otherwise)."""
    if rng.random() < 0.5:
        leg1, leg2, hyp = rng.choice(TRIPLES)
        if rng.random() < 0.5:
            leg1, leg2 = leg2, leg1
        return leg1, leg2, hyp
    while True:
        leg1, leg2 = rng.randint(2, 15), rng.randint(2, 15)
        if max(leg1, leg2) <= 3 * min(leg1, leg2):
            return leg1, leg2, None


def _ask_hypotenuse(rng: random.Random, v: list[str], unit_name: str, leg1: int, leg2: int,
                    hyp: int | None) -> _RightAsk:
    side1, side2, side_h = v[0] + v[1], v[1] + v[2], v[0] + v[2]
    sides = {side1: {"length": leg1, "label": _len_label(leg1, unit_name)},
             side2: {"length": leg2, "label": _len_label(leg2, unit_name)},
             side_h: {"length": None, "label": rng.choice(("x", "?"))}}
    answer = fmt_sqrt(leg1**2 + leg2**2)
    wrong = [fmt_sqrt((leg1 + 1) ** 2 + leg2**2), fmt_sqrt(leg1**2 + (leg2 + 1) ** 2),
             fmt_sqrt((leg1 - 1) ** 2 + leg2**2), fmt_number(leg1 + leg2)]
    if leg1 != leg2:
        wrong.append(fmt_sqrt(abs(leg1**2 - leg2**2)))
    question = rng.choice([
        f"Triangle {''.join(v)} has a right angle at {v[1]}. How long is {side_h}?",
        f"In the right triangle, find the length of the hypotenuse {side_h}.",
        f"Find the length of side {side_h}. Give an exact answer.",
        f"The angle at {v[1]} is a right angle. What is the exact length of {side_h}?",
    ])
    pts = [(0.0, float(leg1)), (0.0, 0.0), (float(leg2), 0.0)]
    return _RightAsk(sides, [side1, side2], side_h, answer, wrong, question, pts)


def _ask_leg(rng: random.Random, v: list[str], unit_name: str, leg1: int, leg2: int,
             hyp: int | None) -> _RightAsk:
    side1, side2, side_h = v[0] + v[1], v[1] + v[2], v[0] + v[2]
    if hyp is None:
        hyp = max(leg1, leg2) + rng.randint(1, 6)
    sides = {side1: {"length": leg1, "label": _len_label(leg1, unit_name)},
             side_h: {"length": hyp, "label": _len_label(hyp, unit_name)},
             side2: {"length": None, "label": rng.choice(("x", "?"))}}
    other = math.sqrt(hyp**2 - leg1**2)
    pts = [(0.0, float(leg1)), (0.0, 0.0), (other, 0.0)]
    answer = fmt_sqrt(hyp**2 - leg1**2)
    wrong = [fmt_sqrt((hyp + 1) ** 2 - leg1**2)]
    if hyp > leg1 + 1:
        wrong += [fmt_sqrt(hyp**2 - (leg1 + 1) ** 2), fmt_sqrt((hyp - 1) ** 2 - leg1**2)]
    wrong += [fmt_sqrt(hyp**2 + leg1**2), fmt_number(hyp - leg1)]
    question = rng.choice([
        f"Triangle {''.join(v)} has a right angle at {v[1]}. How long is {side2}?",
        f"Find the length of side {side2}. Give an exact answer.",
        f"The angle at {v[1]} is a right angle. What is the exact length of {side2}?",
        f"In the right triangle, the hypotenuse and one leg are marked. Find {side2}.",
    ])
    return _RightAsk(sides, [side_h, side1], side2, answer, wrong, question, pts)


def _ask_right_area(rng: random.Random, v: list[str], unit_name: str, leg1: int, leg2: int,
                    hyp: int | None) -> _RightAsk:
    side1, side2 = v[0] + v[1], v[1] + v[2]
    sides = {side1: {"length": leg1, "label": _len_label(leg1, unit_name)},
             side2: {"length": leg2, "label": _len_label(leg2, unit_name)}}
    answer = fmt_number(Fraction(leg1 * leg2, 2))
    wrong = [fmt_number(leg1 * leg2), fmt_number(Fraction((leg1 + 1) * leg2, 2)),
             fmt_number(Fraction(leg1 * (leg2 + 1), 2)), fmt_number(leg1 + leg2)]
    question = rng.choice([
        f"What is the area of right triangle {''.join(v)}?",
        f"Find the area of triangle {''.join(v)}, which has a right angle at {v[1]}.",
        f"The angle at {v[1]} is a right angle. What is the area of the triangle?",
        f"Compute the area of the right triangle {''.join(v)}.",
    ])
    pts = [(0.0, float(leg1)), (0.0, 0.0), (float(leg2), 0.0)]
    return _RightAsk(sides, [side1, side2], "area", answer, wrong, question, pts)


def _angles(rng: random.Random) -> Item:
    v = list(rng.choice(LETTERS))
    while True:
        a, b = rng.randrange(30, 105, 5), rng.randrange(30, 105, 5)
        c = 180 - a - b
        if c >= 30:
            break
    unknown_label = rng.choice(("x", "?"))
    angles = {v[0]: {"degrees": a, "label": f"{a}°"}, v[1]: {"degrees": b, "label": f"{b}°"},
              v[2]: {"degrees": None, "label": unknown_label}}
    ra, rb = math.radians(a), math.radians(b)
    side_ac = math.sin(rb) / math.sin(math.radians(c))
    pts = [(0.0, 0.0), (1.0, 0.0), (side_ac * math.cos(ra), side_ac * math.sin(ra))]
    answer = fmt_degrees(c)
    wrong = [c + 5, c - 5, c + 10, a + b, 90 - c if c < 90 else c - 10, 360 - a - b]
    name = "".join(v)
    question = rng.choice([
        f"In triangle {name}, what is the measure of angle {v[2]}?",
        f"Find the angle at {v[2]} in triangle {name}.",
        f"Two angles of triangle {name} are marked. What is the third angle, at {v[2]}?",
        "What is the value of x in the triangle, in degrees?" if unknown_label == "x"
        else "What is the size of the angle marked with a question mark?",
    ])
    scene = {"shape": "triangle", "vertices": v, "sides": {}, "angles": angles, "right_angle": None,
             "unit": "", "asked": [v[0], v[1]], "unknown": v[2]}
    distractors = unique_distractors(answer, [fmt_degrees(w) for w in wrong if 0 < w < 180])
    return Item("missing_angle", question, answer, scene, _draw_triangle(rng, scene, pts), distractors)


def _rectangle(rng: random.Random, kind: str, unit_name: str) -> Item:
    v = list(rng.choice(RECT_LETTERS))
    w, h = rng.randint(2, 20), rng.randint(2, 20)
    while w == h:
        h = rng.randint(2, 20)
    # v0 top left, v1 top right, v2 bottom right, v3 bottom left
    horizontal = rng.choice((v[0] + v[1], v[3] + v[2]))
    vertical = rng.choice((v[1] + v[2], v[0] + v[3]))
    sides = {horizontal: {"length": w, "label": _len_label(w, unit_name)},
             vertical: {"length": h, "label": _len_label(h, unit_name)}}
    name = "".join(v)
    if kind == "rect_area":
        answer = fmt_number(w * h)
        wrong = [(w + 1) * h, w * (h + 1), (w - 1) * h, 2 * (w + h), w + h]
        question = rng.choice([
            f"What is the area of rectangle {name}?",
            f"Find the area of the rectangle {name}.",
            f"Two sides of rectangle {name} are labelled. What is its area?",
            f"How large is the area enclosed by rectangle {name}?",
        ])
    else:
        answer = fmt_number(2 * (w + h))
        wrong = [2 * (w + h + 1), 2 * (w + h - 1), w + h, w * h, 2 * (w + h + 2)]
        question = rng.choice([
            f"What is the perimeter of rectangle {name}?",
            f"Find the perimeter of the rectangle {name}.",
            f"Two sides of rectangle {name} are labelled. What is its perimeter?",
            f"How long is the boundary of rectangle {name}?",
        ])
    scene = {"shape": "rectangle", "vertices": v, "sides": sides, "angles": {}, "right_angle": None,
             "unit": unit_name, "asked": [horizontal, vertical], "unknown": "area" if kind == "rect_area" else "perimeter"}
    distractors = unique_distractors(answer, [fmt_number(x) for x in wrong if x > 0])
    return Item(kind, question, answer, scene, _draw_rectangle(rng, scene, w, h), distractors)


def _min_angle(a: int, b: int, c: int) -> float:
    if a + b <= c or a + c <= b or b + c <= a:
        return 0.0
    angles = []
    for x, y, z in ((a, b, c), (b, c, a), (c, a, b)):
        angles.append(math.degrees(math.acos((y * y + z * z - x * x) / (2 * y * z))))
    return min(angles)


def _points_from_sides(a: float, b: float, c: float) -> list[tuple[float, float]]:
    """Vertices v0, v1, v2 with |v1v2| = a, |v0v2| = b, |v0v1| = c."""
    x = (b * b + c * c - a * a) / (2 * c)
    return [(0.0, 0.0), (c, 0.0), (x, math.sqrt(max(b * b - x * x, 0.0)))]


def _fit(rng: random.Random, pts: list[tuple[float, float]], width: int, height: int, margin: int
         ) -> list[tuple[float, float]]:
    theta = rng.uniform(0, 2 * math.pi)
    mirror = rng.random() < 0.5
    out = []
    for x, y in pts:
        if mirror:
            x = -x
        out.append((x * math.cos(theta) - y * math.sin(theta), -(x * math.sin(theta) + y * math.cos(theta))))
    xs, ys = [p[0] for p in out], [p[1] for p in out]
    span_x, span_y = max(xs) - min(xs) or 1.0, max(ys) - min(ys) or 1.0
    scale = min((width - 2 * margin) / span_x, (height - 2 * margin) / span_y) * rng.uniform(0.8, 1.0)
    off_x = margin + rng.uniform(0, width - 2 * margin - span_x * scale)
    off_y = margin + rng.uniform(0, height - 2 * margin - span_y * scale)
    return [((x - min(xs)) * scale + off_x, (y - min(ys)) * scale + off_y) for x, y in out]


def _draw_triangle(rng: random.Random, scene: dict, pts: list[tuple[float, float]]) -> Canvas:
    width, height = pick_size(rng)
    canvas = Canvas(width, height, rng.choice(BACKGROUNDS))
    p = _fit(rng, pts, width, height, margin=rng.randint(58, 70))
    names = scene["vertices"]
    at = dict(zip(names, p, strict=True))
    cx, cy = sum(q[0] for q in p) / 3, sum(q[1] for q in p) / 3
    ink = rng.choice(LINE_COLOURS)
    size = rng.randint(15, 18)
    canvas.polygon(p, rng.choice(FILLS), ink, width=rng.choice((2, 3)))
    if scene["right_angle"]:
        i = names.index(scene["right_angle"])
        o = p[i]
        u1 = unit(p[i - 1][0] - o[0], p[i - 1][1] - o[1])
        u2 = unit(p[(i + 1) % 3][0] - o[0], p[(i + 1) % 3][1] - o[1])
        s = 14
        canvas.line([(o[0] + u1[0] * s, o[1] + u1[1] * s), (o[0] + (u1[0] + u2[0]) * s, o[1] + (u1[1] + u2[1]) * s),
                     (o[0] + u2[0] * s, o[1] + u2[1] * s)], ink, 2)
    for name, (x, y) in at.items():
        ux, uy = unit(x - cx, y - cy)
        canvas.text((x + ux * 17, y + uy * 17), name, size + 1, "black")
    for side, info in scene["sides"].items():
        (x1, y1), (x2, y2) = at[side[0]], at[side[1]]
        mx, my = (x1 + x2) / 2, (y1 + y2) / 2
        nx, ny = unit(-(y2 - y1), x2 - x1)
        if nx * (mx - cx) + ny * (my - cy) < 0:
            nx, ny = -nx, -ny
        half = max(canvas.text_width(info["label"], size) / 2, 8)
        dist = 8 + abs(nx) * half + abs(ny) * 9
        canvas.text((mx + nx * dist, my + ny * dist), info["label"], size, "black")
    for vertex, info in scene["angles"].items():
        i = names.index(vertex)
        o = p[i]
        d1 = (p[i - 1][0] - o[0], p[i - 1][1] - o[1])
        d2 = (p[(i + 1) % 3][0] - o[0], p[(i + 1) % 3][1] - o[1])
        a1, a2 = math.degrees(math.atan2(d1[1], d1[0])), math.degrees(math.atan2(d2[1], d2[0]))
        start, end = (a1, a2) if (a2 - a1) % 360 < 180 else (a2, a1)
        canvas.arc(o, 20, start, end, ink, 2)
        bx, by = unit(unit(*d1)[0] + unit(*d2)[0], unit(*d1)[1] + unit(*d2)[1])
        opening = (end - start) % 360
        dist = min(62.0, 20 / max(math.sin(math.radians(opening) / 2), 0.2) + 12)
        canvas.text((o[0] + bx * dist, o[1] + by * dist), info["label"], size, "black")
    return canvas


def _draw_rectangle(rng: random.Random, scene: dict, w: int, h: int) -> Canvas:
    width, height = pick_size(rng)
    canvas = Canvas(width, height, rng.choice(BACKGROUNDS))
    scale = min((width - 130) / w, (height - 130) / h) * rng.uniform(0.7, 1.0)
    box_w, box_h = max(w * scale, 50), max(h * scale, 50)
    x0 = rng.uniform(60, width - 60 - box_w)
    y0 = rng.uniform(60, height - 60 - box_h)
    x1, y1 = x0 + box_w, y0 + box_h
    ink = rng.choice(LINE_COLOURS)
    size = rng.randint(15, 18)
    canvas.rect((x0, y0, x1, y1), rng.choice(FILLS), ink, width=rng.choice((2, 3)))
    v = scene["vertices"]
    corners = {v[0]: (x0, y0, -1, -1), v[1]: (x1, y0, 1, -1), v[2]: (x1, y1, 1, 1), v[3]: (x0, y1, -1, 1)}
    for name, (x, y, dx, dy) in corners.items():
        canvas.text((x + dx * 13, y + dy * 13), name, size + 1, "black")
    for side, info in scene["sides"].items():
        (xa, ya, _, _), (xb, yb, _, _) = corners[side[0]], corners[side[1]]
        mx, my = (xa + xb) / 2, (ya + yb) / 2
        if ya == yb:  # horizontal side: label above (top) or below (bottom)
            canvas.text((mx, my + (-14 if ya == y0 else 14)), info["label"], size, "black")
        else:
            canvas.text((mx + (10 if xa == x1 else -10), my), info["label"], size, "black", "lm" if xa == x1 else "rm")
    return canvas
