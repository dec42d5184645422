"""Hedges and lists: doubt words, several option letters, and the top-level items of an answer (``alternatives``)."""

from __future__ import annotations

import re

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
