"""Answer normal forms: the cheap, exact layers of answer checking that run before sympy.

Everything here is pure string and ``fractions.Fraction`` work: finding the final answer in a response
(``final_answer``), unwrapping LaTeX (``clean``), hedges and lists (``alternatives``), assignments and
equations, units, multiple-choice letters, yes/no, short text, numbers in every dress
(``simple_number``, ``arithmetic_value``), matrices, ratios, clock times and interval unions.
``lbdata.validate.answers`` decides with these when it can and falls back to math-verify (in a
killable worker process) only for real expressions. Every function is linear, or close to it, in
the length of its input.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from fractions import Fraction


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


MAX_ANSWER_CHARS = 1000
"""Answers longer than this never match (no real final answer is that long; it guards the regexes)."""

# ----------------------------------------------------------------------------- LaTeX unwrapping

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
    while s.endswith((".", "。")) and not s.endswith("\\."):
        s = s[:-1].rstrip()
    if s.startswith("{") and matching_brace(s, 0) == len(s) - 1:
        s = s[1:-1].strip()
    s = _SIMPLE_POWER_RE.sub(r"^\1", s)
    if s.startswith("(") and s.endswith(")") and matching_paren(s) == len(s) - 1 and "," not in s:
        s = s[1:-1].strip()  # "(\frac{1}{2})": brackets around one value
    return s


# ----------------------------------------------------------------------------- finding the answer in a response

_ANSWER_PHRASE_RE = re.compile(
    r"(?:(?:final\s+answer|\banswer)\b[^\n.:=$]{0,25}?(?:\bis\b|:|=)|答案\s*(?:是|为|：|:))\s*(?:\*\*|__)?\s*[:：]?\s*",
    re.I,
)
_DISPLAY_RE = re.compile(
    r"\\\[((?:(?!\\\[).)+?)\\\]|\$\$((?:(?!\$\$).)+?)\$\$", re.S
)  # no nested opener: linear
_INLINE_RE = re.compile(r"\\\(((?:(?!\\\().)+?)\\\)|\$([^$]+)\$")
_PROSE_LINE_RE = re.compile(
    r"^(?:[*_#>\s-]*)(?!(?:Yes|No|True|False)\b)[A-Z][a-z]+,?\s.*?\s(?:is|are|equals|was|be)\s+(?P<value>\S.*)$"
)
_BOX_GAP_RE = re.compile(r"^(?:[\s$,;&]|\\quad|\\qquad|\\[,;]|\\text\{\s*(?:and|or)\s*\}|\band\b|\bor\b)*$")
_SENTENCE_END_RE = re.compile(r"(?<![\d\\])\.\s+(?=[A-Z(])|\s+(?:since|because|as|which|where)\s+")
_ANSWER_TAG_RE = re.compile(
    r"<answer>((?:(?!<answer>).)*?)</answer>", re.S | re.I
)  # no nested opener: linear
_HASHES_RE = re.compile(r"^\s*####\s*(\S.*?)\s*$", re.M)
SHORT_ANSWER_CHARS = 80
"""A one-line response at most this long with no answer phrase is itself the answer."""


def _last_match(rx: re.Pattern[str], text: str) -> re.Match[str] | None:
    last = None
    for last in rx.finditer(text):  # noqa: B007 - the loop keeps the last match
        pass
    return last


def _brace_pairs(text: str) -> dict[int, int]:
    """Every balanced ``{`` → its ``}``, in one pass (``\\{`` and ``\\}`` skipped as ``matching_brace`` does)."""
    pairs: dict[int, int] = {}
    stack: list[int] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            stack.append(i)
        elif c == "}" and stack:
            pairs[stack.pop()] = i
        i += 1
    return pairs


def _boxes(text: str) -> list[tuple[int, int, str]]:
    """Every ``\\boxed{…}`` with balanced braces: (start, end, content). Linear, however unbalanced the text."""
    pairs = _brace_pairs(text)
    out = []
    for m in _BOXED_RE.finditer(text):
        end = pairs.get(m.end() - 1)
        if end is not None:
            out.append((m.start(), end + 1, text[m.end() : end]))
    return out


def _math_or_sentence(segment: str) -> str:
    """The answer at the start of ``segment``: its first math block, else its first sentence."""
    seg = segment.strip().lstrip("*_ ").strip()
    m = _INLINE_RE.match(seg) or _DISPLAY_RE.match(seg)
    if m:
        return next(g for g in m.groups() if g is not None)
    seg = _SENTENCE_END_RE.split(seg, maxsplit=1)[0]
    return seg.rstrip("*_,;:. ").strip()


def final_answer(text: str) -> str:
    """The final answer a response states, or the text itself when it is already a bare answer.

    In order: the last ``\\boxed{}`` (several boxes separated only by commas, "and" or "or" at the end
    are one answer: ``\\boxed{2}, \\boxed{3}`` → ``2, 3``); the last ``<answer>…</answer>``; a last
    ``#### X`` line (GSM8K); a short one-line text as it is; the last
    "answer is X" / "Answer: X" / "**Final answer:** X"; the last ``\\[ … \\]`` or ``$$ … $$`` block
    when nothing but a short line follows it; the last line ("Thus the total is 12." → ``12``).
    Linear in the length of the text.
    """
    s = text.strip()
    if not s:
        return s
    if "\\boxed" in s or "\\fbox" in s:
        boxes = _boxes(s)
        if boxes:
            group = [boxes[-1]]
            joiner = ", "
            for prev in reversed(boxes[:-1]):
                gap = s[prev[1] : group[0][0]]
                if len(gap) > 24 or not _BOX_GAP_RE.match(gap):
                    break
                if re.search(r"\bor\b", gap):
                    joiner = " or "
                group.insert(0, prev)
            return joiner.join(b[2].strip() for b in group)
    tagged = _last_match(_ANSWER_TAG_RE, s)
    if tagged is not None:
        return final_answer(tagged.group(1)) if tagged.group(1).strip() != s else s
    hashes = _last_match(_HASHES_RE, s)
    if hashes is not None:
        return hashes.group(1).strip()
    lines = [ln.strip() for ln in s.splitlines() if ln.strip()]
    phrase = _last_match(_ANSWER_PHRASE_RE, s)
    if phrase is None and len(lines) == 1 and len(s) <= SHORT_ANSWER_CHARS and not _PROSE_LINE_RE.match(s):
        bare = _INLINE_RE.sub("", _DISPLAY_RE.sub("", s))
        if bare == s or not re.search(r"[A-Za-z]{2,}", bare):
            return s
    if phrase is not None:
        rest = s[phrase.end() :]
        if rest.strip():
            line = rest.strip().split("\n", 1)[0] if not rest.lstrip().startswith(("\\[", "$$")) else rest
            return _math_or_sentence(line)
    display = _last_match(_DISPLAY_RE, s)
    if display is not None:
        after = s[display.end() :].strip()
        if len(after) <= 60 and "\n" not in after:
            return next(g for g in display.groups() if g is not None).strip()
    last = lines[-1]
    m = _PROSE_LINE_RE.match(last)
    if m:
        return _math_or_sentence(m.group("value"))
    inline = _last_match(_INLINE_RE, last)
    if inline is not None and (
        len(last) > SHORT_ANSWER_CHARS or re.search(r"[A-Za-z]{3,}\s", _INLINE_RE.sub("", last))
    ):
        return next(g for g in inline.groups() if g is not None).strip()
    return last


# ----------------------------------------------------------------------------- hedges and lists

_HEDGE_RE = re.compile(r"\bor\b|\\lor\b|\bmaybe\b|\bperhaps\b|\bpossibly\b|\beither\b|\bprobably\b|\?", re.I)
_HEDGE_WORD_RE = re.compile(
    r"\bmaybe\b|\bperhaps\b|\bpossibly\b|\beither\b|\bprobably\b|\blikely\b|\bmight\b|\bcould be\b|\bguess\b"
    r"|\bunsure\b|\bnot (?:sure|certain)\b|\bno idea\b|\?|？|可能|大概|也许|或许|不确定",
    re.I,
)
_OR_RE = re.compile(r"\s+or\s+|\s*\\lor\s*|\s*\\vee\s*|\s*\\text\{\s*or\s*\}\s*|\s*(?:或者|或)\s*", re.I)
_OPTION_LIST_RE = re.compile(r"^\(?[A-Z]\)?(?:(?:\s*(?:,|/|&|;|\band\b|\bor\b)\s*|\s+)\(?[A-Z]\)?)+$")


def is_hedged(s: str) -> bool:
    """A hedged answer names alternatives ("5 or 6", "maybe 5", "B, C") or doubts ("5?")."""
    return _HEDGE_RE.search(s) is not None or _OPTION_LIST_RE.match(s) is not None or hedge_words(s)


def hedge_words(s: str) -> bool:
    """Words of doubt ("maybe", "probably", a question mark) in a cleaned answer."""
    return _HEDGE_WORD_RE.search(s) is not None


def option_list(s: str) -> bool:
    """Several option letters: ``B, C``, ``B and C``, ``(B) or (C)``, ``B/C``."""
    return _OPTION_LIST_RE.match(s) is not None


def alternatives(s: str) -> tuple[list[str], bool]:
    """Split a cleaned answer into its top-level items: ``"x=3 or x=-2"`` → (["x=3", "x=-2"], True).

    Splits at commas, semicolons and "or" outside brackets; ``1,000`` (digit groups) is one item.
    The flag says whether "or" joined them. ``a \\pm b`` becomes ``a+b`` and ``a-b``.
    """
    items: list[str] = []
    joined_by_or = False
    depth = 0
    start = 0
    i = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c == "\\" and i + 1 < n and s[i + 1] in "{}":
            depth += 1 if s[i + 1] == "{" else -1
            i += 2
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0:
            if c in ",;" and not (
                c == "," and i > 0 and s[i - 1].isdigit() and re.match(r"\d{3}(?!\d)", s[i + 1 : i + 5])
            ):
                items.append(s[start:i])
                start = i + 1
            elif c in " \\或":
                m = _OR_RE.match(s, i)
                if m and m.end() > i:
                    items.append(s[start:i])
                    start = m.end()
                    joined_by_or = True
                    i = m.end()
                    continue
        i += 1
    items.append(s[start:])
    items = [it.strip() for it in items if it.strip()]
    out: list[str] = []
    for it in items:
        if it.count("\\pm") == 1 and "=" not in it.split("\\pm")[1]:
            a, b = it.split("\\pm")
            if a.strip():
                out += [f"{a.strip()}+{b.strip()}", f"{a.strip()}-{b.strip()}"]
            else:
                out += [b.strip(), f"-{b.strip()}"]
        else:
            out.append(it)
    return out, joined_by_or


# ----------------------------------------------------------------------------- assignments

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


# ----------------------------------------------------------------------------- units

_UNIT_CANON = {
    "mm": "mm",
    "millimeter": "mm",
    "millimetre": "mm",
    "cm": "cm",
    "centimeter": "cm",
    "centimetre": "cm",
    "m": "m",
    "meter": "m",
    "metre": "m",
    "mtr": "m",
    "km": "km",
    "kilometer": "km",
    "kilometre": "km",
    "in": "in",
    "inch": "in",
    "inche": "in",
    "ft": "ft",
    "foot": "ft",
    "feet": "ft",
    "yd": "yd",
    "yard": "yd",
    "mi": "mi",
    "mile": "mi",
    "mg": "mg",
    "g": "g",
    "gram": "g",
    "gm": "g",
    "kg": "kg",
    "kilogram": "kg",
    "lb": "lb",
    "pound": "lb",
    "oz": "oz",
    "ounce": "oz",
    "ml": "ml",
    "milliliter": "ml",
    "millilitre": "ml",
    "l": "l",
    "liter": "l",
    "litre": "l",
    "s": "s",
    "sec": "s",
    "second": "s",
    "min": "min",
    "minute": "min",
    "h": "h",
    "hr": "h",
    "hour": "h",
    "day": "day",
    "week": "week",
    "month": "month",
    "year": "year",
    "yr": "year",
    "deg": "deg",
    "degree": "deg",
    "rad": "rad",
    "radian": "rad",
    "%": "%",
    "percent": "%",
    "percentage": "%",
    "pct": "%",
    "dollar": "$",
    "usd": "$",
    "cent": "cent",
    "euro": "eur",
    "kmh": "km/h",
    "kph": "km/h",
    "mph": "mi/h",
    "unit": "",
    "square unit": "",
    "sq unit": "",
    "cubic unit": "",
    "unit^2": "",
    "unit^3": "",
}
_NO_SPACE_UNITS = (
    "mm",
    "cm",
    "km",
    "m",
    "in",
    "ft",
    "yd",
    "mi",
    "mg",
    "kg",
    "g",
    "lb",
    "ml",
    "l",
    "s",
    "min",
    "h",
    "hr",
    "deg",
    "rad",
    "mph",
    "kmh",
    "kph",
)
_MATH_WORDS = _wordset(
    "sin cos tan cot sec csc log ln exp lim max min sqrt pi infty inf det mod gcd lcm arcsin arccos arctan "
    "sinh cosh tanh frac cdot times div le ge ne leq geq neq pm mp"
)
_DEGREE_RE = re.compile(r"\s*(?:\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|°|\\degree)\s*$")
_PERCENT_RE = re.compile(r"\s*(?:\\%|%)\s*$")
_POWER_SUFFIX_RE = re.compile(r"(?:\^\s*\{?\s*([23])\s*\}?|([²³]))$")
_WORD_UNIT_RE = re.compile(
    r"(?:(?<=[\d}).])|(?<=\d)\s|(?<=[}).])\s|(?<=\\pi)\s)\s*([A-Za-z%$][A-Za-z./ ^{}23²³$]*)$"
)


def _canon_unit(raw: str) -> str | None:
    """Canonical spelling of a unit, or None when ``raw`` does not look like one."""
    u = raw.strip().lower().replace("{", "").replace("}", "")
    u = re.sub(r"\s+", " ", u)
    power = ""
    m = _POWER_SUFFIX_RE.search(u)
    if m:
        power = "^" + (m.group(1) or {"²": "2", "³": "3"}[m.group(2)])
        u = u[: m.start()].strip()
    for prefix, p in (("square ", "^2"), ("sq. ", "^2"), ("sq ", "^2"), ("cubic ", "^3"), ("cu ", "^3")):
        if u.startswith(prefix):
            u, power = u[len(prefix) :].strip(), p
    if "/" in u or " per " in u:
        parts = re.split(r"\s*/\s*|\s+per\s+", u)
        if len(parts) == 2:
            a, b = _canon_unit(parts[0]), _canon_unit(parts[1])
            if a and b:
                return f"{a}/{b}{power}"
        return None
    if not re.fullmatch(r"[a-z%$]+(?: [a-z]+){0,2}", u):
        return None
    if u in _UNIT_CANON:
        return _UNIT_CANON[u] + power if _UNIT_CANON[u] else ""
    singular = re.sub(r"(?:es|s)$", "", u) if len(u) > 3 else u
    for cand in (singular, u[:-1] if u.endswith("s") else u):
        if cand in _UNIT_CANON:
            base = _UNIT_CANON[cand]
            return base + power if base else ""
    if u in _MATH_WORDS or len(u) < 2 or any(w in _MATH_WORDS for w in u.split()):
        return None
    return singular + power  # a counted noun ("5 apples"): a unit of its own


def split_unit(s: str) -> tuple[str, str | None]:
    """Split ``"5 cm"`` into ``("5", "cm")``; ``"30^\\circ"`` into ``("30", "deg")``; no unit → ``(s, None)``.

    Generic units ("units", "square units") come back as ``""`` (present but not explicit).
    """
    m = _DEGREE_RE.search(s)
    if m and m.start() > 0:
        return s[: m.start()].strip(), "deg"
    m = _PERCENT_RE.search(s)
    if m and m.start() > 0:
        return s[: m.start()].strip(), "%"
    m = _WORD_UNIT_RE.search(s)
    if m:
        raw = m.group(1)
        head = s[: m.start(1)].strip()
        if head and not head.endswith(("=", "+", "-", "\\")):
            unit = _canon_unit(raw)
            no_space = s[m.start(1) - 1 : m.start(1)] not in (" ",)
            if unit is not None and (
                not no_space
                or raw.strip().lower().rstrip("^23{}²³") in _NO_SPACE_UNITS
                or unit in ("deg", "%")
            ):
                return head, unit
    return s, None


# ----------------------------------------------------------------------------- choices, yes/no, text

_GOLD_LETTER_RE = re.compile(r"^(?:option\s+|choice\s+)?[(\[]?([A-Za-z])[)\]]?\.?$", re.I)
_PRED_LETTER_RE = re.compile(
    r"^(?:(?:the\s+)?(?:correct\s+)?(?:answer|option|choice)\s*(?:is\s*)?[:\-]?\s*)?"
    r"(?:[(\[](?P<wrapped>[A-Za-z])[)\]](?:\s*[.:\-]?\s*(?P<rest1>.*))?"
    r"|(?P<bare>[A-Za-z])(?:\s*[.:)\-]\s*(?P<rest2>.*))?)$",
    re.I | re.S,
)


_GOLD_LETTER_TEXT_RE = re.compile(r"^[(\[]?([A-Z])(?:[)\].:]\s*|\s+)(?=[A-Z0-9\\$(-])(?P<text>.+)$")


def gold_letter(s: str, *, has_choices: bool) -> str | None:
    """The option letter a gold answer names (``B``, ``(B)``, ``B.``, ``C Cecile``); lowercase only with choices."""
    m = _GOLD_LETTER_RE.match(s)
    if m is None:
        return None
    letter = m.group(1)
    if letter.isupper() or has_choices:
        return letter.upper()
    return None


def gold_letter_text(s: str) -> tuple[str, str] | None:
    """A gold written as a letter and its option text: ``C Cecile`` / ``(C) Cecile`` → ("C", "Cecile")."""
    m = _GOLD_LETTER_TEXT_RE.match(s)
    if m is None:
        return None
    return m.group(1), m.group("text").strip()


def pred_letter(s: str) -> tuple[str, str] | None:
    """The option a prediction picks, with any text after it: ``B``, ``(B)``, ``B.``, ``Option B``, ``B: 12``."""
    m = _PRED_LETTER_RE.match(s)
    if m is None:
        return None
    letter = m.group("wrapped") or m.group("bare")
    rest = (m.group("rest1") or m.group("rest2") or "").strip()
    return letter.upper(), rest


def option_text(choice: str) -> str:
    """A choice's text without a leading ``A.`` / ``(A)`` / ``A:`` label."""
    return re.sub(r"^\s*[(\[]?[A-Za-z][)\].:]\s+", "", choice).strip()


_YES = frozenset({"yes", "true", "correct"})
_NO = frozenset({"no", "false", "incorrect"})


def yes_no(s: str) -> str | None:
    """``"yes"``/``"no"`` when the answer is a yes/no answer ("Yes.", "no, it is not"), else None."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z ,.;:!'-]*", s):
        return None
    words = re.findall(r"[a-z]+", s.lower())
    first = "yes" if words[0] in _YES else "no" if words[0] in _NO else None
    if first is None:
        return None
    other = _NO if first == "yes" else _YES
    if any(w in other for w in words[1:]) or "or" in words:
        return None
    return first


def norm_text(s: str) -> str:
    """Case- and punctuation-insensitive form of a short text answer, without a leading article."""
    t = s.lower().replace("\\", " ")
    t = re.sub(r"[^\w\s]", " ", t)
    t = re.sub(r"\s+", " ", t).strip()
    t = re.sub(r"^(?:the|a|an) ", "", t)
    return t


_IDENT_RE = re.compile(r"^[A-Za-z]{1,4}\d{1,4}$")


def is_label(s: str) -> bool:
    """A short letters-then-digits label such as ``W3`` or ``Q12`` (compared as text)."""
    return _IDENT_RE.match(s) is not None


def is_text(s: str) -> bool:
    """True when ``s`` holds a word ("red", "France", a label "AB") that is not a LaTeX command or math word."""
    for m in re.finditer(r"(\\?)([A-Za-z]{2,})", s):
        word = m.group(2)
        if m.group(1) or word.lower() in _MATH_WORDS:
            continue
        if len(word) >= 3 or word.isupper():  # "red", "AB"; but "ab" or "xy" is a product
            return True
    return False


_NUMBER_WORDS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
    "hundred": 100,
}


def number_word(s: str) -> str | None:
    """``"five"`` → ``"5"``; ``"twenty-one"`` → ``"21"``; anything else → None."""
    words = re.split(r"[\s-]+", s.strip().lower())
    if not words or any(w not in _NUMBER_WORDS for w in words):
        return None
    if len(words) == 1:
        return str(_NUMBER_WORDS[words[0]])
    if len(words) == 2 and 20 <= _NUMBER_WORDS[words[0]] <= 90 and 1 <= _NUMBER_WORDS[words[1]] <= 9:
        return str(_NUMBER_WORDS[words[0]] + _NUMBER_WORDS[words[1]])
    return None


def leading_number_word(s: str) -> str:
    """``"seven apples"`` → ``"7 apples"``: a number word in front of a counted noun becomes digits."""
    m = re.match(r"^([A-Za-z]+(?:-[A-Za-z]+)?)(\s+.*)?$", s)
    if m is None:
        return s
    num = number_word(m.group(1))
    return num + (m.group(2) or "") if num is not None else s


def outer_shape(s: str) -> str | None:
    """The brackets around a collection: ``"()"``, ``"[]"``, ``"(]"``, ``"{}"`` for ``\\{…\\}``; None otherwise."""
    if s.startswith("\\{") and s.endswith("\\}"):
        return "{}"
    if len(s) > 2 and s[0] in "([" and s[-1] in ")]" and "," in s:
        return s[0] + s[-1]
    return None


# ----------------------------------------------------------------------------- simple numbers


@dataclass(frozen=True)
class Num:
    """A simple number: its exact value, and for a decimal literal the digits it shows."""

    value: Fraction
    decimals: int | None = None  # digits after the point for a decimal literal, None for exact forms
    sig: int = 0  # significant digits shown by a decimal literal


_NUM_SPACE_RE = re.compile(r"(?<=[+\-/{}])\s+|\s+(?=[/{}])|(?<=\\frac)\s+")
_SPACED_THOUSANDS_RE = re.compile(r"^[+-]?\d{1,3}(?: \d{3})+(?:\.\d+)?$")
_INT_RE = re.compile(r"^[+-]?\d+$")
_THOUSANDS_RE = re.compile(r"^[+-]?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?$")
_DEC_RE = re.compile(r"^[+-]?(?:\d+\.\d*|\.\d+)$")
_FRAC_RE = re.compile(r"^([+-]?)\\frac\s*\{\s*([+-]?\d+)\s*\}\s*\{\s*([+-]?\d+)\s*\}$")
_FRAC_SHORT_RE = re.compile(r"^([+-]?)\\frac\s*(\d)\s*(\d)$")
_SLASH_RE = re.compile(r"^([+-]?\d+)\s*/\s*([+-]?\d+)$")


_MANTISSA = r"([+-]?(?:\d+\.?\d*|\.\d+))"
_SCI_E_RE = re.compile(r"^" + _MANTISSA + r"\s*[eE]\s*([+-]?\d{1,3})$")
_SCI_TIMES_RE = re.compile(
    r"^" + _MANTISSA + r"\s*(?:\\times|\\cdot|\*|x)\s*10\s*\^\s*\{?\s*([+-]?\d{1,3})\s*\}?$"
)
_POW10_RE = re.compile(r"^([+-]?)10\s*\^\s*\{?\s*([+-]?\d{1,3})\s*\}?$")
_SCALE = {"thousand": 3, "million": 6, "billion": 9, "trillion": 12}
_SCALED_RE = re.compile(
    r"^([+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)\s*(thousand|million|billion|trillion)s?$", re.I
)
_MIXED_RE = re.compile(r"^([+-]?)(\d+)\s*\\frac\s*(?:\{\s*(\d+)\s*\}\s*\{\s*(\d+)\s*\}|(\d)(\d))$")
_MIXED_SLASH_RE = re.compile(r"^([+-]?)(\d+)\s+(\d+)\s*/\s*(\d+)$")
_REPEAT_RE = re.compile(r"^([+-]?)(\d*)\.(\d*)\s*\\(?:overline|bar|dot)\s*\{?\s*(\d+)\s*\}?$")
_REPEAT_PAREN_RE = re.compile(r"^([+-]?)(\d*)\.(\d*)\((\d+)\)$")
_ELLIPSIS_RE = re.compile(r"(?<=\d)\s*(?:\.\.\.|\\ldots|\\dots|\\cdots|…)$")


def _decimal_literal(text: str, shift: int = 0) -> Num:
    """A decimal literal times ``10**shift``: exact value, the decimals it shows, its significant digits."""
    digits = text.lstrip("+-")
    decimals = len(digits.split(".", 1)[1]) if "." in digits else 0
    sig = len(digits.replace(".", "").lstrip("0"))
    value = Fraction(Decimal(text)) * Fraction(10) ** shift
    return Num(value, decimals=decimals - shift, sig=sig)


def _dressed_number(s: str) -> Num | None:
    """Scientific notation, ``10^{-3}``, ``2.5 million``, mixed numbers, repeating decimals, ``0.333...``."""
    m = _SCI_E_RE.match(s) or _SCI_TIMES_RE.match(s)
    if m:
        mantissa, exp = m.group(1), int(m.group(2))
        if "." not in mantissa:
            return Num(Fraction(int(mantissa)) * Fraction(10) ** exp)
        return _decimal_literal(mantissa, exp)
    m = _POW10_RE.match(s)
    if m:
        v = Fraction(10) ** int(m.group(2))
        return Num(-v if m.group(1) == "-" else v)
    m = _SCALED_RE.match(s)
    if m:
        mantissa, shift = m.group(1).replace(",", ""), _SCALE[m.group(2).lower()]
        if "." not in mantissa:
            return Num(Fraction(int(mantissa)) * 10**shift)
        return _decimal_literal(mantissa, shift)
    m = _MIXED_RE.match(s) or _MIXED_SLASH_RE.match(s)
    if m:
        groups = [g for g in m.groups()[1:] if g is not None]
        whole, num, den = (int(g) for g in groups)
        if den == 0 or num >= den:
            return None
        v = whole + Fraction(num, den)
        return Num(-v if m.group(1) == "-" else v)
    m = _REPEAT_RE.match(s) or _REPEAT_PAREN_RE.match(s)
    if m:
        sign, whole, fixed, rep = m.groups()
        base = Fraction(int(whole or "0")) + (Fraction(int(fixed), 10 ** len(fixed)) if fixed else 0)
        v = base + Fraction(int(rep), (10 ** len(rep) - 1) * 10 ** len(fixed))
        return Num(-v if sign == "-" else v)
    m = _ELLIPSIS_RE.search(s)
    if m and _DEC_RE.match(s[: m.start()]):
        return _decimal_literal(s[: m.start()])
    return None


def simple_number(s: str) -> Num | None:
    """Parse a number exactly: an integer, a decimal, ``1,234.5``, ``a/b``, ``\\frac{a}{b}``, a mixed number
    (``1\\frac{1}{2}``, ``1 1/2``), scientific notation (``1.2e3``, ``3\\times10^{-4}``, ``10^{-3}``), a
    scale word (``2.5 million``) or a repeating decimal (``0.\\overline{3}``); anything else → None.
    """
    s = s.strip()
    if len(s) > 60:
        return None
    dressed = _dressed_number(s)
    if dressed is not None:
        return dressed
    s = _NUM_SPACE_RE.sub("", s)
    if " " in s:
        if not _SPACED_THOUSANDS_RE.match(s):
            return None  # "1 0" is not 10
        s = s.replace(" ", "")
    if _THOUSANDS_RE.match(s):
        s = s.replace(",", "")
    if _INT_RE.match(s):
        return Num(Fraction(int(s)))
    if _DEC_RE.match(s):
        return _decimal_literal(s)
    for rx in (_FRAC_RE, _FRAC_SHORT_RE):
        m = rx.match(s)
        if m:
            num, den = int(m.group(2)), int(m.group(3))
            if den == 0:
                return None
            v = Fraction(num, den)
            return Num(-v if m.group(1) == "-" else v)
    m = _SLASH_RE.match(s)
    if m:
        num, den = int(m.group(1)), int(m.group(2))
        return Num(Fraction(num, den)) if den else None
    return None


_DECIMAL_COMMA_RE = re.compile(r"^[+-]?\d+,\d+$")


def decimal_comma(s: str) -> Num | None:
    """``1000,99`` / ``1,22`` / ``0,111`` read with a decimal comma (not a digit group); else None."""
    t = s.strip()
    if not _DECIMAL_COMMA_RE.match(t) or (_THOUSANDS_RE.match(t) and not t.lstrip("+-").startswith("0")):
        return None
    return simple_number(t.replace(",", "."))


MIN_SIG_DIGITS = 3
"""A decimal that is a rounding (not the exact value) must show at least this many significant digits."""


def rounds_to(exact: Fraction | Decimal, approx: Num) -> bool:
    """True when ``approx`` is ``exact`` correctly rounded at the precision ``approx`` shows.

    Exact equality always counts. Otherwise the decimal must show at least ``MIN_SIG_DIGITS``
    significant digits (``3.46`` for ``2\\sqrt{3}``, not ``3.5``) and equal ``exact`` rounded half-up
    or half-even at its number of decimals.
    """
    if approx.decimals is None:
        return False
    if exact == approx.value or (isinstance(exact, Decimal) and Fraction(exact) == approx.value):
        return True
    if approx.sig < MIN_SIG_DIGITS:
        return False
    with localcontext() as ctx:
        ctx.prec = 60
        d = Decimal(exact.numerator) / Decimal(exact.denominator) if isinstance(exact, Fraction) else exact
        q = Decimal(1).scaleb(-approx.decimals)
        target = Decimal(approx.value.numerator) / Decimal(approx.value.denominator)
        try:
            return any(d.quantize(q, rounding=r) == target for r in (ROUND_HALF_UP, ROUND_HALF_EVEN))
        except InvalidOperation:  # more digits than the context holds: no rounding of this value
            return False


def numbers_match(gold: Num, pred: Num) -> bool:
    """Value over form: equal values match; a decimal matches an exact value it correctly rounds."""
    if gold.value == pred.value:
        return True
    if pred.decimals is not None and gold.decimals is None:
        return rounds_to(gold.value, pred)
    if gold.decimals is not None and pred.decimals is None:
        return rounds_to(pred.value, gold)
    return False


@dataclass(frozen=True)
class Surd:
    """An exact ``coef * sqrt(rad)`` with ``rad`` square-free (``rad == 1``: a rational number)."""

    coef: Fraction
    rad: int

    def decimal(self) -> Decimal:
        with localcontext() as ctx:
            ctx.prec = 60
            return Decimal(self.coef.numerator) / Decimal(self.coef.denominator) * Decimal(self.rad).sqrt()


_SURD_RE = re.compile(r"^([+-])?(\d+)?\\sqrt\{?(\d+)\}?$")
_SURD_FRAC_RE = re.compile(r"^([+-])?\\frac\{(\d+)?\\sqrt\{?(\d+)\}?\}\{(\d+)\}$")


def _surd(coef: Fraction, n: int) -> Surd:
    out, k = 1, 2
    while k * k <= n:
        while n % (k * k) == 0:
            out *= k
            n //= k * k
        k += 1
    return Surd(coef * out, n if coef else 1)


def simple_surd(s: str) -> Surd | None:
    """``a\\sqrt{b}``, ``\\sqrt{b}``, ``\\frac{a\\sqrt{b}}{c}`` or an exact simple number, in normal form; else None."""
    s = s.replace(" ", "")
    num = simple_number(s)
    if num is not None:
        return Surd(num.value, 1) if num.decimals is None else None
    m = _SURD_RE.match(s)
    if m:
        sign, a, b, c = m.group(1), m.group(2), m.group(3), "1"
    else:
        m = _SURD_FRAC_RE.match(s)
        if m is None:
            return None
        sign, a, b, c = m.group(1), m.group(2), m.group(3), m.group(4)
    if len(b) > 7 or int(c) == 0:
        return None
    coef = Fraction(int(a or 1), int(c))
    return _surd(-coef if sign == "-" else coef, int(b))


def surd_matches(gold: str, pred: str) -> bool | None:
    """Decide two answers that are exact surds or simple numbers without sympy; None when out of reach.

    Exact forms are equal when their normal forms are; a decimal matches a surd it correctly rounds.
    """
    g, p = simple_surd(gold), simple_surd(pred)
    if g is not None and p is not None:
        return g == p
    if g is None and p is None:
        return None
    exact, other = (g, pred) if g is not None else (p, gold)
    approx = simple_number(other)
    if approx is None or approx.decimals is None or exact is None:
        return None
    if exact.rad == 1:
        return rounds_to(exact.coef, approx)
    return rounds_to(exact.decimal(), approx)


# ----------------------------------------------------------------------------- plain arithmetic

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


# ----------------------------------------------------------------------------- matrices, ratios, times, intervals

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


# ----------------------------------------------------------------------------- structural guards

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
