"""The validators' fast paths give what the general rules give (seeded random texts, every ASCII pair).

Each fast path (ASCII patterns, filler counts skipped when they cannot decide, memoised numbers) is a
speed-up only: a trace's verdict must not depend on which path read it. ``benchmarks/verdicts.py``
checks the same end to end on thousands of scene traces.
"""

from __future__ import annotations

import itertools
import random
import re

import pytest

from lbdata.validate import backs, grounding, information, placement
from lbdata.validate.config import ValidationConfig
from lbdata.validate.tags import WORD_RE, find_words, parse_trace

# characters the patterns treat specially, ASCII only (the fast paths are taken on ASCII text)
ALPHABET = "aZ09_'., -\n\t!?=+*/^<>~{}\\()%x\x1c" + "answer result boxed correct final so is"


def _texts(n: int, seed: int, max_len: int = 24) -> list[str]:
    rng = random.Random(seed)
    words = [
        "answer",
        "is",
        "Answer:",
        "\\boxed{3}",
        "result",
        "correct option is",
        "final answer",
        "so",
        "=",
    ]
    out = []
    for _ in range(n):
        parts = [
            rng.choice(ALPHABET) if rng.random() < 0.7 else rng.choice(words)
            for _ in range(rng.randint(0, max_len))
        ]
        out.append("".join(parts))
    return out


def _pairs() -> list[str]:
    chars = [chr(i) for i in range(128)]
    return [a + b + c for a, b in itertools.product(chars, repeat=2) for c in ("", "1", "a.")]


def test_ascii_words_are_the_general_words():
    for text in _texts(20000, 1) + _pairs():
        assert find_words(text) == WORD_RE.findall(text), repr(text)
    assert find_words("柱子A高于B 12.5 don't") == WORD_RE.findall("柱子A高于B 12.5 don't")


def test_ascii_grounding_tokens_are_the_general_tokens():
    for text in _texts(20000, 2) + _pairs():
        assert grounding._ASCII_TOKEN_RE.findall(text) == grounding._TOKEN_RE.findall(text), repr(text)


def test_grounding_tokens_taking_the_spaces_before_them_are_the_plain_tokens():
    g = grounding
    plain_ascii = re.compile(g._ASCII_WORD + g._NUMBER + g._PUNCT)
    plain = re.compile(g._ASCII_WORD + g._OTHER_WORD + g._NUMBER + g._CJK_CHAR + g._PUNCT)
    rng = random.Random(5)
    spaced = ["".join(rng.choice(["a", "B", "7", ".", "-", " ", "  ", "\t", "\n", ",", "x1", "柱", "=", "é"])
                      for _ in range(rng.randint(0, 20))) for _ in range(20000)]
    for text in _texts(20000, 3) + _pairs() + spaced:
        assert g._TOKEN_RE.findall(text) == plain.findall(text), repr(text)
        if text.isascii():
            assert g._ASCII_TOKEN_RE.findall(text) == plain_ascii.findall(text), repr(text)


def test_ascii_sentence_split_is_the_general_split():
    for text in _texts(20000, 3) + _pairs():
        assert placement._ASCII_SENTENCE_SPLIT_RE.split(text) == placement._SENTENCE_SPLIT_RE.split(text), (
            repr(text)
        )


def test_answer_lead_ins_found_with_or_without_the_shortcut():
    for text in _texts(20000, 4) + ["The ANSWER is 5", "so the Final Answer: 3", "Correct option is B"]:
        assert placement.states_answer(text) == (placement._STATES_ANSWER_RE.search(text) is not None), repr(
            text
        )
    # the shortcut reads only ASCII text: a long s is a case-insensitive "s" for the pattern
    assert placement.states_answer("the anſwer is 5")


def test_answer_is_lead_in_needs_answer_or_result():
    # find_candidate skips its "the answer is X" search on ASCII text without these words
    for text in _texts(20000, 5) + ["The RESULT: 7", "answer = 3", "Result is 4"]:
        lower = text.lower()
        if text.isascii() and "answer" not in lower and "result" not in lower:
            assert placement._ANSWER_IS_RE.search(text) is None, repr(text)
    assert placement.find_candidate("We add them. The RESULT is 7") == "7"
    assert placement.find_candidate("所以答案是 7") == "7"


@pytest.mark.parametrize(
    "config",
    [ValidationConfig(), ValidationConfig(max_filler_share=0.2, min_rethink_words=8)],
    ids=["default", "strict"],
)
def test_think_rules_same_with_the_filler_bound(monkeypatch, config):
    rng = random.Random(6)
    vocab = (
        "hmm ok okay so well let me think i see the bar is taller than axis 7 嗯 让我想想 好的 wait actually"
    )
    vocab = vocab.split(" ")
    traces = []
    for _ in range(3000):
        think = " ".join(rng.choice(vocab) for _ in range(rng.randint(0, 30)))
        rethink = " ".join(rng.choice(vocab) for _ in range(rng.randint(0, 14)))
        traces.append(f"<think>{think}</think><back>the bar is 7</back><think>{rethink}</think>\\boxed{{7}}")
    fast = [information.think_reasons(parse_trace(t), config) for t in traces]
    monkeypatch.setattr(information, "_filler_words", lambda: _everything)
    exact = [information.think_reasons(parse_trace(t), config) for t in traces]
    assert fast == exact
    assert any("think_filler" in r for r in fast) and any("rethink_filler" in r for r in fast)


class _Everything:
    def __contains__(self, word: object) -> bool:  # every word might be a filler: always count exactly
        return True


_everything = _Everything()


def test_number_evidence_same_as_one_pattern():
    one = re.compile(
        r"\d|\b(?:" + "|".join(sorted(information.lexicon().number_words)) + r")\b", re.IGNORECASE
    )
    for text in _texts(20000, 7) + ["Five bars", "the FOURTH", "seventy", "٣ bars", "none"]:
        fast = bool(backs._DIGIT_RE.search(text) or backs._NUMBER_WORD_RE.search(text))
        assert fast == (one.search(text) is not None), repr(text)


def test_informative_words_bound_decides_like_the_exact_count():
    rng = random.Random(8)
    vocab = [
        "let",
        "me",
        "look",
        "at",
        "the",
        "image",
        "again",
        "to",
        "make",
        "sure",
        "everything",
        "is",
        "correct",
        "bar",
        "7",
        "taller",
        "再看一下图",
        "确保",
        "ok",
    ]
    for _ in range(5000):
        words = find_words(" ".join(rng.choice(vocab) for _ in range(rng.randint(0, 16))).lower())
        exact = information.informative_words(words)
        for k in (1, 4, 8):
            bounded = information.informative_words(words, k)
            assert (bounded < k) == (exact < k), (words, k)
            assert bounded == exact if exact < k else bounded >= k


@pytest.mark.parametrize(("gold", "pred"), [("D1", "99999"), ("W6", "6"), ("AB", "12"), ("Q12", "12"),
                                            ("3", "P3"), ("0", "AC")])
def test_a_number_against_a_label_is_decided_without_sympy(gold, pred, monkeypatch):
    from lbdata.validate import answers

    def no_sympy(*args, **kwargs):
        raise AssertionError("asked sympy")

    monkeypatch.setattr(answers, "_ask_sympy", no_sympy)
    answers._match_cached.cache_clear()
    assert answers.answers_match(gold, pred) is False
    assert answers.answers_match(gold, gold) is True


def test_validating_a_run_starts_no_sympy_worker_when_no_answer_needs_one(tmp_path):
    import subprocess
    import sys

    from lbdata.generate import GenerateConfig, generate

    generate(GenerateConfig(limit=6, seed=3), tmp_path / "run")
    code = (
        "import sys; from lbdata.validate import answers; from lbdata.validate.runner import validate_run;"
        f"validate_run({str(tmp_path / 'run')!r}, progress=False);"
        "sys.exit(answers.answer_stats()['worker_restarts'])"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0
