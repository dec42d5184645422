"""How much a segment says, whatever its length or language: repetition, salad, fillers.

Measures over a segment's words (``Segment.words``: lower-cased, a CJK character is one word):

- ``repeat_share`` — the most repeated word or phrase of 1–4 words: how much of the segment its
  repeats take (``(count - 1) × n / words``; stop words alone do not count). "7 7 7 7 7 7 7 7" is 0.7
  of "I see 7 7 7 7 7 7 7 7"; "the bar is taller" three times is 0.67; ordinary prose stays under 0.15;
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


def _phrase_re(english: list[str], chinese: list[str]) -> re.Pattern[str]:
    """One pattern for phrases of both languages: English on whole words, Chinese as substrings."""
    parts = []
    if english:
        alts = "|".join(re.escape(p) for p in sorted(english, key=len, reverse=True))
        parts.append(rf"(?<![\w'])(?:{alts})(?![\w'])")
    if chinese:
        parts.append("|".join(re.escape(p) for p in sorted(chinese, key=len, reverse=True)))
    return re.compile("|".join(parts))


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
    filler: re.Pattern[str]
    look_again: re.Pattern[str]
    disown_before: frozenset[str]
    disown_after: frozenset[str]
    zh_disown_before: re.Pattern[str]
    zh_disown_after: re.Pattern[str]


@lru_cache(maxsize=1)
def lexicon() -> Lexicon:
    """The lists of ``lexicon.yaml`` (read once per process)."""
    data = yaml.safe_load(LEXICON_PATH.read_text(encoding="utf-8"))
    vn, rel, img, num = data["visual_nouns"], data["relation_words"], data["image_words"], data["number_words"]
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
        filler=_phrase_re(_words(data["fillers"]["en"]), _words(data["fillers"]["zh"])),
        look_again=_phrase_re(_words(data["look_again"]["en"]), _words(data["look_again"]["zh"])),
        disown_before=frozenset(_words(disown["before_en"])),
        disown_after=frozenset(_words(disown["after_en"])),
        zh_disown_before=_substring_re(_words(disown["before_zh"])),
        zh_disown_after=_substring_re(_words(disown["after_zh"])),
    )


def has_cjk(text: str) -> bool:
    return CJK_RE.search(text) is not None


def _is_word(token: str) -> bool:
    """A real word: two or more characters with a letter, or one CJK character that is not a numeral."""
    if len(token) == 1:
        return CJK_RE.match(token) is not None and token not in "零一二两三四五六七八九十百千万"
    return not token.replace(".", "").replace(",", "").isdigit() and any(c.isalpha() for c in token)


def repeat_share(words: list[str]) -> float:
    """How much of ``words`` the repeats of its most repeated 1–4-word phrase take (0 when none repeats)."""
    n_words = len(words)
    if n_words < 2:
        return 0.0
    stop = lexicon().stop_words
    best = 0
    counts = Counter(words)
    for word, c in counts.most_common():
        if c < 2:
            break
        if word not in stop:
            best = c - 1
            break
    if len(counts) == n_words:  # no word repeats, so no phrase does
        return best / n_words
    for n in (2, 3, 4):
        if n_words < 2 * n:
            break
        (_, c), = Counter(zip(*(words[i:] for i in range(n)), strict=False)).most_common(1)
        if c < 2:
            break  # no n-gram repeats, so no longer one does
        best = max(best, (c - 1) * n)
    return min(best / n_words, 1.0)


def word_share(words: list[str]) -> float:
    """Share of real words (not bare numbers, not single letters) among ``words`` (1.0 when empty)."""
    if not words:
        return 1.0
    return sum(1 for w in words if _is_word(w)) / len(words)


def content_words(words: list[str]) -> int:
    """Distinct real words that are not stop words."""
    stop = lexicon().stop_words
    return len({w for w in words if w not in stop and _is_word(w)})


def filler_share(text: str, n_words: int) -> float:
    """Share of the ``n_words`` words of ``text`` that are fillers."""
    if not n_words:
        return 0.0
    left = len(WORD_RE.findall(lexicon().filler.sub(" ", text.lower())))
    return max(0.0, 1.0 - left / n_words)


def informative_words(text: str) -> int:
    """Words of ``text`` left once look-again phrases and fillers are taken out."""
    lex = lexicon()
    rest = lex.look_again.sub(" ", text.lower())
    return len(WORD_RE.findall(lex.filler.sub(" ", rest)))


def is_filler_text(text: str, words: list[str], config: ValidationConfig) -> bool:
    """A think that says nothing: mostly fillers, or one word or phrase said again and again."""
    if not words:
        return False
    return filler_share(text, len(words)) > config.max_filler_share or repeat_share(words) > config.max_repeat_share


def think_reasons(parsed: ParsedTrace, config: ValidationConfig) -> list[str]:
    """``think_filler`` for a filler think before (or without) a back; ``rethink_filler`` for the think
    after the last back when it is filler or has fewer than ``min_rethink_words`` informative words."""
    reasons: list[str] = []
    segments = parsed.segments
    last_back = max((i for i, s in enumerate(segments) if s.kind == "back"), default=-1)
    for i, seg in enumerate(segments):
        if seg.kind != "think" or not seg.words:
            continue
        if i > last_back >= 0:
            n = len(seg.words)
            informative = n - round(filler_share(seg.text, n) * n)
            if is_filler_text(seg.text, seg.words, config) or (
                n >= config.min_rethink_words > informative
            ):
                reasons.append("rethink_filler")
        elif is_filler_text(seg.text, seg.words, config):
            reasons.append("think_filler")
    return list(dict.fromkeys(reasons))


__all__ = [
    "Lexicon",
    "content_words",
    "filler_share",
    "has_cjk",
    "informative_words",
    "lexicon",
    "repeat_share",
    "think_reasons",
    "word_share",
]
