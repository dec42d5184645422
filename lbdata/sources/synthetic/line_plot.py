"""Line plots on a grid: a straight line y = mx + c (slope, intercept, value at x) or a data series
(value at a label, increase between two labels, where the maximum is).

Every marked point lies on a gridline crossing, so its value can be read from the axis ticks.
"""

from __future__ import annotations

import random
from fractions import Fraction

from lbdata.sources.synthetic.common import Item, fmt_number, pick_size, unique_distractors
from lbdata.sources.synthetic.draw import BACKGROUNDS, Canvas

LINEAR_KINDS = ("slope", "intercept", "value_at")
DATA_KINDS = ("series_value", "increase", "argmax")
KINDS = LINEAR_KINDS + DATA_KINDS
TOPICS: list[tuple[str, str, list[str]]] = [
    ("Website visits per year (thousands)", "year", ["2017", "2018", "2019", "2020", "2021", "2022", "2023", "2024"]),
    ("Tickets sold per week", "week", ["W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8"]),
    ("Average temperature per month", "month", ["Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct"]),
    ("Plant height by day (cm)", "day", ["D1", "D2", "D3", "D4", "D5", "D6", "D7", "D8"]),
    ("Books borrowed per month", "month", ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug"]),
]
LINE_COLOURS = ("blue", "red", "green", "purple", "orange", "teal")


def generate(rng: random.Random) -> Item:
    if rng.random() < 0.5:
        return _linear(rng)
    return _data(rng)


def _linear(rng: random.Random) -> Item:
    while True:
        n = rng.randint(5, 8)
        step = rng.choice((1, 2, 5))
        k = rng.choice((-3, -2, -1, 1, 2, 3))
        halves = rng.random() < 0.3
        slope = Fraction(step * k, 2) if halves else Fraction(step * k)
        if halves and k % 2 == 0:
            continue
        intercept = step * rng.randint(-3, 10)
        xs = [x for x in range(n + 1) if not halves or x % 2 == 0]
        ys = [intercept + slope * x for x in xs]
        lo, hi = min(ys), max(0, max(ys))
        y_min = int((lo // step) * step) - step if lo <= 0 else 0  # a free step below the lowest point
        y_max = int(-(-hi // step) * step) + step
        if 4 <= (y_max - y_min) // step <= 13:
            break
    points = [{"x": x, "label": str(x), "y": int(y)} for x, y in zip(xs, ys, strict=True)]
    kind = rng.choice(LINEAR_KINDS)
    if kind == "slope":
        i, j = sorted(rng.sample(range(len(points)), 2))
        if j - i < 2 and len(points) > 2:
            i, j = 0, len(points) - 1
        asked = [points[i]["x"], points[j]["x"]]
        answer = fmt_number(slope)
        run = points[j]["x"] - points[i]["x"]
        rise = points[j]["y"] - points[i]["y"]
        wrong = [Fraction(rise + step, run), Fraction(rise - step, run), -slope, slope + 1]
        if rise:
            wrong.insert(2, Fraction(run, rise))
        question = rng.choice([
            "What is the slope of the line?",
            "Find the slope of the line shown in the graph.",
            "What is the rate of change of y with respect to x for this line?",
            "By how much does y change when x increases by 1?",
        ])
    elif kind == "intercept":
        asked = [0]
        answer = fmt_number(intercept)
        wrong = [intercept + step, intercept - step, points[1]["y"], intercept + 2 * step]
        question = rng.choice([
            "What is the y-intercept of the line?",
            "At what value of y does the line cross the y-axis?",
            "What is y when x = 0?",
            "Where does the line meet the vertical axis? Give the y-value.",
        ])
    else:
        p = rng.choice(points[1:])
        asked = [p["x"]]
        answer = fmt_number(p["y"])
        wrong = [p["y"] + step, p["y"] - step, p["y"] + 2 * step, p["y"] - 2 * step]
        question = rng.choice([
            f"What is the value of y at x = {p['x']}?",
            f"Read the graph: what is y when x = {p['x']}?",
            f"Which y-value does the line pass through at x = {p['x']}?",
            f"According to the graph, what is y for x = {p['x']}?",
        ])
    scene = {"series": "linear", "title": "", "x_name": "x", "points": points, "step": step,
             "y_min": y_min, "y_max": y_max, "slope": fmt_number(slope), "intercept": intercept,
             "show_values": rng.random() < 0.35, "asked": asked}
    distractors = unique_distractors(answer, [fmt_number(w) for w in wrong])
    return Item(kind, question, answer, scene, _draw(rng, scene, slope), distractors)


def _data(rng: random.Random) -> Item:
    title, x_name, labels = rng.choice(TOPICS)
    n = rng.randint(5, 8)
    labels = labels[:n]
    step = rng.choice((1, 2, 5, 10, 20, 50))
    n_steps = rng.randint(5, 9)
    kind = rng.choice(DATA_KINDS)
    while True:
        values = [step * rng.randint(1, n_steps) for _ in labels]
        ranked = sorted(values, reverse=True)
        # argmax: one highest point, one runner-up a single gridline below it (a close call worth checking)
        close_top = ranked[0] - ranked[1] == step and ranked[1] > ranked[2]
        rises = any(values[j] > values[i] for i in range(n) for j in range(i + 1, n))
        if (kind != "argmax" or close_top) and (kind != "increase" or rises):
            break
    points = [{"x": i, "label": lab, "y": v} for i, (lab, v) in enumerate(zip(labels, values, strict=True))]
    by = {p["label"]: p["y"] for p in points}
    if kind == "series_value":
        p = rng.choice(points)
        asked = [p["label"]]
        answer = str(p["y"])
        wrong = [p["y"] + step, p["y"] - step, p["y"] + 2 * step, p["y"] - 2 * step]
        question = rng.choice([
            f"What is the value for {p['label']}?",
            f"Read the graph: what value is shown at {p['label']}?",
            f"According to the line graph, what was the value in {x_name} {p['label']}?",
            f"What does the line reach at {p['label']}?",
        ])
    elif kind == "increase":
        pairs = [(a, b) for a in labels for b in labels if labels.index(a) < labels.index(b) and by[b] > by[a]]
        a, b = rng.choice(pairs)
        asked = [a, b]
        diff = by[b] - by[a]
        answer = str(diff)
        wrong = [diff + step, diff - step, by[b], diff + 2 * step]
        question = rng.choice([
            f"How much higher is the value at {b} than at {a}?",
            f"By how much did the value increase from {a} to {b}?",
            f"What is the increase between {a} and {b}?",
            f"How much greater is the {b} value than the {a} value?",
        ])
    else:
        asked = list(labels)
        top = max(points, key=lambda p: p["y"])
        answer = top["label"]
        wrong = [p["label"] for p in sorted(points, key=lambda p: -p["y"]) if p is not top]
        question = rng.choice([
            f"In which {x_name} is the value the highest?",
            f"Which {x_name} shows the largest value?",
            f"At which {x_name} does the line reach its maximum?",
            f"Which {x_name} has the highest point on the graph?",
        ])
    scene = {"series": "data", "title": title, "x_name": x_name, "points": points, "step": step,
             "y_min": 0, "y_max": step * n_steps, "slope": None, "intercept": None,
             "show_values": rng.random() < 0.35, "asked": asked}
    distractors = unique_distractors(answer, [str(w) for w in wrong if not isinstance(w, int) or w > 0])
    return Item(kind, question, answer, scene, _draw(rng, scene), distractors)


def _draw(rng: random.Random, scene: dict, slope: Fraction = Fraction(0)) -> Canvas:
    width, height = pick_size(rng)
    canvas = Canvas(width, height, rng.choice(BACKGROUNDS))
    tick = rng.randint(12, 14)
    if scene["title"]:
        canvas.text((width / 2, 18), scene["title"], rng.randint(14, 16), "dark")
    left, right = rng.randint(44, 56), width - rng.randint(18, 30)
    top, bottom = rng.randint(40, 52), height - rng.randint(34, 42)
    points, step, y_min, y_max = scene["points"], scene["step"], scene["y_min"], scene["y_max"]
    x_max = max(p["x"] for p in points) if scene["series"] == "linear" else len(points) - 1
    pad = 0 if scene["series"] == "linear" else 0.5

    def px(x: float) -> float:
        return left + (x + pad) / (x_max + 2 * pad) * (right - left)

    def py(y: float) -> float:
        return bottom - (y - y_min) / (y_max - y_min) * (bottom - top)

    for y in range(y_min, y_max + 1, step):
        canvas.line([(left, py(y)), (right, py(y))], "grid")
        canvas.text((left - 6, py(y)), str(y), tick, "dark", "rm")
    if scene["series"] == "linear":
        for x in range(x_max + 1):
            canvas.line([(px(x), top), (px(x), bottom)], "grid")
            canvas.text((px(x), bottom + 6), str(x), tick, "dark", "mt")
        canvas.line([(left, py(0)), (right, py(0))], "dark", 2)
        canvas.line([(left, top - 4), (left, bottom)], "dark", 2)
        canvas.text((right - 4, py(0) - 10), "x", tick + 1, "dark")
        canvas.text((left, top - 18), "y", tick + 1, "dark")
    else:
        for p in points:
            canvas.line([(px(p["x"]), top), (px(p["x"]), bottom)], "grid")
            canvas.text((px(p["x"]), bottom + 6), p["label"], tick, "dark", "mt")
        canvas.line([(left, top - 4), (left, bottom), (right, bottom)], "dark", 2)
    ink = rng.choice(LINE_COLOURS)
    if scene["series"] == "linear":
        c = scene["intercept"]
        canvas.line([(px(0), py(c)), (px(x_max), py(c + slope * x_max))], ink, 2)
    else:
        canvas.line([(px(p["x"]), py(p["y"])) for p in points], ink, 2)
    r = rng.randint(4, 5)
    for i, p in enumerate(points):
        canvas.circle((px(p["x"]), py(p["y"])), r, ink, "dark")
        if scene["show_values"]:
            # put the number where neither neighbouring segment runs
            last = i + 1 == len(points)
            ahead = p["y"] if last else points[i + 1]["y"]
            behind = points[i - 1]["y"] if i else p["y"]
            x, y = px(p["x"]), py(p["y"])
            if i == 0:
                spot = (x + 7, y + 7, "lt") if ahead > p["y"] else (x + 7, y - 7, "lb")
            elif last:
                spot = (x - 7, y + 7, "rt") if behind > p["y"] else (x - 7, y - 7, "rb")
            elif ahead <= p["y"] and behind <= p["y"]:
                spot = (x, y - 9, "mb")
            elif ahead >= p["y"] and behind >= p["y"]:
                spot = (x, y + 9, "mt")
            else:
                spot = (x - 7, y - 7, "rb") if ahead > behind else (x + 7, y - 7, "lb")
            canvas.text(spot[:2], str(p["y"]), tick, "black", spot[2], boxed=True)
    return canvas
