"""Equations and assignments: ``x = 3``, ``|AB| = 5``, ``y = 2x + 1``, and a point's name before its coordinates."""

from __future__ import annotations

import re

from lbdata.validate.normalize.hedges import alternatives
from lbdata.validate.normalize.structures import outer_shape

_LHS = (
    r"(?:m\s*)?\\angle\s*[A-Za-z]{1,3}|\\overline\{[A-Za-z]{1,3}\}|\|\s*[A-Za-z]{1,3}\s*\||[A-Za-z](?:_\{?\w{1,3}\}?)?'?"
    r"|[A-Z]{1,3}|\\(?:theta|alpha|beta|gamma|phi|angle)\b|[A-Za-z]{1,3}\([^()=,]{1,12}\)"
)
_LHS_RE = re.compile(r"^(?P<lhs>" + _LHS + r")\s*=\s*(?P<rhs>.+)$")
_RHS_VAR_RE = re.compile(r"^(?P<rhs>[^=]+?)\s*=\s*(?P<lhs>" + _LHS + r")$")
_INEQ_CHARS_RE = re.compile(r"\\le|\\ge|\\lt|\\gt|<|>|\\ne")


def split_assignment(s: str) -> tuple[str | None, str]:
    """``x = 3`` → ("x", "3"); ``3 = x`` → ("x", "3"); ``|AB| = 5`` → ("|AB|", "5"); ``x = 1 + 2 = 3`` → ("x", "3").

    Anything else → (None, s); a list on the right (``x = 1, y = 2``) is left whole.
    """
    if "=" not in s or _INEQ_CHARS_RE.search(s):
        return None, s
    m = _LHS_RE.match(s) or _RHS_VAR_RE.match(s)
    if m is None:
        return None, s
    rhs = m.group("rhs")
    if len(alternatives(rhs)[0]) > 1:
        return None, s  # "x = 1, y = 2" is a system, leave it to sympy
    rhs = rhs.rsplit("=", 1)[-1].strip()
    if not rhs:
        return None, s
    return re.sub(r"\s+", "", m.group("lhs")), rhs


def is_equation(s: str) -> bool:
    """One ``=`` and no inequality sign: ``y = 2x + 1``, ``y - 2x - 1 = 0``."""
    return (
        s.count("=") == 1
        and not _INEQ_CHARS_RE.search(s)
        and not s.strip().endswith("=")
        and not s.strip().startswith("=")
    )


_POINT_LABEL_RE = re.compile(r"^[A-Z](?:_\{?\w{1,2}\}?|')?\s*(?=\()")


def strip_point_label(s: str) -> str:
    """``A(3,-2)`` → ``(3,-2)``: a point's name in front of its coordinates is dropped."""
    m = _POINT_LABEL_RE.match(s)
    if m and outer_shape(s[m.end() :]) == "()":
        return s[m.end() :]
    return s
