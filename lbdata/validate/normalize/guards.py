"""Structural guards: inputs no answer has and sympy may choke on (power towers, huge factorials, deep nesting)."""

from __future__ import annotations

import re

from lbdata.validate.normalize.latex import MAX_ANSWER_CHARS

_TOWER_RE = re.compile(r"\d\s*\}?\s*\^\s*\{?\s*[\d.]+\s*\}?\s*\^|\d\s*\^\s*\{[^{}]*\^")
_BIG_EXP_RE = re.compile(r"\^\s*\{?\s*[+-]?\d{4,}")
_BIG_FACT_RE = re.compile(r"\d{4,}\s*!|\)\s*!\s*!|!\s*!")


_BIG_FACT_ARG_RE = re.compile(r"\^[^!]*\)\s*!|\d{3,}\s*!|\\(?:Gamma|binom)\s*[({]\s*\d{4,}")


def _power_depth(s: str) -> int:
    """How many exponents are nested in each other (``e^{x^{2}}`` → 2)."""
    best = 0
    stack: list[bool] = []  # for each open brace: does it open an exponent?
    depth = 0
    prev = ""
    for c in s:
        if c == "{":
            stack.append(prev == "^")
            depth += prev == "^"
            best = max(best, depth)
        elif c == "}" and stack:
            depth -= stack.pop()
        elif prev == "^" and not c.isspace():
            best = max(best, depth + 1)
        if not c.isspace():
            prev = c
    return best


def too_hard(s: str) -> bool:
    """Inputs no answer has and sympy may choke on: power towers, huge exponents or factorials, deep nesting."""
    if len(s) > MAX_ANSWER_CHARS:
        return True
    if _TOWER_RE.search(s) or _BIG_EXP_RE.search(s) or _BIG_FACT_RE.search(s) or _BIG_FACT_ARG_RE.search(s):
        return True
    if _power_depth(s) >= 3:
        return True
    depth = best = 0
    for c in s:
        if c in "{([":
            depth += 1
            best = max(best, depth)
        elif c in "})]":
            depth -= 1
    return best > 12
