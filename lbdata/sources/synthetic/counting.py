"""Coloured shapes scattered on a loose grid; count after an operation ("remove all squares; how many
red objects are left?"). Objects of the asked colour with other shapes, and of the asked shape with
other colours, are always present as distractors.
"""

from __future__ import annotations

import math
import random

from lbdata.sources.synthetic.common import Item, pick_size, region, unique_distractors
from lbdata.sources.synthetic.draw import BACKGROUNDS, Canvas

COLOURS = ("red", "blue", "green", "yellow", "purple", "orange")
SHAPES = ("circle", "square", "triangle", "star")
KINDS = ("remove_shape_count_colour", "count_colour_shape", "remove_colour_count_all", "colour_or_shape",
         "add_count_colour", "remove_size_count_shape")
GRID = 5


def plural(shape: str) -> str:
    return f"{shape}s"


def generate(rng: random.Random) -> Item:
    width, height = pick_size(rng)
    kind = rng.choice(KINDS)
    while True:
        objects = _objects(rng, width, height)
        made = _question(rng, kind, objects)
        if made is not None:
            break
    question, answer, params, wrong = made
    scene = {"objects": objects, "rows": GRID, **params}
    canvas = _draw(rng, objects, width, height)
    distractors = unique_distractors(str(answer), [str(w) for w in wrong if w >= 0])
    return Item(kind, question, str(answer), scene, canvas, distractors)


def _objects(rng: random.Random, width: int, height: int) -> list[dict]:
    n = rng.randint(7, 13)
    palette = rng.sample(COLOURS, rng.randint(3, 5))
    shapes = rng.sample(SHAPES, rng.randint(3, 4))
    cells = sorted(rng.sample(range(GRID * GRID), n))
    cw, ch = (width - 24) / GRID, (height - 24) / GRID
    objects = []
    for cell in cells:
        row, col = divmod(cell, GRID)
        size = rng.choice(("small", "large"))
        r = rng.randint(12, 15) if size == "small" else rng.randint(21, 25)
        slack = max(cw / 2 - r - 4, 0)
        x = 12 + cw * (col + 0.5) + rng.uniform(-slack, slack)
        y = 12 + ch * (row + 0.5) + rng.uniform(-min(slack, 6), min(slack, 6))
        objects.append({
            "shape": rng.choice(shapes),
            "colour": rng.choice(palette),
            "size": size,
            "radius": r,
            "x": round(x, 1),
            "y": round(y, 1),
            "row": row,
            "col": col,
            "region": region(x, y, width, height),
        })
    return objects


def _count(objects: list[dict], **match: str) -> int:
    return sum(all(o[k] == v for k, v in match.items()) for o in objects)


def _question(rng: random.Random, kind: str, objects: list[dict]):
    """(question, answer, scene params, wrong answers) of ``kind`` on ``objects``, or None when they cannot ask it."""
    colours = sorted({o["colour"] for o in objects}, key=COLOURS.index)
    shapes = sorted({o["shape"] for o in objects}, key=SHAPES.index)
    return _ASK.get(kind, _remove_size_count_shape)(rng, objects, colours, shapes)


def _remove_shape_count_colour(rng: random.Random, objects: list[dict], colours: list[str], shapes: list[str]):
    options = [(c, s) for c in colours for s in shapes
               if _count(objects, colour=c, shape=s) and _count(objects, colour=c) > _count(objects, colour=c, shape=s)]
    if not options:
        return None
    c, s = rng.choice(options)
    answer = _count(objects, colour=c) - _count(objects, colour=c, shape=s)
    question = rng.choice([
        f"Remove all {plural(s)}. How many {c} objects are left?",
        f"If every {s} is taken away, how many {c} objects remain?",
        f"Ignore the {plural(s)}. How many of the remaining objects are {c}?",
        f"Take away all the {plural(s)}. How many {c} shapes are left in the picture?",
    ])
    return question, answer, {"colour": c, "shape": s}, [answer + 1, answer - 1, _count(objects, colour=c), answer + 2]


def _count_colour_shape(rng: random.Random, objects: list[dict], colours: list[str], shapes: list[str]):
    options = [(c, s) for c in colours for s in shapes if _count(objects, colour=c, shape=s)
               and _count(objects, colour=c) > _count(objects, colour=c, shape=s)
               and _count(objects, shape=s) > _count(objects, colour=c, shape=s)]
    if not options:
        return None
    c, s = rng.choice(options)
    answer = _count(objects, colour=c, shape=s)
    question = rng.choice([
        f"How many {c} {plural(s)} are there?",
        f"Count the {c} {plural(s)} in the image.",
        f"How many {plural(s)} in the picture are {c}?",
        f"What is the number of {c} {plural(s)} shown?",
    ])
    wrong = [answer + 1, answer - 1, _count(objects, colour=c), _count(objects, shape=s), answer + 2]
    return question, answer, {"colour": c, "shape": s}, wrong


def _remove_colour_count_all(rng: random.Random, objects: list[dict], colours: list[str], shapes: list[str]):
    n = len(objects)
    c = rng.choice(colours)
    answer = n - _count(objects, colour=c)
    question = rng.choice([
        f"Remove all {c} objects. How many objects are left?",
        f"If all the {c} shapes are taken away, how many shapes remain?",
        f"How many objects are not {c}?",
        f"Take away every {c} object. How many objects are still in the picture?",
    ])
    return question, answer, {"colour": c}, [answer + 1, answer - 1, n, _count(objects, colour=c), answer + 2]


def _colour_or_shape(rng: random.Random, objects: list[dict], colours: list[str], shapes: list[str]):
    options = [(c, s) for c in colours for s in shapes
               if _count(objects, colour=c) > _count(objects, colour=c, shape=s) < _count(objects, shape=s)]
    if not options:
        return None
    c, s = rng.choice(options)
    both = _count(objects, colour=c, shape=s)
    answer = _count(objects, colour=c) + _count(objects, shape=s) - both
    question = rng.choice([
        f"How many objects are {c} or are {plural(s)} (or both)?",
        f"Count every object that is {c}, is a {s}, or both.",
        f"How many shapes are either {c} or {plural(s)}?",
        f"How many objects are {c}, {plural(s)}, or {c} {plural(s)}?",
    ])
    wrong = [answer + both, answer + 1, answer - 1, answer + 2]
    return question, answer, {"colour": c, "shape": s}, wrong


def _add_count_colour(rng: random.Random, objects: list[dict], colours: list[str], shapes: list[str]):
    c, s = rng.choice(colours), rng.choice(SHAPES)
    extra = rng.randint(1, 3)
    answer = _count(objects, colour=c) + extra
    noun = s if extra == 1 else plural(s)
    question = rng.choice([
        f"Add {extra} {c} {noun}. How many {c} objects are there now?",
        f"Suppose {extra} more {c} {noun} are added. How many {c} objects would there be?",
        f"After adding {extra} {c} {noun}, how many {c} objects are in the picture?",
        f"Put {extra} extra {c} {noun} into the picture. How many {c} objects are there then?",
    ])
    wrong = [answer + 1, answer - 1, answer - extra, answer + 2]
    return question, answer, {"colour": c, "shape": s, "add": extra}, wrong


def _remove_size_count_shape(rng: random.Random, objects: list[dict], colours: list[str], shapes: list[str]):
    size = rng.choice(("small", "large"))
    keep = "large" if size == "small" else "small"
    options = [s for s in shapes if _count(objects, shape=s, size=keep) and _count(objects, shape=s, size=size)]
    if not options:
        return None
    s = rng.choice(options)
    answer = _count(objects, shape=s, size=keep)
    question = rng.choice([
        f"Remove all {size} objects. How many {plural(s)} are left?",
        f"If every {size} shape is taken away, how many {plural(s)} remain?",
        f"Take away the {size} objects. How many {plural(s)} are still there?",
        f"Ignoring all {size} objects, how many {plural(s)} are there?",
    ])
    wrong = [answer + 1, answer - 1, _count(objects, shape=s), answer + 2]
    return question, answer, {"size": size, "shape": s}, wrong


_ASK = {
    "remove_shape_count_colour": _remove_shape_count_colour,
    "count_colour_shape": _count_colour_shape,
    "remove_colour_count_all": _remove_colour_count_all,
    "colour_or_shape": _colour_or_shape,
    "add_count_colour": _add_count_colour,
    "remove_size_count_shape": _remove_size_count_shape,
}


def _draw(rng: random.Random, objects: list[dict], width: int, height: int) -> Canvas:
    canvas = Canvas(width, height, rng.choice(BACKGROUNDS))
    outline = rng.choice((None, "dark"))
    for o in objects:
        x, y, r, fill = o["x"], o["y"], o["radius"], o["colour"]
        if o["shape"] == "circle":
            canvas.circle((x, y), r, fill, outline)
        elif o["shape"] == "square":
            s = r * 0.9
            canvas.rect((x - s, y - s, x + s, y + s), fill, outline)
        elif o["shape"] == "triangle":
            canvas.polygon([(x, y - r), (x + r * 0.95, y + r * 0.75), (x - r * 0.95, y + r * 0.75)], fill, outline)
        else:
            pts = []
            for k in range(10):
                rad = r if k % 2 == 0 else r * 0.45
                ang = -90 + 36 * k
                pts.append((x + rad * math.cos(math.radians(ang)), y + rad * math.sin(math.radians(ang))))
            canvas.polygon(pts, fill, outline)
    return canvas
