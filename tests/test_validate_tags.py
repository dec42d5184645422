"""parse_trace: segments with spans, the final answer, and grammar errors."""

from __future__ import annotations

import pytest

from lbdata.validate import ParsedTrace, Segment, parse_trace
from lbdata.validate.tags import count_words


def test_segments_in_order_with_spans():
    text = "  <think> a b </think>\n<back> c </back> <think>d</think> \\boxed{5}"
    p = parse_trace(text)
    assert isinstance(p, ParsedTrace)
    assert [s.kind for s in p.segments] == ["think", "back", "think"]
    assert [s.text for s in p.segments] == [" a b ", " c ", "d"]
    for s in p.segments:
        assert isinstance(s, Segment)
        assert text[s.span[0] : s.span[1]].startswith(f"<{s.kind}>")
        assert text[s.span[0] : s.span[1]].endswith(f"</{s.kind}>")
    assert p.answer == "5" and p.errors == () and p.well_formed
    assert [s.kind for s in p.backs] == ["back"] and len(p.thinks) == 2


@pytest.mark.parametrize(
    ("tail", "answer"),
    [
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),
        ("\\boxed{ 12\\sqrt{2} }", "12\\sqrt{2}"),
        ("\\boxed{\\text{B}}.", "\\text{B}"),
        ("\\boxed {7}", "7"),
        ("\\boxed{}", None),
        ("\\boxed{7", None),
        ("", None),
    ],
)
def test_final_answer_is_the_last_balanced_boxed(tail, answer):
    assert parse_trace(f"<think>x</think> {tail}").answer == answer


def test_last_boxed_wins_and_every_boxed_is_located():
    p = parse_trace("<think>\\boxed{1}</think> \\boxed{2}")
    assert p.answer == "2"
    assert [(b.content, b.in_tail) for b in p.boxed] == [("1", False), ("2", True)]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("<think>a</think><answer>5</answer>", "unknown or misspelled tag '<answer>'"),
        ("<Think>a</Think> \\boxed{1}", "misspelled"),
        ("<think >a</think> \\boxed{1}", "misspelled"),
        ("<think>a<back>b</back></think> \\boxed{1}", "<back> opened inside <think>"),
        ("<think>a</think></back> \\boxed{1}", "stray </back>"),
        ("<think>a</back> \\boxed{1}", "</back> closes <think>"),
        ("<think>a \\boxed{1}", "<think> is never closed"),
        ("Sure. <think>a</think> \\boxed{1}", "text before the first <think>"),
        ("<think>a</think> and <back>b</back><think>c</think> \\boxed{1}", "text between segments"),
        ("<back>b</back><think>c</think> \\boxed{1}", "does not start with <think>"),
        ("<think>a</think><think>b</think> \\boxed{1}", "two <think> segments in a row"),
        ("<think>a</think><back>b</back> \\boxed{1}", "not followed by a <think>"),
        ("\\boxed{1}", "no <think> segment"),
        ("<think>a</think> \\boxed{1} because one two three four five six seven eight nine", "words after"),
    ],
)
def test_grammar_errors(text, error):
    p = parse_trace(text)
    assert any(error in e for e in p.errors), p.errors
    assert not p.well_formed


def test_math_comparisons_are_not_tags():
    p = parse_trace("<think>since 3 < 5 and x > 2, also a<b and y>1</think> \\boxed{1}")
    assert p.errors == ()


@pytest.mark.parametrize("text", ["", "<", "</", "<think", "}}}{{{", "\\boxed{{{"])
def test_garbage_is_a_malformed_parse_with_its_reason(text):
    p = parse_trace(text)
    assert p.text == text and p.segments == () and p.answer is None
    assert p.errors == ("no <think> segment",) and not p.well_formed


def test_crossed_closing_tags_are_each_reported_with_their_offset():
    text = "<back></think><think></back>" * 50
    p = parse_trace(text)
    assert not p.well_formed and p.answer is None
    assert [s.kind for s in p.segments] == ["back", "think"] * 50
    assert [s.span for s in p.segments[:2]] == [(0, 14), (14, 28)] and p.segments[-1].span[1] == len(text)
    assert p.errors[:2] == ("</think> closes <back> at 6", "</back> closes <think> at 21")
    assert len(p.errors) == 101 and p.errors[-1] == "the trace does not start with <think>"


def test_word_count():
    assert count_words("The bar is 12.5 cm, isn't it?") == 7
    assert count_words("  ") == 0
