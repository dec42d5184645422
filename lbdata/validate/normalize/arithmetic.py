"""Plain arithmetic: the exact value of ``2^3+2``, ``2\\times 3``, ``\\frac{6}{4}`` or ``5!`` (a small recursive-descent parser)."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from fractions import Fraction

from lbdata.validate.normalize.latex import matching_brace

_ARITH_OK_RE = re.compile(r"^(?:[\d\s.+\-*/^(){}!]|\\frac|\\dfrac|\\times|\\cdot|\\div|\\left|\\right)+$")
_ARITH_TOKEN_RE = re.compile(r"\d+(?:\.\d+)?|\*\*|[-+*/()!]")
MAX_ARITH_EXPONENT = 64


def _arith_python(s: str) -> str | None:
    t = s.replace("\\left", "").replace("\\right", "").replace("\\dfrac", "\\frac")
    t = t.replace("\\times", "*").replace("\\cdot", "*").replace("\\div", "/")
    for _ in range(20):
        m = re.search(r"\\frac\s*\{", t)
        if m is None:
            break
        end = matching_brace(t, m.end() - 1)
        if end < 0 or end + 1 >= len(t) or t[end + 1] != "{":
            return None
        end2 = matching_brace(t, end + 1)
        if end2 < 0:
            return None
        t = t[: m.start()] + "((" + t[m.end() : end] + ")/(" + t[end + 2 : end2] + "))" + t[end2 + 1 :]
    if "\\" in t:
        return None
    return t.replace("{", "(").replace("}", ")").replace("^", "**")


def arithmetic_value(s: str) -> Fraction | None:
    """The exact value of plain arithmetic (``2^3+2``, ``2\\times 3``, ``\\frac{6}{4}``, ``5!``); else None.

    Only numbers, ``+ - * /``, powers with small integer exponents, factorials up to 20 and brackets.
    """
    if len(s) > 200 or not _ARITH_OK_RE.match(s) or not re.search(r"[-+*/^!]|\\", s.lstrip("+-")):
        return None
    py = _arith_python(s)
    if py is None:
        return None
    tokens = _ARITH_TOKEN_RE.findall(py)
    if "".join(tokens) != re.sub(r"\s+", "", py):
        return None
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def atom() -> Fraction:
        tok = take()
        if tok == "(":
            v = expr()
            if take() != ")":
                raise ValueError
        elif tok in "+-":
            v = atom() if tok == "+" else -atom()
            return v
        elif tok[0].isdigit():
            v = Fraction(Decimal(tok))
        else:
            raise ValueError
        while peek() == "!":
            take()
            if v.denominator != 1 or not 0 <= v <= 20:
                raise ValueError
            v = Fraction(math.factorial(int(v)))
        return v

    def power() -> Fraction:
        base = atom()
        if peek() == "**":
            take()
            exp = power()
            if exp.denominator != 1 or abs(exp) > MAX_ARITH_EXPONENT or (base == 0 and exp < 0):
                raise ValueError
            return base ** int(exp)
        return base

    def term() -> Fraction:
        v = power()
        while peek() in ("*", "/"):
            op, rhs = take(), power()
            if op == "/" and rhs == 0:
                raise ValueError
            v = v * rhs if op == "*" else v / rhs
        return v

    def expr() -> Fraction:
        v = term()
        while peek() in ("+", "-"):
            v = v + term() if take() == "+" else v - term()
        return v

    try:
        value = expr()
    except (ValueError, IndexError, ZeroDivisionError, OverflowError):
        return None
    return value if pos == len(tokens) else None
