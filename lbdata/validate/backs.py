"""Anti-empty-back rules: a ``<back>`` must really look at the image.

Each back segment is checked on its own:

- ``back_empty`` — fewer than ``min_back_words`` words (an empty back is not checked further);
- ``back_filler`` — no concrete visual evidence: no number (digits or number words), no label or name
  from the question or its choices (``AB``, ``C``, ``France``), and no visual noun (bar, axis, side,
  angle, colour or shape names, …) within four words of a relation word (taller, equal, above,
  parallel, than, …);
- ``back_copy`` — more than ``max_copy_share`` of its word ``copy_ngram``-grams already appear in the
  question or the segments before it, or it is identical (case and spacing aside) to an earlier back;
- ``back_not_visual`` — no image word (image, figure, chart, see, shown, visible, …) and no visual noun;
- ``back_filler`` too when fewer than half of ``min_back_words`` words are left once look-again phrases
  ("let me look at the image again", "to make sure", "再看一下图") and fillers are taken out;
- ``back_repetitive`` — one word or phrase said again and again (``repeat_share`` above
  ``max_repeat_share``): "I see 7 7 7 7 7 7 7 7", "the bar is taller the bar is taller …";
- ``back_low_information`` — number or letter salad: fewer than ``min_word_share`` real words, or fewer
  than ``min_content_words`` distinct content words ("image 1 2 3 4 5 6 7 8").

Every rule reads words the same way in every language (a CJK character is one word), and the cues
(numbers, visual nouns, relations, image words, look-again phrases) come in English and Chinese from
``lexicon.yaml``; a mixed-language back is judged on everything it says.

These are the rules the format reward pays on, so a back that games them ("Let me look back at the
image to double-check everything.") earns nothing.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Sequence
from functools import lru_cache

from lbdata.validate.config import ValidationConfig
from lbdata.validate.information import has_cjk, informative_words, lexicon, repeat_share, word_stats
from lbdata.validate.tags import ParsedTrace, find_words

_LEX = lexicon()
VISUAL_NOUNS = _LEX.visual_nouns
RELATION_WORDS = _LEX.relation_words
IMAGE_WORDS = _LEX.image_words
_DIGIT_RE = re.compile(r"\d")
_NUMBER_WORD_RE = re.compile(r"\b(?:" + "|".join(sorted(_LEX.number_words)) + r")\b", re.IGNORECASE)
_CLAUSE_SPLIT_RE = re.compile(r"[,.;:!?，。；：！？、\n]")


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


_LABEL_TOKEN_RE = re.compile(r"(?<![A-Za-z0-9_])[A-Z]{1,3}\d?'?(?![A-Za-z0-9_'])")
_CAP_WORD_RE = re.compile(r"\b[A-Z][a-z]{2,}\b")
_STOP_CAPS = _wordset(
    "The This That These Those What Which Who Whom Whose When Where Why How Find Given Let Suppose Assume "
    "Compute Calculate Determine Choose Select Use Answer Options Option Choices Choice Question Hint If In "
    "On At For From With And But Not Each Every All Some Any Its Their There Here Are Is Was Were"
)
_A_LABEL_BEFORE = _wordset(
    "point vertex angle side corner option choice label bar line segment region group category shape object "
    "column row labelled labeled marked at from to and of"
)


def question_labels(question: str | None, choices: Sequence[str] | None = None) -> frozenset[str]:
    """Labels and names a back may cite as evidence: capital-letter labels (``A``, ``AB``, ``P1``) and
    capitalised words that are not the first of a sentence, from the question and its choices."""
    return _labels(question, tuple(choices) if choices else None)


@lru_cache(maxsize=4096)
def _labels(question: str | None, choices: tuple[str, ...] | None) -> frozenset[str]:
    labels: set[str] = set()
    texts = [question or ""] + list(choices or [])
    for i, text in enumerate(texts):
        for m in _LABEL_TOKEN_RE.finditer(text):
            tok = m.group(0)
            if tok == "I" or (tok == "A" and re.match(r" [a-z]", text[m.end() : m.end() + 2])):
                continue
            labels.add(tok)
        for sentence in re.split(r"(?<=[.!?:])\s+|\n+", text):
            words = _CAP_WORD_RE.findall(sentence)
            first = sentence.strip().split(" ", 1)[0] if sentence.strip() else ""
            for w in words:
                if w in _STOP_CAPS or (w == first and i == 0):
                    continue
                labels.add(w)
    return frozenset(labels)


def _cites_label(back: str, labels: frozenset[str], has_question: bool) -> bool:
    candidates = labels if has_question else frozenset(m.group(0) for m in _LABEL_TOKEN_RE.finditer(back))
    for label in candidates:
        if label == "I":
            continue
        for m in re.finditer(r"(?<![A-Za-z0-9_'])" + re.escape(label) + r"(?![A-Za-z0-9_'])", back):
            if label != "A":
                return True
            before = re.findall(r"[a-z]+", back[max(0, m.start() - 12) : m.start()].lower())
            followed_by_word = re.match(r" [a-z]", back[m.end() : m.end() + 2]) is not None
            if (before and before[-1] in _A_LABEL_BEFORE) or not followed_by_word:
                return True
    return False


def _is_relation(words: list[str], j: int) -> bool:
    w = words[j]
    if w in RELATION_WORDS:
        return True
    # "right" is a relation in "to the right (of)", "right of", not in "looks right"
    return w == "right" and (
        (j > 0 and words[j - 1] == "the") or (j + 1 < len(words) and words[j + 1] == "of")
    )


def _tied_visual_noun(words: list[str], window: int = 4) -> bool:
    nouns = [i for i, w in enumerate(words) if w in VISUAL_NOUNS]
    if not nouns:
        return False
    rel = [j for j in range(len(words)) if _is_relation(words, j)]
    for i in nouns:  # is there a relation within `window` words of this noun?
        k = bisect_left(rel, i - window)
        if k < len(rel) and rel[k] <= i + window:
            return True
    return False


def has_evidence(
    back: str, labels: frozenset[str], *, has_question: bool, words: list[str] | None = None
) -> bool:
    """Concrete visual evidence: a number, a label from the question, or a visual noun tied to a relation.

    ``words`` are the back's lower-cased words when the caller has them already.
    """
    if _DIGIT_RE.search(back) or _NUMBER_WORD_RE.search(back):  # a digit, or a number written as a word
        return True
    if _cites_label(back, labels, has_question):
        return True
    if _tied_visual_noun(words if words is not None else find_words(back.lower())):
        return True
    return has_cjk(back) and _cjk_evidence(back)


def _cjk_evidence(back: str) -> bool:
    """Chinese evidence: a number written in numerals (三个, 二十), or a visual noun and a relation word in
    the same clause (A柱高于B柱)."""
    if _LEX.zh_number.search(back):
        return True
    for clause in _CLAUSE_SPLIT_RE.split(back):
        if _LEX.zh_visual.search(clause) and _LEX.zh_relation.search(clause):
            return True
    return False


def refers_to_image(back: str, words: list[str] | None = None) -> bool:
    """True when the back mentions the image or something visual in it (in English or Chinese)."""
    seen = set(words if words is not None else find_words(back.lower()))
    if not seen.isdisjoint(IMAGE_WORDS) or not seen.isdisjoint(VISUAL_NOUNS):
        return True
    return has_cjk(back) and bool(_LEX.zh_image.search(back) or _LEX.zh_visual.search(back))


def _ngrams(words: list[str], n: int) -> list[tuple[str, ...]]:
    return list(zip(*(words[i:] for i in range(n)), strict=False))


@lru_cache(maxsize=4096)
def _question_ngrams(question: str, n: int) -> frozenset[tuple[str, ...]]:
    return frozenset(_ngrams(find_words(question.lower()), n))


def back_reasons(
    parsed: ParsedTrace,
    config: ValidationConfig,
    *,
    question: str | None = None,
    choices: Sequence[str] | None = None,
) -> tuple[list[str], dict[str, float]]:
    """Reason codes (each at most once) and scores for every ``<back>`` of a parsed trace."""
    reasons: list[str] = []
    scores: dict[str, float] = {}
    if not any(s.kind == "back" for s in parsed.segments):
        return reasons, scores
    labels = question_labels(question, choices)
    n = config.copy_ngram
    seen: set[tuple[str, ...]] = set(_question_ngrams(question or "", n))
    earlier_backs: set[str] = set()
    min_words, max_copy = 10**9, 0.0
    last_back = max(i for i, s in enumerate(parsed.segments) if s.kind == "back")
    for seg in parsed.segments[: last_back + 1]:  # what follows the last back is compared with nothing
        words = seg.words
        grams = _ngrams(words, n)
        if seg.kind == "back":
            min_words = min(min_words, len(words))
            if len(words) < config.min_back_words:
                reasons.append("back_empty")
            else:
                if (
                    not has_evidence(seg.text, labels, has_question=question is not None, words=words)
                    or informative_words(words, (config.min_back_words + 1) // 2)
                    < (config.min_back_words + 1) // 2
                ):
                    reasons.append("back_filler")
                if repeat_share(words, config.max_repeat_share) > config.max_repeat_share:
                    reasons.append("back_repetitive")
                share, content = word_stats(words)
                if share < config.min_word_share or content < config.min_content_words:
                    reasons.append("back_low_information")
                if not refers_to_image(seg.text, words):
                    reasons.append("back_not_visual")
                share = sum(map(seen.__contains__, grams)) / len(grams) if grams else 0.0
                max_copy = max(max_copy, share)
                key = " ".join(words)
                if share > config.max_copy_share or key in earlier_backs:
                    reasons.append("back_copy")
                earlier_backs.add(key)
        seen.update(grams)
    scores["back_words_min"] = float(min_words)
    scores["back_copy_max"] = round(max_copy, 4)
    return list(dict.fromkeys(reasons)), scores
