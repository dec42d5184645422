"""Choices, yes/no and text: option letters, yes/no answers, short text and labels, number words."""

from __future__ import annotations

import re


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


# names of functions and LaTeX commands: never a text answer (``is_text``) nor a unit (``units``)
_MATH_WORDS = _wordset(
    "sin cos tan cot sec csc log ln exp lim max min sqrt pi infty inf det mod gcd lcm arcsin arccos arctan "
    "sinh cosh tanh frac cdot times div le ge ne leq geq neq pm mp"
)

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
