"""Multiple-choice forms of the other families: options A–D, the gold answer is the letter.

The wrong options come from the base family's plausible mistakes (a bar read one gridline off, a
miscounted object, the neighbouring table cell, forgetting to halve an area), so they are tempting.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from lbdata.sources.synthetic import bar_chart, counting, geometry, line_plot, table
from lbdata.sources.synthetic.common import Item

BASES: dict[str, Callable[[random.Random], Item]] = {
    "bar_chart": bar_chart.generate,
    "geometry": geometry.generate,
    "counting": counting.generate,
    "line_plot": line_plot.generate,
    "table": table.generate,
}
LETTERS = "ABCD"


def generate(rng: random.Random) -> Item:
    family = rng.choice(list(BASES))
    while True:
        base = BASES[family](rng)
        wrong = _fill(base.answer, base.distractors)
        if len(wrong) >= 3:
            break
    picked = [wrong[0], *rng.sample(wrong[1:], 2)]
    options = [base.answer, *picked]
    if all(o.lstrip("-").isdigit() for o in options) and rng.random() < 0.5:
        options.sort(key=int)
    else:
        rng.shuffle(options)
    letter = LETTERS[options.index(base.answer)]
    listing = "\n".join(f"({LETTERS[i]}) {o}" for i, o in enumerate(options))
    question = f"{base.question}\nChoices:\n{listing}"
    scene = {"base_family": family, "base_question": base.question, "base_answer": base.answer,
             "base": base.scene, "choices": options, "correct": letter}
    return Item(base.kind, question, letter, scene, base.canvas, [x for x in LETTERS[:4] if x != letter])


def _fill(answer: str, distractors: list[str]) -> list[str]:
    """Distractors, topped up with nearby whole numbers when the answer is one."""
    out = list(distractors)
    if answer.lstrip("-").isdigit():
        value = int(answer)
        for delta in (1, -1, 2, -2, 3, -3, 4, 5):
            if len(out) >= 3:
                break
            cand = str(value + delta)
            if value + delta >= 0 and cand != answer and cand not in out:
                out.append(cand)
    return out
