"""Tables of numbers: which row is largest or smallest, column and row totals, differences of cells."""

from __future__ import annotations

import random

from lbdata.sources.synthetic.common import Item, pick_size, unique_distractors
from lbdata.sources.synthetic.draw import BACKGROUNDS, HEADERS, Canvas

TOPICS: list[tuple[str, str, list[str], list[str]]] = [
    ("Test scores", "Student", ["Ana", "Ben", "Cleo", "Dev", "Eli", "Fay"], ["Math", "Art", "Music", "Science"]),
    ("Fruit sold (boxes)", "Fruit", ["Apples", "Pears", "Plums", "Kiwis", "Limes", "Figs"], ["Mon", "Tue", "Wed", "Thu"]),
    ("Tickets sold", "Show", ["Drama", "Comedy", "Musical", "Ballet", "Opera"], ["Week 1", "Week 2", "Week 3"]),
    ("Points scored", "Team", ["Lions", "Hawks", "Bears", "Wolves", "Foxes", "Owls"], ["Game 1", "Game 2", "Game 3"]),
    ("Rainfall (mm)", "City", ["Oslo", "Rome", "Lima", "Cairo", "Perth", "Tokyo"], ["Jan", "Apr", "Jul", "Oct"]),
]
KINDS = ("largest", "smallest", "column_total", "difference", "row_total")


def generate(rng: random.Random) -> Item:
    title, row_name, row_pool, col_pool = rng.choice(TOPICS)
    n_rows = rng.randint(3, 5)
    n_cols = rng.randint(2, min(3, len(col_pool)))
    rows = rng.sample(row_pool, n_rows)
    cols = col_pool[:n_cols]
    lo, hi = rng.choice(((1, 40), (10, 99), (5, 60)))
    kind = rng.choice(KINDS)
    col = rng.choice(cols)
    while True:
        cells = {r: {c: rng.randint(lo, hi) for c in cols} for r in rows}
        column = [cells[r][col] for r in rows]
        if len(set(column)) == len(column):  # no ties in the asked column
            break

    def nbr(r: str) -> int:
        """The value in the asked column of the row just below (or above, for the last row)."""
        i = rows.index(r)
        return cells[rows[i + 1 if i + 1 < len(rows) else i - 1]][col]

    by = {r: cells[r][col] for r in rows}
    if kind in ("largest", "smallest"):
        asked = list(rows)
        pick = max if kind == "largest" else min
        answer = pick(rows, key=lambda r: by[r])
        word = "largest" if kind == "largest" else "smallest"
        question = rng.choice([
            f"Which {row_name.lower()} has the {word} value in the {col} column?",
            f"In the table, which {row_name.lower()} has the {word} {col} value?",
            f"Looking at the {col} column, which row has the {word} number?",
            f"Which {row_name.lower()} scores {'highest' if kind == 'largest' else 'lowest'} in {col}?",
        ])
        ranked = sorted(rows, key=lambda r: -by[r] if kind == "largest" else by[r])
        wrong = ranked[1:]
    elif kind == "column_total":
        asked = list(rows)
        answer = str(sum(by.values()))
        total = sum(by.values())
        wrong = [total - by[r] + nbr(r) for r in rows] + [total + 10, total - 10, total + 1]
        question = rng.choice([
            f"What is the total of the {col} column?",
            f"Add up all the values in the {col} column. What is the sum?",
            f"What is the sum of the {col} values for all rows?",
            f"How much is the {col} column in total?",
        ])
    elif kind == "difference":
        a, b = rng.sample(rows, 2)
        if by[a] < by[b]:
            a, b = b, a
        asked = [a, b]
        diff = by[a] - by[b]
        answer = str(diff)
        wrong = [nbr(a) - by[b], by[a] - nbr(b), diff + 10, diff - 10, by[a] + by[b], diff + 1]
        question = rng.choice([
            f"How much larger is the {col} value of {a} than that of {b}?",
            f"In the {col} column, what is {a}'s value minus {b}'s value?",
            f"By how much does {a} exceed {b} in the {col} column?",
            f"What is the difference between {a} and {b} in {col}?",
        ])
    else:  # row_total
        r = rng.choice(rows)
        asked = [r]
        col = None
        total = sum(cells[r].values())
        answer = str(total)
        i = rows.index(r)
        other = rows[i + 1 if i + 1 < len(rows) else i - 1]
        wrong = [total - cells[r][c] + cells[other][c] for c in cols] + [total + 10, total - 10, total + 1]
        question = rng.choice([
            f"What is the total for {r} across all columns?",
            f"Add up every value in the {r} row. What is the sum?",
            f"What is the sum of the numbers in the row for {r}?",
            f"How much does {r} have in total over all columns?",
        ])
    width, height = pick_size(rng)
    scene = {"title": title, "row_header": row_name, "columns": cols, "rows": [{"name": r, **cells[r]} for r in rows],
             "column": col, "asked": asked}
    distractors = unique_distractors(answer, [str(w) for w in wrong if not isinstance(w, int) or w > 0])
    return Item(kind, question, answer, scene, _draw(rng, scene, width, height), distractors)


def _draw(rng: random.Random, scene: dict, width: int, height: int) -> Canvas:
    canvas = Canvas(width, height, rng.choice(BACKGROUNDS))
    size = rng.randint(14, 17)
    headers = [scene["row_header"], *scene["columns"]]
    body = [[r["name"], *(str(r[c]) for c in scene["columns"])] for r in scene["rows"]]
    col_w = [max(canvas.text_width(t, size) for t in [h, *(row[i] for row in body)]) + rng.randint(22, 34)
             for i, h in enumerate(headers)]
    row_h = rng.randint(30, 40)
    total_w = sum(col_w)
    total_h = row_h * (len(body) + 1)
    x0 = rng.uniform(14, max(width - total_w - 14, 14))
    y0 = rng.uniform(48, max(height - total_h - 14, 48))
    canvas.text((width / 2, 22), scene["title"], size + 1, "dark")
    header = rng.choice(HEADERS)
    banded = rng.random() < 0.5
    canvas.rect((x0, y0, x0 + total_w, y0 + row_h), header)
    for j in range(len(body)):
        top = y0 + row_h * (j + 1)
        if banded and j % 2 == 1:
            canvas.rect((x0, top, x0 + total_w, top + row_h), "band")
    x = x0
    for i, h in enumerate(headers):
        canvas.text((x + col_w[i] / 2, y0 + row_h / 2), h, size, "white")
        for j, row in enumerate(body):
            canvas.text((x + col_w[i] / 2, y0 + row_h * (j + 1.5)), row[i], size, "black")
        x += col_w[i]
    for j in range(len(body) + 2):
        canvas.line([(x0, y0 + row_h * j), (x0 + total_w, y0 + row_h * j)], "dark")
    x = x0
    for w in [0, *col_w]:
        x += w
        canvas.line([(x, y0), (x, y0 + total_h)], "dark")
    return canvas
