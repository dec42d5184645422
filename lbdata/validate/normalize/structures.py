"""Structures: matrices, vectors and tuples, the brackets of a collection, ratios, clock times and interval unions."""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction

from lbdata.validate.normalize.hedges import alternatives
from lbdata.validate.normalize.latex import matching_paren
from lbdata.validate.normalize.numbers import Num, numbers_match, simple_number

_MATRIX_RE = re.compile(
    r"^\\begin\{(?P<env>[pbBvV]?matrix|smallmatrix|array)\}(?:\{[^{}]*\})?(?P<body>.*)\\end\{(?P=env)\}$",
    re.S,
)


def matrix_rows(s: str) -> list[list[str]] | None:
    """The entries of a matrix: ``\\begin{pmatrix}``/``bmatrix``/``matrix``/… or a nested list ``[[1,2],[3,4]]``."""
    t = s.strip()
    if t.startswith("(") and t.endswith(")") and t[1:].lstrip().startswith("\\begin"):
        t = t[1:-1].strip()
    m = _MATRIX_RE.match(t)
    if m:
        rows = [r for r in re.split(r"\\\\", m.group("body")) if r.strip()]
        return [[c.strip() for c in r.split("&")] for r in rows] or None
    if len(s) > 4 and s[0] == "[" and s[-1] == "]" and s[1:].lstrip().startswith(("[", "(")):
        inner, _ = alternatives(s[1:-1])
        if len(inner) < 1 or not all(len(x) > 1 and x[0] in "[(" and x[-1] in "])" for x in inner):
            return None
        rows = [alternatives(x[1:-1])[0] for x in inner]
        return rows if all(rows) else None
    return None


def vector_entries(s: str) -> list[str] | None:
    """The entries of a flat tuple or list written ``(1,2)``, ``[1,2]`` or ``\\langle 1,2\\rangle``."""
    t = s.strip()
    if t.startswith("\\langle") and t.endswith("\\rangle"):
        t = "(" + t[len("\\langle") : -len("\\rangle")] + ")"
    if len(t) > 2 and (t[0], t[-1]) in (("(", ")"), ("[", "]")) and matching_paren(t) == len(t) - 1:
        items, _ = alternatives(t[1:-1])
        if len(items) > 1 and not any(x[0] in "[(" and x[-1] in "])" for x in items if x):
            return items
    return None


def outer_shape(s: str) -> str | None:
    """The brackets around a collection: ``"()"``, ``"[]"``, ``"(]"``, ``"{}"`` for ``\\{…\\}``; None otherwise."""
    if s.startswith("\\{") and s.endswith("\\}"):
        return "{}"
    if len(s) > 2 and s[0] in "([" and s[-1] in ")]" and "," in s:
        return s[0] + s[-1]
    return None


_TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?\s*(?P<half>[ap]\.?\s*m\.?)?$", re.I)
_RATIO_PART = r"\d+(?:\.\d+)?"
_RATIO_RE = re.compile(r"^" + _RATIO_PART + r"(?:\s*(?::|\\colon)\s*" + _RATIO_PART + r")+$")


def clock_minutes(s: str) -> tuple[int, bool] | None:
    """``8:34 PM`` → (1234, True); ``20:34`` → (1234, False); the flag says whether AM/PM was written."""
    m = _TIME_RE.match(s.strip())
    if m is None:
        return None
    h, mins = int(m.group(1)), int(m.group(2))
    half = (m.group("half") or "").lower().replace(".", "").replace(" ", "")
    if mins > 59 or h > 23 or (half and not 1 <= h <= 12):
        return None
    if half:
        h = h % 12 + (12 if half == "pm" else 0)
    return h * 60 + mins, bool(half)


def ratio_parts(s: str) -> list[Fraction] | None:
    """``7:32`` → [7, 32]; ``1 : 2 : 3`` → [1, 2, 3]; anything else → None."""
    if not _RATIO_RE.match(s.strip()):
        return None
    return [Fraction(Decimal(x)) for x in re.split(r"\s*(?::|\\colon)\s*", s.strip())]


def ratios_match(g: str, p: str) -> bool | None:
    """Decide times and ratios: ``20:34`` = ``8:34 PM``; ``7:32`` = ``14:64`` = ``7/32``; None when neither."""
    gt, pt = clock_minutes(g), clock_minutes(p)
    if gt is not None and pt is not None:
        return gt[0] == pt[0]  # two clock times (6:30 is no 3:15)
    gr, pr = ratio_parts(g), ratio_parts(p)
    if gr is None and pr is None:
        return None
    if gr is not None and pr is not None:
        if len(gr) != len(pr) or not any(gr) or not any(pr):
            return False
        k = next(i for i, x in enumerate(gr) if x)
        if not pr[k]:
            return False
        return all(a * pr[k] == b * gr[k] for a, b in zip(gr, pr, strict=True))
    ratio, other = (gr, p) if gr is not None else (pr, g)
    assert ratio is not None
    num = simple_number(other)
    if num is None or len(ratio) != 2 or not ratio[1]:
        return None if num is None else False
    value = Num(ratio[0] / ratio[1])
    return numbers_match(value, num) if gr is not None else numbers_match(num, value)


_CMP_RE = r"(<|>|\\leq?slant|\\geq?slant|\\leq?|\\geq?|\\lt|\\gt)"
_VAR = r"([A-Za-z]|\\theta|\\alpha|\\beta|\\gamma|\\phi)"
_ONE_SIDED_RE = re.compile(r"^" + _VAR + r"\s*" + _CMP_RE + r"\s*([^<>=]+)$")
_ONE_SIDED_REV_RE = re.compile(r"^([^<>=]+?)\s*" + _CMP_RE + r"\s*" + _VAR + r"$")
_TWO_SIDED_RE = re.compile(r"^([^<>=]+?)\s*" + _CMP_RE + r"\s*" + _VAR + r"\s*" + _CMP_RE + r"\s*([^<>=]+)$")
_INTERVAL_RE = re.compile(r"^([(\[])\s*([^,()\[\]]+?)\s*,\s*([^,()\[\]]+?)\s*([)\]])$")
_SET_BUILDER_RE = re.compile(r"^\\\{\s*[A-Za-z]\s*(?:\\mid|\||:)\s*(.+?)\s*\\\}$")
_IN_RE = re.compile(r"^" + _VAR + r"\s*\\in\s*")
_INF = {
    "\\infty": "\\infty",
    "+\\infty": "\\infty",
    "\\inf": "\\infty",
    "oo": "\\infty",
    "infty": "\\infty",
    "-\\infty": "-\\infty",
    "-\\inf": "-\\infty",
    "-oo": "-\\infty",
    "-infty": "-\\infty",
}


def _strict(op: str) -> bool:
    return op in ("<", ">", "\\lt", "\\gt")


def _less(op: str) -> bool:
    return op in ("<", "\\lt") or op.startswith("\\le")


def _inequality_interval(piece: str) -> tuple[str, str, str, str, str] | None:
    """(var, open, left, right, close) of one inequality, ``x > 3`` → ("x", "(", "3", "\\infty", ")")."""
    m = _TWO_SIDED_RE.match(piece)
    if m:
        a, op1, var, op2, b = (x.strip() for x in m.groups())
        if _less(op1) and _less(op2):
            return var, "(" if _strict(op1) else "[", a, b, ")" if _strict(op2) else "]"
        if not _less(op1) and not _less(op2):
            return var, "(" if _strict(op2) else "[", b, a, ")" if _strict(op1) else "]"
        return None
    m = _ONE_SIDED_RE.match(piece)
    if m:
        var, op, a = (x.strip() for x in m.groups())
    else:
        m = _ONE_SIDED_REV_RE.match(piece)
        if m is None:
            return None
        a, op, var = (x.strip() for x in m.groups())
        op = {"<": ">", ">": "<", "\\lt": "\\gt", "\\gt": "\\lt"}.get(
            op, op.replace("\\le", "\\GE").replace("\\ge", "\\le").replace("\\GE", "\\ge")
        )
    if _less(op):
        return var, "(", "-\\infty", a, ")" if _strict(op) else "]"
    return var, "(" if _strict(op) else "[", a, "\\infty", ")"


def interval_union(s: str) -> list[tuple[str, str, str, str]] | None:
    """An inequality, a union of inequalities or a union of intervals as (open, left, right, close) items.

    ``x < 1 or x > 2`` = ``(-\\infty,1)\\cup(2,\\infty)``; ``x \\in [1,2]`` = ``[1,2]``; ``\\mathbb{R}`` =
    ``(-\\infty,\\infty)``; None when ``s`` is none of these.
    """
    t = _IN_RE.sub("", _SET_BUILDER_RE.sub(r"\1", s.strip()))
    if t in ("\\mathbb{R}", "\\mathbb R", "\\R", "ℝ"):
        return [("(", "-\\infty", "\\infty", ")")]
    pieces = [x.strip() for x in re.split(r"\\cup", t)]
    out = []
    if len(pieces) > 1 or _INTERVAL_RE.match(t):
        for piece in pieces:
            m = _INTERVAL_RE.match(piece)
            if m is None:
                return None
            o, a, b, c = m.groups()
            out.append((o, _INF.get(a.replace(" ", ""), a), _INF.get(b.replace(" ", ""), b), c))
        return out
    items, _ = alternatives(t)
    var = None
    for item in items:
        iv = _inequality_interval(item)
        if iv is None or (var is not None and iv[0] != var):
            return None
        var = iv[0]
        out.append(iv[1:])
    return out or None
