"""Where the ``<back>`` segments sit, per variant.

- every variant: ``back_missing`` (a back variant without ``<back>``), ``back_unexpected`` (``plain``
  with one), ``back_too_many`` (more than ``max_backs``), ``no_rethink`` (the think after the last
  back is too short to re-think anything);
- semantic_back: the back comes mid-reasoning — ``back_before_reasoning`` when the think before it is
  too short, ``answer_before_back`` when that think already states the final answer;
- solution_back: the think before the back reaches a candidate answer (``no_candidate_before_back``
  otherwise); when the final answer differs from it, ``scores["corrected"] = 1`` — allowed, the back
  found an error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lbdata.validate import normalize as nz
from lbdata.validate.answers import answers_match
from lbdata.validate.config import ValidationConfig
from lbdata.validate.tags import CJK_RE, ParsedTrace, count_words

_ZH_IS = r"(?:应该是|应为|是|为|等于|＝|=|：|:)"
_STATES_ANSWER_RE = re.compile(
    r"\\boxed|\bfinal\s+answer\b|\banswer\s*(?:is|would\s+be|should\s+be|must\s+be|will\s+be|=|:)"
    r"|\bcorrect\s+(?:option|choice)\s+is\b"
    rf"|最终答案|答案\s*{_ZH_IS}|正确(?:选项|答案)\s*{_ZH_IS}",
    re.IGNORECASE,
)
_ANSWER_IS_RE = re.compile(
    r"(?:\b(?:answer|result)\s*(?:is|would\s+be|should\s+be|must\s+be|will\s+be|=|:)\s*"
    r"(?:probably\s+|likely\s+|option\s+|choice\s+)?)"
    rf"|(?:(?:答案|结果)\s*{_ZH_IS}\s*(?:选项\s*)?)",
    re.IGNORECASE,
)
_SO_IS_RE = re.compile(
    r"(?:\b(?:so|thus|therefore|hence|this\s+gives|that\s+gives|which\s+gives|giving)\b[^.!?\n]{0,120}?"
    r"(?:\bis|\bare|\bequals|=|\bgives|\bget|\bcomes\s+to|\bmakes)\s+)"
    rf"|(?:(?:所以|因此|故|于是|可得|得到|可知)[^。！？\n]{{0,60}}?{_ZH_IS}\s*)",
    re.IGNORECASE,
)
_CANDIDATE_CHARS = 200  # a conclusion is read from at most this many characters after its lead-in
_BOXED_IN_RE = re.compile(r"\\boxed\s*\{")
_CLIP_RE = re.compile(
    r"(?<!\d)\.(?!\d)|\.(?=\s)|[;!?\n]|,\s+(?!\d)|\s(?:because|since|which|as|but|and\s+so|so|for|in|from|when)\b"
    r"|[。，；！？、]|因为|由于",
    re.IGNORECASE,
)
_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])\s*|\n+")
_ASCII_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?])\s+|\n+")  # the same on ASCII text (no 。！？)


def text_before_first_back(parsed: ParsedTrace) -> str:
    """The think text before the first ``<back>`` (all of it, should there be several thinks)."""
    out = []
    for seg in parsed.segments:
        if seg.kind == "back":
            break
        out.append(seg.text)
    return "\n".join(out)


def text_after_last_back(parsed: ParsedTrace) -> str:
    """The think text after the last ``<back>``."""
    out = []
    for seg in reversed(parsed.segments):
        if seg.kind == "back":
            break
        out.append(seg.text)
    return "\n".join(reversed(out))


def states_answer(text: str) -> bool:
    """True when ``text`` states a final answer: "the answer is …", "final answer", or a ``\\boxed``."""
    if text.isascii():  # every English form holds one of these words (case aside); Chinese ones need CJK
        lower = text.lower()
        if "answer" not in lower and "boxed" not in lower and "correct" not in lower:
            return False
    return _STATES_ANSWER_RE.search(text) is not None


def _clip(candidate: str) -> str:
    m = _CLIP_RE.search(candidate)
    c = candidate[: m.start()] if m else candidate
    if "=" in c:  # "18 - 12 = 6": the conclusion is the last right-hand side
        c = c.rsplit("=", 1)[1]
    return c.strip().rstrip(".").strip().strip("$").strip()


def _comparable(candidate: str) -> bool:
    """A candidate ``answers_match`` can compare: short, and a number, an option, yes/no or a few words."""
    if not candidate or len(candidate) > 80 or nz.is_hedged(candidate):
        return False
    return bool(
        re.search(r"\d", candidate)
        or nz.pred_letter(candidate) is not None
        or nz.yes_no(candidate) is not None
        or count_words(candidate) <= 3
        or (
            CJK_RE.search(candidate) is not None and len(candidate) <= 8
        )  # 直角三角形: a CJK character is a word
    )


def find_candidate(think: str) -> str | None:
    """The candidate answer a think reaches, or None.

    Recognised conclusions, the last one in the text wins: ``\\boxed{X}``; "the answer/result is X" or
    "answer: X" anywhere; "so/thus/therefore/hence … is/equals/gives X" in the last two sentences;
    "… = X" (or ``\\approx X``) ending the think. X runs to the end of its sentence or clause.
    """
    text = think.strip()
    found: list[tuple[int, str]] = []
    for m in _BOXED_IN_RE.finditer(text):
        end = nz.matching_brace(text, m.end() - 1)
        if end > 0:
            found.append((m.start(), text[m.end() : end].strip()))
    lower = text.lower() if text.isascii() else None  # English forms hold "answer" or "result" (case aside)
    if lower is None or "answer" in lower or "result" in lower:
        for m in _ANSWER_IS_RE.finditer(text):
            found.append((m.start(), _clip(text[m.end() : m.end() + _CANDIDATE_CHARS])))
    end = text[-2000:]
    sentences = [
        s for s in (_ASCII_SENTENCE_SPLIT_RE if end.isascii() else _SENTENCE_SPLIT_RE).split(end) if s.strip()
    ]
    tail = " ".join(sentences[-2:])[-600:]
    offset = len(text) - len(tail)
    for m in _SO_IS_RE.finditer(tail):
        found.append((offset + m.start(), _clip(tail[m.end() : m.end() + _CANDIDATE_CHARS])))
    last = sentences[-1].rstrip(" .")[-300:] if sentences else ""
    cut = max(((last.rfind(sep), sep) for sep in ("=", "\\approx", "≈")), key=lambda x: x[0])
    if cut[0] >= 0:
        found.append((len(text) - len(last) + cut[0], _clip(last[cut[0] + len(cut[1]) :])))
    for _, cand in sorted(found, key=lambda x: x[0], reverse=True):
        if _comparable(cand):
            return cand
    return None


def placement_reasons(
    parsed: ParsedTrace,
    variant: str,
    config: ValidationConfig,
    *,
    choices: Sequence[str] | None = None,
    with_scores: bool = True,
) -> tuple[list[str], dict[str, float]]:
    """Reason codes and scores for the ``<back>`` placement rules of ``variant``."""
    reasons: list[str] = []
    scores: dict[str, float] = {}
    n_backs = sum(1 for s in parsed.segments if s.kind == "back")
    scores["backs"] = float(n_backs)
    if variant == "plain":
        if n_backs:
            reasons.append("back_unexpected")
        return reasons, scores
    if n_backs == 0:
        reasons.append("back_missing")
        return reasons, scores
    if n_backs > config.max_backs:
        reasons.append("back_too_many")
    before = text_before_first_back(parsed)
    first_back = next(i for i, s in enumerate(parsed.segments) if s.kind == "back")
    last_back = max(i for i, s in enumerate(parsed.segments) if s.kind == "back")
    words_before = sum(len(s.words) for s in parsed.segments[:first_back])
    words_after = sum(len(s.words) for s in parsed.segments[last_back + 1 :])
    scores["words_before_back"] = float(words_before)
    scores["rethink_words"] = float(words_after)
    if variant == "semantic_back":
        if words_before < config.min_words_before_back:
            reasons.append("back_before_reasoning")
        if states_answer(before):
            reasons.append("answer_before_back")
    elif variant == "solution_back":
        candidate = find_candidate(before)
        if candidate is None:
            reasons.append("no_candidate_before_back")
        elif with_scores and parsed.answer is not None:
            same = answers_match(candidate, parsed.answer, choices=choices, timeout_s=config.answer_timeout_s)
            scores["corrected"] = 0.0 if same else 1.0
    if words_after < config.min_rethink_words:
        reasons.append("no_rethink")
    return reasons, scores
