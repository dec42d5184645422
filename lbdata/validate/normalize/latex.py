"""LaTeX presentation: matching brackets, ``\\boxed`` contents and ``clean`` (the content of an answer without its dress)."""

from __future__ import annotations

import re

MAX_ANSWER_CHARS = 1000
"""Answers longer than this never match (no real final answer is that long; it guards the regexes)."""

_WRAPPER_CMDS = (
    "text",
    "textbf",
    "textit",
    "textrm",
    "textnormal",
    "mathrm",
    "mathbf",
    "mathit",
    "mbox",
    "boldsymbol",
    "mathsf",
    "texttt",
    "operatorname",
    "emph",
)
_WRAPPER_RE = re.compile(r"\\(?:" + "|".join(_WRAPPER_CMDS) + r")\s*\{")
_BOXED_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
_LEFT_RIGHT_RE = re.compile(
    r"\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big)\s*(\.|\\\{|\\\}|[()\[\]|]|\\langle|\\rangle)"
)
_SPACING_RE = re.compile(r"(?<!\\)(?:\\[,;:!>]|\\ )|\\quad|\\qquad|~|\\displaystyle|\\textstyle|\\limits")
_DIGIT_GROUP_RE = re.compile(r"(?<=\d)(?:\{,\}|\\,|\\!|\\ )(?=\d{3}(?!\d))")
_LEAD_RE = re.compile(
    r"^(?:(?:so|thus|therefore|hence)\s*,?\s*)?(?:the\s+)?(?:final\s+|correct\s+)?answer\s*(?:is|:|=)\s*",
    re.I,
)
_APPROX_LEAD_RE = re.compile(r"^(?:\\approx|≈|approximately|approx\.?|about|around|roughly)\s*", re.I)
_AND_RE = re.compile(r"\s*,?\s+and\s+")
_APPROX_MID_RE = re.compile(r"\s*(?:\\approx|≈)\s*")
_UNICODE = {
    "−": "-",
    "–": "-",
    "×": "\\times ",
    "÷": "\\div ",
    "π": "\\pi ",
    "∞": "\\infty ",
    "·": "\\cdot ",
    "≤": "\\le ",
    "≥": "\\ge ",
    "≠": "\\ne ",
    "½": "\\frac{1}{2}",
    "⅓": "\\frac{1}{3}",
    "⅔": "\\frac{2}{3}",
    "¼": "\\frac{1}{4}",
    "¾": "\\frac{3}{4}",
    "\\varnothing": "\\emptyset",
    "\u00a0": " ",
    "\u2009": " ",
    "\u202f": " ",
}
_SIMPLE_POWER_RE = re.compile(r"\^\{\s*([A-Za-z0-9])\s*\}")
_UNICODE_RE = re.compile("|".join(map(re.escape, _UNICODE)))
_SQRT_UNICODE_RE = re.compile(r"√\s*(\d+|\{[^{}]*\}|\([^()]*\))")


def matching_brace(text: str, open_pos: int) -> int:
    """Index of the ``}`` closing the ``{`` at ``open_pos``, or -1 when unbalanced (``\\{`` is skipped)."""
    depth = 0
    i = open_pos
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{…}`` with balanced braces, or None."""
    for m in reversed(list(_BOXED_RE.finditer(text))):
        end = matching_brace(text, m.end() - 1)
        if end >= 0:
            return text[m.end() : end]
    return None


def _unwrap(text: str, pattern: re.Pattern[str]) -> str:
    """Replace ``\\cmd{content}`` by ``content`` for every match of ``pattern`` (innermost last)."""
    for _ in range(8):
        m = pattern.search(text)
        if m is None:
            return text
        end = matching_brace(text, m.end() - 1)
        if end < 0:
            return text[: m.start()] + text[m.end() :]
        text = text[: m.start()] + text[m.end() : end] + text[end + 1 :]
    return text


def clean(answer: str) -> str:
    """Strip the presentation of an answer and keep its content.

    Removes ``\\boxed``, ``$``/``\\(``/``\\[`` delimiters, ``\\text``/``\\mathrm``-style wrappers,
    ``\\left``/``\\right``, spacing commands, a leading "the answer is", a trailing full stop; maps
    ``\\dfrac``/``\\tfrac`` to ``\\frac`` and a few Unicode symbols to LaTeX; digit groups written
    ``1{,}000`` or ``1\\,000`` become ``1,000``. Idempotent.
    """
    s = answer.strip()
    if len(s) > MAX_ANSWER_CHARS:
        return s
    if s[:2] in ("**", "__") and s.endswith(s[:2]) and len(s) > 4:
        s = s[2:-2].strip()  # markdown bold
    if "\\boxed" in s or "\\fbox" in s:
        inner = last_boxed(s)
        if inner is not None:
            s = inner
    s = _UNICODE_RE.sub(lambda m: _UNICODE[m.group()], s)
    if "√" in s:
        s = _SQRT_UNICODE_RE.sub(lambda m: "\\sqrt{" + m.group(1).strip("{}()") + "}", s)
    s = s.replace("\\$", "").replace("$", "")
    s = s.replace("\\(", "").replace("\\)", "").replace("\\[", "").replace("\\]", "")
    s = re.sub(r"\\[dtc]frac", r"\\frac", s)
    s = _DIGIT_GROUP_RE.sub(",", s)
    s = _unwrap(s, _WRAPPER_RE)
    s = _LEFT_RIGHT_RE.sub(lambda m: "" if m.group(1) == "." else m.group(1), s)
    s = _SPACING_RE.sub(" ", s)
    s = _AND_RE.sub(", ", s)
    s = re.sub(r"\s+", " ", s).strip()
    s = _LEAD_RE.sub("", s)
    s = _APPROX_LEAD_RE.sub("", s)
    parts = _APPROX_MID_RE.split(s)
    if len(parts) == 2 and parts[0] and parts[1]:
        s = parts[0]  # "2\sqrt{3} \approx 3.46": the exact form is the answer
    s = s.rstrip()
    while s.endswith((".", "。", ",")) and not s.endswith(("\\.", "\\,")):
        s = s[:-1].rstrip()
    if s.startswith("{") and matching_brace(s, 0) == len(s) - 1:
        s = s[1:-1].strip()
    s = _SIMPLE_POWER_RE.sub(r"^\1", s)
    if s.startswith("(") and s.endswith(")") and matching_paren(s) == len(s) - 1 and "," not in s:
        s = s[1:-1].strip()  # "(\frac{1}{2})": brackets around one value
    return s


def matching_paren(text: str) -> int:
    """Index of the bracket closing the one at position 0 (any of ``([{``), or -1."""
    depth = 0
    for i, c in enumerate(text):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                return i
    return -1
