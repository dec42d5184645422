"""``parse_trace(text)``: the segments of a Look-Back trace, its final answer and its grammar errors.

The grammar (every variant):

    trace   := ws think (ws back ws think)* tail
    think   := "<think>" text "</think>"          back := "<back>" text "</back>"
    tail    := ws [a few words] "\\boxed{" answer "}" [a few words] ws

Only the four tags ``<think>``, ``</think>``, ``<back>``, ``</back>`` are allowed, spelled exactly;
segments never nest; nothing but whitespace sits before the first ``<think>`` or between segments;
every ``<back>`` has a ``<think>`` before and after it; two segments of the same kind never follow each
other. After the last segment at most ``MAX_TAIL_WORDS`` words may surround the ``\\boxed{…}``.
The parser never raises: it returns what it could read and a list of grammar errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from lbdata.validate.normalize import matching_brace

SegmentKind = Literal["think", "back"]

MAX_TAIL_WORDS = 8
"""Words allowed after the last segment besides the boxed answer ("Final answer: \\boxed{5}")."""

_TAG_RE = re.compile(
    r"<(/?)(think|back)>"  # exact tags
    r"|<\s*/?\s*(?:think|back)\s*/?\s*>"  # our tags, misspelled (case, spaces, self-closing)
    r"|</?[A-Za-z][A-Za-z0-9_-]+\s*/?>",  # any other tag (<answer>, <thinking>, <br/>)
    re.IGNORECASE,
)
_BOXED_RE = re.compile(r"\\boxed\b\s*")
CJK_CHARS = (
    "\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f"
    "\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f"
)
"""Han (Chinese, kanji), kana and Hangul: scripts written without spaces between words (character classes)."""
CJK_RE = re.compile(f"[{CJK_CHARS}]")
WORD_RE = re.compile(f"[{CJK_CHARS}]|[^\\W_{CJK_CHARS}]+(?:['.,][^\\W_{CJK_CHARS}]+)*")
_ASCII_WORD_RE = re.compile(r"[A-Za-z0-9]+(?:['.,][A-Za-z0-9]+)*")
"""``WORD_RE`` on ASCII text (where a letter or digit is one of these): the same words, found faster."""


def find_words(text: str) -> list[str]:
    """The words of ``text`` (``WORD_RE.findall``; ASCII text, the usual case, takes a faster pattern)."""
    return (_ASCII_WORD_RE if text.isascii() else WORD_RE).findall(text)


def count_words(text: str) -> int:
    """Words as lbdata counts them: runs of letters or digits (``12.5`` and ``don't`` are one word), and
    each Chinese, Japanese or Korean character on its own (one character is about one word)."""
    return len(find_words(text))


@dataclass(frozen=True)
class Segment:
    """One ``<think>`` or ``<back>`` segment: ``text`` is its content, ``span`` covers the tags too."""

    kind: SegmentKind
    text: str
    span: tuple[int, int]

    @cached_property
    def words(self) -> list[str]:
        """The segment's words, lower-cased (see ``count_words``)."""
        return find_words(self.text.lower())


@dataclass(frozen=True)
class Boxed:
    """One ``\\boxed`` in the trace: its content (None when braces are unbalanced) and where it sits."""

    content: str | None
    span: tuple[int, int]
    in_tail: bool  # after the last segment (the only allowed place)


@dataclass(frozen=True)
class ParsedTrace:
    """What ``parse_trace`` read: ordered segments, every ``\\boxed``, the final answer, grammar errors."""

    text: str
    segments: tuple[Segment, ...]
    boxed: tuple[Boxed, ...]
    answer: str | None
    errors: tuple[str, ...] = field(default=())
    tail: str = ""

    @property
    def backs(self) -> list[Segment]:
        return [s for s in self.segments if s.kind == "back"]

    @property
    def thinks(self) -> list[Segment]:
        return [s for s in self.segments if s.kind == "think"]

    @property
    def well_formed(self) -> bool:
        """No grammar error (the boxed-answer rules are checked separately)."""
        return not self.errors


def parse_trace(text: str) -> ParsedTrace:
    """Parse a trace into segments, ``\\boxed`` answers and grammar errors (never raises).

    The final answer is the content of the last ``\\boxed{…}`` with balanced braces, wherever it is;
    ``None`` when there is none or it is empty.
    """
    errors: list[str] = []
    segments: list[Segment] = []
    open_kind: str | None = None
    open_start = inner_start = 0
    last_end = 0

    for m in _TAG_RE.finditer(text):
        tag = m.group(0)
        if m.group(2) is None or m.group(2) != m.group(2).lower():
            errors.append(f"unknown or misspelled tag {tag!r} at {m.start()}")
            continue
        closing, kind = m.group(1) == "/", m.group(2)
        if not closing:
            if open_kind is not None:
                errors.append(f"<{kind}> opened inside <{open_kind}> at {m.start()}")
                continue
            gap = text[last_end : m.start()]
            if gap.strip():
                where = "before the first <think>" if not segments else "between segments"
                errors.append(f"text {where} at {last_end}: {gap.strip()[:40]!r}")
            open_kind, open_start, inner_start = kind, m.start(), m.end()
        else:
            if open_kind is None:
                errors.append(f"stray </{kind}> at {m.start()}")
                continue
            if kind != open_kind:
                errors.append(f"</{kind}> closes <{open_kind}> at {m.start()}")
            segments.append(Segment(open_kind, text[inner_start : m.start()], (open_start, m.end())))  # type: ignore[arg-type]
            open_kind = None
            last_end = m.end()
    if open_kind is not None:
        errors.append(f"<{open_kind}> is never closed")
        segments.append(Segment(open_kind, text[inner_start:], (open_start, len(text))))  # type: ignore[arg-type]
        last_end = len(text)

    if not segments:
        errors.append("no <think> segment")
    else:
        if segments[0].kind != "think":
            errors.append("the trace does not start with <think>")
        for a, b in zip(segments, segments[1:], strict=False):
            if a.kind == b.kind:
                errors.append(f"two <{a.kind}> segments in a row at {b.span[0]}")
        if segments[-1].kind == "back":
            errors.append("the last <back> is not followed by a <think>")

    boxed: list[Boxed] = []
    for m in _BOXED_RE.finditer(text):
        content = None
        end = m.end()
        if end < len(text) and text[end] == "{":
            close = matching_brace(text, end)
            if close >= 0:
                content = text[end + 1 : close]
                end = close + 1
        boxed.append(Boxed(content, (m.start(), end), m.start() >= last_end and bool(segments)))

    tail = text[last_end:] if segments else ""
    if segments:
        rest = tail
        for b in reversed(boxed):
            if b.in_tail:
                rest = rest[: b.span[0] - last_end] + " " + rest[b.span[1] - last_end :]
        if count_words(rest) > MAX_TAIL_WORDS:
            errors.append(f"more than {MAX_TAIL_WORDS} words after the last segment: {rest.strip()[:40]!r}")

    answer = None
    for b in reversed(boxed):
        if b.content is not None:
            answer = b.content.strip() or None
            break
    return ParsedTrace(text, tuple(segments), tuple(boxed), answer, tuple(errors), tail)
