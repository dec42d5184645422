"""What every synthetic family returns, and the exact-answer formatting the scene teacher shares.

A family is a function ``generate(rng) -> Item``: it draws everything from the per-item
``random.Random`` it is given (never the global one), so the same seed and index give the same
problem and the same image bytes in any process.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import sympy

from lbdata.sources.synthetic.draw import Canvas

GENERATOR_VERSION = "synthetic-v1"


@dataclass
class Item:
    """One generated problem before it becomes a ``Problem``."""

    kind: str  # the question kind within the family, e.g. "difference"
    question: str
    answer: str  # exact gold answer
    scene: dict[str, Any]  # every fact that determines the answer; JSON-serialisable
    canvas: Canvas
    distractors: list[str] = field(default_factory=list)  # plausible wrong answers, most plausible first


def fmt_number(value: int | Fraction) -> str:
    """An exact rational as LaTeX: ``7``, ``-3``, ``\\frac{5}{2}``, ``-\\frac{1}{2}``."""
    value = Fraction(value)
    if value.denominator == 1:
        return str(value.numerator)
    sign = "-" if value < 0 else ""
    return f"{sign}\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"


def fmt_sqrt(n: int) -> str:
    """The exact square root of a non-negative integer, simplified: ``13``, ``12\\sqrt{2}``."""
    return sympy.latex(sympy.sqrt(n)).replace(" ", "")


def fmt_degrees(value: int) -> str:
    return f"{value}^\\circ"


def region(x: float, y: float, width: int, height: int) -> str:
    """Where a point lies in the picture, in words ("top left", "centre", "bottom")."""
    col = 0 if x < width / 3 else (1 if x < 2 * width / 3 else 2)
    row = 0 if y < height / 3 else (1 if y < 2 * height / 3 else 2)
    names = [["top left", "top", "top right"], ["left", "centre", "right"], ["bottom left", "bottom", "bottom right"]]
    return names[row][col]


def unique_distractors(answer: str, candidates: list[str]) -> list[str]:
    """Keep candidates that differ from the answer and from each other, in order."""
    out: list[str] = []
    for c in candidates:
        if c != answer and c not in out:
            out.append(c)
    return out


def pick_size(rng: random.Random) -> tuple[int, int]:
    """Canvas width and height: ≤ 448 px and multiples of 28 (one Qwen2.5-VL vision token per block)."""
    return rng.choice((392, 420, 448)), rng.choice((392, 420, 448))
