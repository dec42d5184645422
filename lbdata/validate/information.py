"""How much a segment says, whatever its length or language: repetition, salad, fillers.

Measures over a segment's words (``Segment.words``: lower-cased, a CJK character is one word):

- ``repeat_share`` — how much is said again: the repeats of the most repeated content word
  (``(count - 1) / words``; numbers do not count, "2^2 + 2^2" is arithmetic) or the share of 4-word
  phrases that repeat an earlier one ("the bar is taller" three times: 0.56, "I see 7 7 7 7 7 7 7 7":
  0.57), whichever is larger; ordinary prose stays under 0.15;
- ``word_share`` — the share of real words: not bare numbers, not single letters ("image 1 2 3 4 5 6 7
  8" is 0.11); a CJK character other than a numeral is a real word;
- ``content_words`` — distinct real words that are not stop words;
- ``filler_share`` — the share of words that are fillers ("hmm", "okay", "let me think", "嗯",
  "让我想想");
- ``informative_words`` — the words left once fillers and look-again phrases ("let me look at the
  image again", "to make sure", "再看一下图") are taken out.

The word lists are data, in ``lexicon.yaml`` next to this module, in English and Chinese.
``think_reasons`` turns the measures into ``think_filler`` and ``rethink_filler``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from lbdata.validate.config import ValidationConfig
from lbdata.validate.tags import CJK_RE, WORD_RE, ParsedTrace

LEXICON_PATH = Path(__file__).with_name("lexicon.yaml")


def _words(value: str | list[str]) -> list[str]:
    return value.split() if isinstance(value, str) else [str(v) for v in value]


Phrases = dict[str, tuple[tuple[str, ...], ...]]
"""First word -> the phrases (as words) starting with it, longest first."""


def _phrases(*lists: list[str]) -> Phrases:
    """Phrases of any language as word tuples (a CJK character is a word, so Chinese phrases match too)."""
    by_first: dict[str, set[tuple[str, ...]]] = {}
    for phrase in (p for lst in lists for p in lst):
        words = tuple(WORD_RE.findall(phrase.lower()))
        if words:
            by_first.setdefault(words[0], set()).add(words)
    return {k: tuple(sorted(v, key=len, reverse=True)) for k, v in by_first.items()}


def covered_words(words: list[str], phrases: Phrases) -> int:
    """How many of ``words`` lie inside one of ``phrases`` (longest match first, left to right)."""
    if phrases.keys().isdisjoint(words):
        return 0
    covered = end = 0
    for i in [i for i, w in enumerate(words) if w in phrases]:
        if i < end:
            continue  # inside the phrase matched last
        for p in phrases[words[i]]:
            k = len(p)
            if tuple(words[i : i + k]) == p:
                covered += k
                end = i + k
                break
    return covered


def _phrase_words(phrases: Phrases) -> frozenset[str]:
    """Every word of ``phrases``: a word outside this set is never inside one of them."""
    return frozenset(w for ps in phrases.values() for p in ps for w in p)


@lru_cache(maxsize=1)
def _filler_words() -> frozenset[str]:
    return _phrase_words(lexicon().filler)


@lru_cache(maxsize=1)
def _look_again_words() -> frozenset[str]:
    return _phrase_words(lexicon().look_again)


def _substring_re(entries: list[str]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(p) for p in sorted(entries, key=len, reverse=True)))


@dataclass(frozen=True)
class Lexicon:
    """The word lists of ``lexicon.yaml``: sets of English words, patterns for Chinese terms and phrases."""

    visual_nouns: frozenset[str]
    relation_words: frozenset[str]
    image_words: frozenset[str]
    number_words: frozenset[str]
    stop_words: frozenset[str]
    zh_visual: re.Pattern[str]
    zh_relation: re.Pattern[str]
    zh_image: re.Pattern[str]
    zh_number: re.Pattern[str]
    filler: Phrases
    look_again: Phrases  # look-again phrases and fillers
    disown_before: frozenset[str]
    disown_after: frozenset[str]
    zh_disown_before: re.Pattern[str]
    zh_disown_after: re.Pattern[str]
    grounding: dict[str, frozenset[str]]  # the figure check's word sets, by name


@lru_cache(maxsize=1)
def lexicon() -> Lexicon:
    """The lists of ``lexicon.yaml`` (read once per process)."""
    data = yaml.safe_load(LEXICON_PATH.read_text(encoding="utf-8"))
    vn, rel, img, num = (
        data["visual_nouns"],
        data["relation_words"],
        data["image_words"],
        data["number_words"],
    )
    zh_numerals = "".join(_words(num["zh"]))
    classifiers = "".join(_words(data["number_classifiers_zh"]))
    disown = data["disown"]
    return Lexicon(
        visual_nouns=frozenset(_words(vn["en"]) + _words(vn["colours_en"])),
        relation_words=frozenset(_words(rel["en"])),
        image_words=frozenset(_words(img["en"])),
        number_words=frozenset(_words(num["en"])),
        stop_words=frozenset(_words(data["stop_words"]["en"]) + _words(data["stop_words"]["zh"])),
        zh_visual=_substring_re(_words(vn["zh"]) + _words(vn["colours_zh"])),
        zh_relation=_substring_re(_words(rel["zh"])),
        zh_image=_substring_re(_words(img["zh"])),
        # a Chinese number: two numerals in a row (二十, 三十五) or one before a measure word (三个, 两条)
        zh_number=re.compile(f"[{zh_numerals}]{{2,}}|[{zh_numerals}](?=[{classifiers}])"),
        filler=_phrases(_words(data["fillers"]["en"]), _words(data["fillers"]["zh"])),
        look_again=_phrases(
            _words(data["look_again"]["en"]),
            _words(data["look_again"]["zh"]),
            _words(data["fillers"]["en"]),
            _words(data["fillers"]["zh"]),
        ),
        disown_before=frozenset(_words(disown["before_en"])),
        disown_after=frozenset(_words(disown["after_en"])),
        zh_disown_before=_substring_re(_words(disown["before_zh"])),
        zh_disown_after=_substring_re(_words(disown["after_zh"])),
        grounding={k: frozenset(_words(v)) for k, v in data["grounding"].items()},
    )


def has_cjk(text: str) -> bool:
    return CJK_RE.search(text) is not None


_ZH_NUMERALS = frozenset("零一二两三四五六七八九十百千万")


def _word_test(token: str) -> bool:
    """A real word: two or more characters with a letter, or one CJK character that is not a numeral."""
    if len(token) == 1:
        return token >= "\u1100" and CJK_RE.match(token) is not None and token not in _ZH_NUMERALS
    if token.isalpha():
        return True
    return any(c.isalpha() for c in token)


class _WordMemo(dict[str, bool]):
    """``_word_test`` memoised in a plain dict: a hit is a C-level lookup (``filter(memo.__getitem__, …)``),
    about three times cheaper per word than an ``lru_cache`` call. Cleared when it grows past 65,536 tokens."""

    def __missing__(self, token: str) -> bool:
        if len(self) >= 1 << 16:
            self.clear()
        value = self[token] = _word_test(token)
        return value


_IS_WORD = _WordMemo()
_is_word = _IS_WORD.__getitem__


def repeat_share(words: list[str], limit: float = 0.0) -> float:
    """How much of ``words`` is said again: the larger of the most repeated content word's repeats
    (``(count - 1) / words``; stop words, numbers and single letters alone do not count) and the
    share of 4-word phrases that repeat an earlier one. 0 when nothing repeats.

    With ``limit``, nothing is counted that cannot take more than ``limit`` (every repeat of a word or
    phrase is a word seen before): the result is exact when above ``limit``, at most ``limit``
    otherwise."""
    n_words = len(words)
    if n_words < 2:
        return 0.0
    repeats = n_words - len(set(words))  # occurrences of a word after its first
    if repeats <= limit * min(n_words, n_words - 3):
        return repeats / n_words  # neither a word nor a phrase can repeat past the limit
    stop = lexicon().stop_words
    top = 1  # the count of the most repeated content word (a count decides it: no order among ties matters)
    for w, c in Counter(words).items():
        if c > top and w not in stop and _is_word(w):
            top = c
    best = (top - 1) / n_words
    if n_words >= 8 and repeats / (n_words - 3) > limit:
        grams = set(zip(words, words[1:], words[2:], words[3:], strict=False))
        best = max(best, 1.0 - len(grams) / (n_words - 3))
    return best


def word_stats(words: list[str]) -> tuple[float, int]:
    """``(word_share, content_words)`` in one pass: the share of real words (not bare numbers, not single
    letters; 1.0 when empty) and how many distinct real words are not stop words."""
    if not words:
        return 1.0, 0
    stop = lexicon().stop_words
    real = list(filter(_is_word, words))
    return len(real) / len(words), len(set(real) - stop)


def word_share(words: list[str]) -> float:
    """Share of real words (not bare numbers, not single letters) among ``words`` (1.0 when empty)."""
    return word_stats(words)[0]


def content_words(words: list[str]) -> int:
    """Distinct real words that are not stop words."""
    return word_stats(words)[1]


def filler_share(words: list[str]) -> float:
    """Share of ``words`` that are fillers."""
    return covered_words(words, lexicon().filler) / len(words) if words else 0.0


def informative_words(words: list[str], at_least: int = 0) -> int:
    """Words left once look-again phrases and fillers are taken out.

    With ``at_least``, phrases are not matched when the words outside every phrase's vocabulary are
    that many already: the result is exact when below ``at_least``, at least ``at_least`` otherwise."""
    if at_least:
        left = len(words) - sum(map(_look_again_words().__contains__, words))
        if left >= at_least:
            return left
    return len(words) - covered_words(words, lexicon().look_again)


def is_filler_text(words: list[str], config: ValidationConfig, fillers: int | None = None) -> bool:
    """A think that says nothing: mostly fillers, or one word or phrase said again and again.

    ``fillers`` is ``covered_words(words, lexicon().filler)`` when the caller has it already."""
    if not words:
        return False
    if fillers is None:
        fillers = covered_words(words, lexicon().filler)
    if fillers / len(words) > config.max_filler_share:
        return True
    return repeat_share(words, config.max_repeat_share) > config.max_repeat_share


def think_reasons(parsed: ParsedTrace, config: ValidationConfig) -> list[str]:
    """``think_filler`` for a filler think before (or without) a back; ``rethink_filler`` for the think
    after the last back when it is filler or has fewer than ``min_rethink_words`` words besides fillers."""
    reasons: list[str] = []
    segments = parsed.segments
    last_back = max((i for i, s in enumerate(segments) if s.kind == "back"), default=-1)
    filler_phrases = lexicon().filler
    in_fillers = _filler_words().__contains__
    for i, seg in enumerate(segments):
        words = seg.words
        if seg.kind != "think" or not words:
            continue
        # words that could lie in a filler: when even these decide nothing, the exact count is not needed
        fillers = sum(map(in_fillers, words))
        if fillers / len(words) > config.max_filler_share or len(words) - fillers < config.min_rethink_words:
            fillers = covered_words(words, filler_phrases)
        if i > last_back >= 0:
            n = len(words)  # a rethink shorter than min_rethink_words is no_rethink already
            if n >= config.min_rethink_words and (
                is_filler_text(words, config, fillers) or n - fillers < config.min_rethink_words
            ):
                reasons.append("rethink_filler")
        elif is_filler_text(words, config, fillers):
            reasons.append("think_filler")
    return list(dict.fromkeys(reasons))


__all__ = [
    "Lexicon",
    "content_words",
    "covered_words",
    "filler_share",
    "has_cjk",
    "informative_words",
    "lexicon",
    "repeat_share",
    "think_reasons",
    "word_share",
    "word_stats",
]
