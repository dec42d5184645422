"""``final_answer``: the final answer a whole response states (a box, a tag, a ``####`` line, an answer phrase, …)."""

from __future__ import annotations

import re

from lbdata.validate.normalize.hedges import _OR_RE, hedge_words
from lbdata.validate.normalize.latex import _BOXED_RE

_ANSWER_PHRASE_RE = re.compile(
    r"(?:(?:final\s+answer|\banswer)\b[^\n.:=$]{0,25}?(?:\bis\b|:|=)|答案\s*(?:是|为|：|:))\s*(?:\*\*|__)?\s*[:：]?\s*",
    re.I,
)
_DISPLAY_RE = re.compile(
    r"\\\[((?:(?!\\\[).)+?)\\\]|\$\$((?:(?!\$\$).)+?)\$\$", re.S
)  # no nested opener: linear
_INLINE_RE = re.compile(r"\\\(((?:(?!\\\().)+?)\\\)|(?<!\\)\$((?:\\.|[^$\\])+)\$")  # "$\$18$" is one block
_PROSE_LINE_RE = re.compile(
    r"^(?:[*_#>\s-]*)(?!(?:Yes|No|True|False)\b)[A-Z][a-z]+,?\s.*?\s(?:is|are|equals|was|be)\s+(?P<value>\S.*)$"
)
_BOX_GAP_RE = re.compile(r"^(?:[\s$,;&]|\\quad|\\qquad|\\[,;]|\\text\{\s*(?:and|or)\s*\}|\band\b|\bor\b)*$")
_SENTENCE_END_RE = re.compile(r"(?<![\d\\])\.\s+(?=[A-Z(])|\s+(?:since|because|as|which|where)\s+")
_ANSWER_TAG_RE = re.compile(
    r"<answer>((?:(?!<answer>).)*?)</answer>", re.S | re.I
)  # no nested opener: linear
_WORD_RE = re.compile(r"\b[A-Za-z]{2,}\b")
_SCALE_WORD_RE = re.compile(
    r"\b(?:hundred|thousand|million|billion|trillion|percent|dozen|half|quarter|approximately|about|around|roughly"
    r"|nearly|almost|over|under|least|most)s?\b",
    re.I,
)
_NUMBER_TOKEN_RE = re.compile(r"(?<![\w.,:])-?\d+(?:,\d{3})*(?:\.\d+)?(?![\w]|[.,]\d|:\d|/\d)")
_BOLD_RE = re.compile(r"\*\*([^*\n]{1,60})\*\*")
_IS_THE_ANSWER_RE = re.compile(r"^(?:the|our)\s+(?:final\s+)?(?:answer|result)\b", re.I)
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
        parts, joiner, end = [next(g for g in m.groups() if g is not None)], ", ", m.end()
        while (nxt := _INLINE_RE.search(seg, end)) is not None and _BOX_GAP_RE.match(seg[end : nxt.start()]):
            if re.search(r"\bor\b", seg[end : nxt.start()]):
                joiner = " or "
            parts.append(next(g for g in nxt.groups() if g is not None))
            end = nxt.end()
        return joiner.join(x.strip() for x in parts)  # "$x=1$ and $x=2$": one answer of two values
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
        if (bare == s and not _BOLD_RE.search(s) and _sentence_number(s) is None) or not re.search(
            r"[A-Za-z]{2,}", bare
        ):
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
    if m and not _IS_THE_ANSWER_RE.match(m.group("value")):
        return _math_or_sentence(m.group("value"))
    bold = _last_match(_BOLD_RE, last)
    if bold is not None and re.search(r"[A-Za-z]{3,}", _BOLD_RE.sub("", last)):
        return bold.group(1).strip()  # "The train travels **120 miles**."
    inlines = list(_INLINE_RE.finditer(last))
    if inlines and (
        len(last) > SHORT_ANSWER_CHARS or re.search(r"[A-Za-z]{3,}[,:;]?\s", _INLINE_RE.sub("", last))
    ):
        k = len(inlines) - 1  # "We get $x = 5$ or $x = 6$.": the closing run of maths is one answer
        while k > 0 and _BOX_GAP_RE.match(last[inlines[k - 1].end() : inlines[k].start()]):
            k -= 1
        run = inlines[k:]
        gaps = "".join(last[a.end() : b.start()] for a, b in zip(run, run[1:], strict=False))
        joiner = " or " if re.search(r"\bor\b", gaps) else ", "
        return joiner.join(next(g for g in m.groups() if g is not None).strip() for m in run)
    number = _sentence_number(last)
    return number if number is not None else last


def _sentence_number(line: str) -> str | None:
    """The one number of a plain prose sentence ("In total, she has 15 marbles left." → ``15``), else None."""
    if "\\" in line or "$" in line or len(_WORD_RE.findall(line)) < 4 or _SCALE_WORD_RE.search(line):
        return None
    if hedge_words(line) or _OR_RE.search(line):
        return None
    numbers = _NUMBER_TOKEN_RE.findall(line)
    return numbers[0] if len(numbers) == 1 else None
