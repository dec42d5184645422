"""Bar charts with gridlines, axis ticks and labels; questions combine two or more bar values.

Every value is a whole number of gridline steps, so each bar ends exactly on a labelled gridline and
its value can be read from the picture even when no number is printed on the bar.
"""

from __future__ import annotations

import random

from lbdata.sources.synthetic.common import Item, pick_size, unique_distractors
from lbdata.sources.synthetic.draw import BACKGROUNDS, NAMED, Canvas

TOPICS: list[tuple[str, str, list[str]]] = [
    ("Visitors per day", "visitors", ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]),
    ("Books read per month", "books", ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul"]),
    ("Boxes of fruit sold", "boxes", ["Apples", "Pears", "Plums", "Kiwis", "Limes", "Figs", "Mangos"]),
    ("Goals scored per team", "goals", ["Lions", "Hawks", "Bears", "Wolves", "Foxes", "Owls", "Sharks"]),
    ("Members per club", "members", ["Chess", "Art", "Drama", "Music", "Robots", "Science"]),
    ("Cars sold per region", "cars", ["North", "South", "East", "West", "Central"]),
    ("Rainfall per month (mm)", "mm", ["Aug", "Sep", "Oct", "Nov", "Dec", "Jan", "Feb"]),
    ("Trees planted per year", "trees", ["2018", "2019", "2020", "2021", "2022", "2023", "2024"]),
]
STEPS = (1, 2, 5, 10, 20, 25, 50)
KINDS = ("difference", "sum", "range", "total")


def generate(rng: random.Random) -> Item:
    title, unit, pool = rng.choice(TOPICS)
    n = rng.randint(3, min(6, len(pool)))
    start = rng.randint(0, len(pool) - n)
    labels = pool[start:start + n]
    step = rng.choice(STEPS)
    n_steps = rng.randint(max(5, n), 8)
    values = [step * k for k in rng.sample(range(1, n_steps + 1), n)]
    single = rng.random() < 0.5  # one colour for all bars, or one colour each
    colours = [rng.choice(list(NAMED))] * n if single else rng.sample(list(NAMED), n)
    orientation = "vertical" if rng.random() < 0.7 else "horizontal"
    show_values = rng.random() < 0.5
    bars = [{"label": lab, "value": v, "colour": c} for lab, v, c in zip(labels, values, colours, strict=True)]
    kind = rng.choice(KINDS if n <= 5 else KINDS[:3])
    by = {b["label"]: b["value"] for b in bars}

    if kind == "difference":
        a, b = rng.sample(labels, 2)
        if by[a] < by[b]:
            a, b = b, a
        asked = [a, b]
        question = rng.choice([
            f"How much greater is the value for {a} than the value for {b}?",
            f"In the chart, how many more {unit} does {a} have than {b}?",
            f"What is the difference between the {a} bar and the {b} bar?",
            f"By how much does {a} exceed {b}?",
        ])
        answer = by[a] - by[b]
        wrong = [answer + step, answer - step, by[a] + by[b], answer + 2 * step, by[a]]
    elif kind == "sum":
        asked = sorted(rng.sample(labels, rng.choice((2, 3))), key=labels.index)
        names = " and ".join(asked) if len(asked) == 2 else f"{asked[0]}, {asked[1]} and {asked[2]}"
        question = rng.choice([
            f"What is the sum of the values for {names}?",
            f"How many {unit} do {names} have together?",
            f"Add up the bars for {names}. What is the total?",
            f"What do {names} come to in total?",
        ])
        answer = sum(by[x] for x in asked)
        wrong = [answer + step, answer - step, answer + 2 * step, answer - 2 * step]
    elif kind == "range":
        asked = list(labels)
        big, small = ("tallest", "shortest") if orientation == "vertical" else ("longest", "shortest")
        question = rng.choice([
            "What is the difference between the largest and the smallest value in the chart?",
            f"What is the value of the {big} bar minus the value of the {small} bar?",
            "How far apart are the highest and the lowest value shown?",
            f"Subtract the {small} bar's value from the {big} bar's value. What do you get?",
        ])
        ordered = sorted(values)
        answer = ordered[-1] - ordered[0]
        wrong = [ordered[-1] - ordered[1], ordered[-2] - ordered[0], answer + step, answer - step, ordered[-1]]
    else:  # total
        asked = list(labels)
        question = rng.choice([
            "What is the total of all the bars in the chart?",
            f"How many {unit} are there altogether?",
            "Add up every value shown in the chart. What is the sum?",
            f"What is the combined number of {unit} across all categories?",
        ])
        answer = sum(values)
        wrong = [answer + step, answer - step, answer + 2 * step, answer - 2 * step]

    width, height = pick_size(rng)
    scene = {
        "title": title,
        "unit": unit,
        "orientation": orientation,
        "step": step,
        "axis_max": step * n_steps,
        "show_values": show_values,
        "bars": bars,
        "asked": asked,
    }
    canvas = _draw(rng, scene, width, height)
    distractors = unique_distractors(str(answer), [str(w) for w in wrong if w > 0])
    return Item(kind, question, str(answer), scene, canvas, distractors)


def _draw(rng: random.Random, scene: dict, width: int, height: int) -> Canvas:
    canvas = Canvas(width, height, rng.choice(BACKGROUNDS))
    bars, step, axis_max = scene["bars"], scene["step"], scene["axis_max"]
    tick_size, label_size, title_size = rng.randint(12, 14), rng.randint(13, 15), rng.randint(15, 18)
    canvas.text((width / 2, rng.randint(16, 22)), scene["title"], title_size, "dark")
    top = rng.randint(50, 60)
    fill_frac = rng.uniform(0.45, 0.7)
    if scene["orientation"] == "vertical":
        left, right, bottom = rng.randint(46, 58), width - rng.randint(14, 30), height - rng.randint(34, 44)
        scale = (bottom - top) / axis_max
        for k in range(axis_max // step + 1):
            y = bottom - k * step * scale
            canvas.line([(left, y), (right, y)], "grid")
            canvas.text((left - 6, y), str(k * step), tick_size, "dark", "rm")
        slot = (right - left) / len(bars)
        for i, bar in enumerate(bars):
            cx = left + slot * (i + 0.5)
            half = slot * fill_frac / 2
            y = bottom - bar["value"] * scale
            canvas.rect((cx - half, y, cx + half, bottom), bar["colour"], "dark")
            canvas.text((cx, bottom + 8), bar["label"], label_size, "black", "mt")
            if scene["show_values"]:
                canvas.text((cx, y - 4), str(bar["value"]), label_size, "black", "mb")
        canvas.line([(left, top - 6), (left, bottom), (right, bottom)], "dark", 2)
    else:
        longest = max(canvas.text_width(b["label"], label_size) for b in bars)
        left, right, bottom = int(longest) + rng.randint(16, 24), width - rng.randint(26, 40), height - 36
        scale = (right - left) / axis_max
        for k in range(axis_max // step + 1):
            x = left + k * step * scale
            canvas.line([(x, top), (x, bottom)], "grid")
            canvas.text((x, bottom + 6), str(k * step), tick_size, "dark", "mt")
        slot = (bottom - top) / len(bars)
        for i, bar in enumerate(bars):
            cy = top + slot * (i + 0.5)
            half = slot * fill_frac / 2
            x = left + bar["value"] * scale
            canvas.rect((left, cy - half, x, cy + half), bar["colour"], "dark")
            canvas.text((left - 8, cy), bar["label"], label_size, "black", "rm")
            if scene["show_values"]:
                canvas.text((x + 5, cy), str(bar["value"]), label_size, "black", "lm")
        canvas.line([(left, top), (left, bottom), (right + 6, bottom)], "dark", 2)
    return canvas
