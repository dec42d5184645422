"""Scene-teacher traces pass the validators, and corrupted copies fail with the right reason code."""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import islice

import pytest

from lbdata.records import Problem
from lbdata.sources.synthetic import FAMILIES, SyntheticSource
from lbdata.teachers.scene import write_trace
from lbdata.validate import parse_trace, validate_trace

SEGMENTS_RE = re.compile(
    r"^<think>(?P<t1>.*)</think>\s*<back>(?P<b>.*)</back>\s*<think>(?P<t2>.*)</think>\s*(?P<tail>.*)$", re.S
)


@pytest.fixture(scope="module")
def problems() -> list[Problem]:
    return [row.problem for row in islice(SyntheticSource(seed=11), 120)]


@pytest.fixture(scope="module")
def traces(problems) -> list[tuple[Problem, str, str, bool]]:
    out = []
    for i, p in enumerate(problems):
        for variant in ("semantic_back", "solution_back"):
            t = write_trace(p, variant, seed=i, misread_rate=0.3)
            out.append((p, variant, t.text, t.misread))
    return out


def check(p: Problem, variant: str, text: str):
    return validate_trace(text, variant=variant, gold=p.answer, question=p.question, choices=p.choices)


def test_every_scene_trace_passes_misread_ones_included(problems, traces):
    assert {p.meta["family"] for p in problems} == set(FAMILIES)
    assert any(m for *_, m in traces) and not all(m for *_, m in traces)
    for p, variant, text, misread in traces:
        v = check(p, variant, text)
        assert v.accepted, (variant, misread, v.reasons, text)
        if variant == "solution_back":
            assert v.scores["corrected"] == (1.0 if misread else 0.0), text
    for i, p in enumerate(problems):
        assert check(p, "plain", write_trace(p, "plain", seed=i).text).accepted


def _parts(text: str) -> dict[str, str]:
    m = SEGMENTS_RE.match(text.strip())
    assert m, text
    return m.groupdict()


def _join(t1: str, b: str, t2: str, tail: str) -> str:
    return f"<think>{t1}</think>\n<back>{b}</back>\n<think>{t2}</think>\n{tail}"


def _first_sentence(text: str) -> str:
    return re.split(r"(?<=[.!?])\s+", text.strip())[0]


def _wrong_answer(p: Problem) -> str:
    if p.choices:
        return next(c for c in "ABCD" if c != p.answer)
    return "99999"


CORRUPTIONS: dict[str, tuple[Callable[[dict[str, str], Problem], str], str, tuple[str, ...]]] = {
    # name: (corrupt(parts, problem) -> text, expected reason, variants it applies to)
    "empty_back": (
        lambda s, p: _join(s["t1"], " ", s["t2"], s["tail"]),
        "back_empty",
        ("semantic_back", "solution_back"),
    ),
    "short_back": (
        lambda s, p: _join(s["t1"], " Looks right to me. ", s["t2"], s["tail"]),
        "back_empty",
        ("semantic_back", "solution_back"),
    ),
    "filler_back": (
        lambda s, p: _join(
            s["t1"],
            " Let me look back at the image once more to make sure that everything is "
            "consistent with what I wrote. ",
            s["t2"],
            s["tail"],
        ),
        "back_filler",
        ("semantic_back", "solution_back"),
    ),
    "copied_back": (
        lambda s, p: _join(s["t1"], s["t1"], s["t2"], s["tail"]),
        "back_copy",
        ("semantic_back", "solution_back"),
    ),
    "not_visual_back": (
        lambda s, p: _join(
            s["t1"],
            " Redoing the arithmetic: 3 + 4 = 7, 7 - 2 = 5 and 5 * 2 = 10, so the sums are fine. ",
            s["t2"],
            s["tail"],
        ),
        "back_not_visual",
        ("semantic_back", "solution_back"),
    ),
    "back_moved_before_reasoning": (
        lambda s, p: _join(" ".join(s["t1"].split()[:6]), s["b"], s["t1"] + " " + s["t2"], s["tail"]),
        "back_before_reasoning",
        ("semantic_back",),
    ),
    "answer_before_back": (
        lambda s, p: _join(s["t1"] + f" So the answer is {p.answer}.", s["b"], s["t2"], s["tail"]),
        "answer_before_back",
        ("semantic_back",),
    ),
    "no_candidate": (
        lambda s, p: _join(_first_sentence(s["t1"]), s["b"], s["t2"], s["tail"]),
        "no_candidate_before_back",
        ("solution_back",),
    ),
    "missing_rethink": (
        lambda s, p: _join(s["t1"], s["b"], " Done. ", s["tail"]),
        "no_rethink",
        ("semantic_back", "solution_back"),
    ),
    "boxed_inside_segment": (
        lambda s, p: _join(s["t1"], s["b"], s["t2"] + f" \\boxed{{{p.answer}}} ", ""),
        "boxed_misplaced",
        ("semantic_back", "solution_back"),
    ),
    "boxed_in_back_too": (
        lambda s, p: _join(s["t1"], s["b"] + f" \\boxed{{{p.answer}}}", s["t2"], s["tail"]),
        "multiple_final_answers",
        ("semantic_back", "solution_back"),
    ),
    "wrong_answer": (
        lambda s, p: _join(s["t1"], s["b"], s["t2"], f"\\boxed{{{_wrong_answer(p)}}}"),
        "answer_wrong",
        ("semantic_back", "solution_back"),
    ),
    "no_answer": (
        lambda s, p: _join(s["t1"], s["b"], s["t2"], ""),
        "no_final_answer",
        ("semantic_back", "solution_back"),
    ),
    "back_removed": (
        lambda s, p: f"<think>{s['t1']} {s['t2']}</think>\n{s['tail']}",
        "back_missing",
        ("semantic_back", "solution_back"),
    ),
    "misspelled_tag": (
        lambda s, p: _join(s["t1"], s["b"], s["t2"], s["tail"]).replace("</back>", "</ back>"),
        "malformed_tags",
        ("semantic_back", "solution_back"),
    ),
    "four_backs": (
        lambda s, p: (
            f"<think>{s['t1']}</think>"
            + "".join(
                f"<back>{s['b']} (pass {k})</back><think>Pass {k} agrees with the reading above.</think>"
                for k in range(3)
            )
            + f"<back>{s['b']}</back><think>{s['t2']}</think>\n{s['tail']}"
        ),
        "back_too_many",
        ("semantic_back", "solution_back"),
    ),
}


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_corrupted_scene_traces_fail_with_the_right_code(name, traces):
    corrupt, code, variants = CORRUPTIONS[name]
    n = 0
    for p, variant, text, _ in traces:
        if variant not in variants:
            continue
        bad = corrupt(_parts(text), p)
        v = check(p, variant, bad)
        assert code in v.reasons, (name, variant, v.reasons, bad)
        assert not v.accepted
        n += 1
    assert n >= 100


def test_scene_trace_as_plain_is_back_unexpected(traces):
    for p, _variant, text, _ in traces[:40]:
        assert (
            "back_unexpected"
            in validate_trace(text, variant="plain", gold=p.answer, choices=p.choices).reasons
        )


def test_scene_segments_parse_cleanly(traces):
    for _, _, text, _ in traces:
        parsed = parse_trace(text)
        assert parsed.errors == () and [s.kind for s in parsed.segments] == ["think", "back", "think"]
