"""validate_trace and format_ok on labelled trace tables: good traces pass, each bad one gets its code."""

from __future__ import annotations

from pathlib import Path

import pytest

from lbdata.records import Verdict
from lbdata.validate import REASONS, ValidationConfig, format_ok, validate_trace

Q = (
    "The bar chart shows units sold on Monday, Tuesday and Wednesday. "
    "How many more units were sold on Tuesday than on Monday?"
)
GOLD = "7"

T1 = (
    "The question asks how many more units were sold on Tuesday than on Monday, so I need the heights "
    "of those two bars and then their difference."
)
BACK = "Looking at the chart again, the Tuesday bar ends exactly at the 19 gridline and the Monday bar stops at 12."
BACK2 = "Checking the axis once more, the gridlines are spaced by 1 unit, with 10 at the fifth line from the bottom."
BACK3 = "The Wednesday bar, to the right of Tuesday, is shorter than both and is not needed for the question."
BACK4 = "Zooming in on the top of the Monday bar, its edge sits on the 12 line and not above it."
T2 = "So Tuesday is 19 and Monday is 12, and the difference is 19 - 12 = 7 units."


def sem(t1: str = T1, back: str = BACK, t2: str = T2, tail: str = "\\boxed{7}") -> str:
    return f"<think>{t1}</think>\n<back>{back}</back>\n<think>{t2}</think>\n{tail}"


S1 = (
    "Monday's bar reaches 12 and Tuesday's bar looks like it reaches 18, so the difference is 18 - 12 = 6. "
    "So the answer is 6."
)
SBACK = (
    "Checking the chart element by element: the Monday bar stops at the 12 gridline, but the Tuesday bar "
    "ends one line higher, at 19, not 18."
)
S2 = "With Tuesday at 19 instead of 18, the difference is 19 - 12 = 7, so the answer is 7, not 6."
S1_OK = "Monday's bar reaches 12 and Tuesday's bar reaches 19, so the difference is 19 - 12 = 7."
SBACK_OK = (
    "Verifying against the chart: the Monday bar tops out at the 12 gridline and the Tuesday bar at 19."
)
S2_OK = "Both readings hold, so the difference of 7 units stands and the answer is 7."


def sol(t1: str = S1, back: str = SBACK, t2: str = S2, tail: str = "\\boxed{7}") -> str:
    return f"<think>{t1}</think>\n<back>{back}</back>\n<think>{t2}</think>\n{tail}"


PLAIN = "<think>Monday is 12 and Tuesday is 19, so the difference is 19 - 12 = 7.</think> \\boxed{7}"

QG = "In right triangle ABC the right angle is at C. Which side is the hypotenuse? Choices: A. AB B. BC C. AC D. none"
GEO = (
    "<think>The hypotenuse is the side opposite the right angle, so I need to find which vertex carries the "
    "right-angle mark in the figure.</think>\n"
    "<back>In the figure the small square sits in the corner at C, so the side opposite C is AB, drawn across "
    "the top.</back>\n<think>The side opposite the right angle at C is AB, which is option A.</think> \\boxed{A}"
)

# (name, variant, text, gold, question, expected reasons in REASONS order)
GOOD = [
    ("semantic", "semantic_back", sem(), GOLD, Q),
    ("semantic_no_question", "semantic_back", sem(), GOLD, None),
    (
        "semantic_two_backs",
        "semantic_back",
        f"<think>{T1}</think><back>{BACK}</back><think>Monday is 12, and before subtracting I check the scale."
        f"</think><back>{BACK2}</back><think>{T2}</think> \\boxed{{7}}",
        GOLD,
        Q,
    ),
    ("semantic_tail_words", "semantic_back", sem(tail="Final answer: $\\boxed{7}$."), GOLD, Q),
    ("semantic_mc_labels", "semantic_back", GEO, "A", QG),
    ("solution_corrected", "solution_back", sol(), GOLD, Q),
    ("solution_confirmed", "solution_back", sol(S1_OK, SBACK_OK, S2_OK), GOLD, Q),
    (
        "solution_equals_at_end",
        "solution_back",
        sol("Monday is 12 and Tuesday is 19 on the chart, and 19 - 12 = 7.", SBACK_OK, S2_OK),
        GOLD,
        Q,
    ),
    ("plain", "plain", PLAIN, GOLD, Q),
    ("plain_unit_answer", "plain", PLAIN.replace("\\boxed{7}", "\\boxed{7 \\text{ units}}"), GOLD, Q),
]


@pytest.mark.parametrize(("name", "variant", "text", "gold", "question"), GOOD, ids=[g[0] for g in GOOD])
def test_good_traces_pass(name, variant, text, gold, question):
    v = validate_trace(text, variant=variant, gold=gold, question=question)
    assert v.reasons == [] and v.accepted, v
    assert v.scores["answer_match"] == 1.0
    assert format_ok(text, variant, question=question)


FOUR_ROUNDS = (
    f"<think>{T1}</think><back>{BACK}</back><think>Tuesday is 19 and Monday is 12 as read.</think>"
    f"<back>{BACK2}</back><think>The scale is one unit per line, as assumed.</think>"
    f"<back>{BACK3}</back><think>Wednesday plays no part in the difference.</think>"
    f"<back>{BACK4}</back><think>{T2}</think> \\boxed{{7}}"
)
SAME_BACK_TWICE = (
    f"<think>{T1}</think><back>{BACK}</back><think>Tuesday is 19, Monday 12, as read before.</think>"
    f"<back>{BACK}</back><think>{T2}</think> \\boxed{{7}}"
)

BAD = [
    # grammar
    ("unknown_tag", "semantic_back", sem(t2=T2 + " <answer>7</answer>"), ["malformed_tags"]),
    (
        "misspelled_tag",
        "semantic_back",
        sem().replace("<back>", "<Back>"),
        ["malformed_tags", "back_missing"],
    ),
    (
        "text_between_segments",
        "semantic_back",
        sem().replace("</think>\n<back>", "</think> So then <back>", 1),
        ["malformed_tags"],
    ),
    ("text_before_first_think", "semantic_back", "Sure! " + sem(), ["malformed_tags"]),
    (
        "nested_back",
        "semantic_back",
        f"<think>{T1} <back>{BACK}</back> more</think><think>{T2}</think> \\boxed{{7}}",
        ["malformed_tags", "back_missing"],
    ),
    (
        "unclosed_think",
        "plain",
        "<think>Monday is 12 and Tuesday is 19, so 7. \\boxed{7}",
        ["malformed_tags", "boxed_misplaced"],
    ),
    (
        "two_backs_in_a_row",
        "semantic_back",
        f"<think>{T1}</think><back>{BACK}</back><back>{BACK2}</back><think>{T2}</think> \\boxed{{7}}",
        ["malformed_tags"],
    ),
    (
        "ends_with_back",
        "semantic_back",
        f"<think>{T1} {T2}</think><back>{BACK}</back> \\boxed{{7}}",
        ["malformed_tags", "no_rethink"],
    ),
    (
        "back_after_boxed",
        "semantic_back",
        f"<think>{T1} {T2}</think> \\boxed{{7}} <back>{BACK}</back>",
        ["malformed_tags", "boxed_misplaced", "no_rethink"],
    ),
    (
        "long_tail",
        "plain",
        PLAIN + " This is because Tuesday had seven more units sold than Monday had in total.",
        ["malformed_tags"],
    ),
    ("no_final_answer", "semantic_back", sem(tail=""), ["no_final_answer"]),
    ("empty_boxed", "semantic_back", sem(tail="\\boxed{}"), ["no_final_answer"]),
    ("unbalanced_boxed", "plain", PLAIN.replace("\\boxed{7}", "\\boxed{7"), ["no_final_answer"]),
    (
        "boxed_in_think_and_tail",
        "semantic_back",
        sem(t2=T2 + " \\boxed{7}"),
        ["multiple_final_answers", "boxed_misplaced"],
    ),
    ("boxed_only_in_think", "semantic_back", sem(t2=T2 + " \\boxed{7}", tail=""), ["boxed_misplaced"]),
    (
        "boxed_in_back",
        "semantic_back",
        sem(back=BACK + " \\boxed{7}"),
        ["multiple_final_answers", "boxed_misplaced"],
    ),
    ("think_empty", "plain", "<think> </think> \\boxed{7}", ["think_empty"]),
    # answer
    ("wrong_answer", "semantic_back", sem(tail="\\boxed{6}"), ["answer_wrong"]),
    ("hedged_answer", "semantic_back", sem(tail="\\boxed{7 or 8}"), ["answer_hedged"]),
    # placement
    ("back_missing", "semantic_back", f"<think>{T1} {T2}</think> \\boxed{{7}}", ["back_missing"]),
    ("back_missing_solution", "solution_back", f"<think>{S1} {S2}</think> \\boxed{{7}}", ["back_missing"]),
    ("back_unexpected", "plain", sem(), ["back_unexpected"]),
    ("back_too_many", "semantic_back", FOUR_ROUNDS, ["back_too_many"]),
    (
        "back_before_reasoning",
        "semantic_back",
        sem(t1="Let me look at the chart first."),
        ["back_before_reasoning"],
    ),
    ("answer_before_back", "semantic_back", sem(t1=T1 + " So the answer is 7."), ["answer_before_back"]),
    (
        "final_answer_before_back",
        "semantic_back",
        sem(t1=T1 + " My final answer: 7."),
        ["answer_before_back"],
    ),
    (
        "boxed_before_back",
        "semantic_back",
        sem(t1=T1 + " \\boxed{7}"),
        ["multiple_final_answers", "boxed_misplaced", "answer_before_back"],
    ),
    ("no_candidate_before_back", "solution_back", sol(t1=T1), ["no_candidate_before_back"]),
    ("no_rethink_semantic", "semantic_back", sem(t2="So, 7."), ["no_rethink"]),
    ("no_rethink_solution", "solution_back", sol(t2="Fixed."), ["no_rethink"]),
    # anti-empty-back
    ("back_empty", "semantic_back", sem(back="Checked, fine."), ["back_empty"]),
    ("back_blank", "semantic_back", sem(back=" "), ["back_empty"]),
    (
        "back_filler",
        "semantic_back",
        sem(back="Let me look back at the image again to make sure that I read everything correctly."),
        ["back_filler"],
    ),
    (
        "back_filler_checking",
        "solution_back",
        sol(back="Checking the figure again, the bars look consistent with what I wrote above."),
        ["back_filler"],
    ),
    ("back_copy_of_think", "semantic_back", sem(back=T1), ["back_copy"]),
    ("back_copy_identical_backs", "semantic_back", SAME_BACK_TWICE, ["back_copy"]),
    (
        "back_not_visual",
        "semantic_back",
        sem(
            back="Recomputing the arithmetic once more: 19 - 12 = 7, and 12 + 7 = 19, so the subtraction holds."
        ),
        ["back_not_visual"],
    ),
    (
        "back_filler_and_not_visual",
        "semantic_back",
        sem(back="I am confident in the reasoning so far and everything is consistent overall."),
        ["back_filler", "back_not_visual"],
    ),
    # information, not length (any language)
    ("back_same_number_again", "semantic_back", sem(back=" I see 7 7 7 7 7 7 7 7 "),
     ["back_repetitive", "back_low_information"]),
    ("back_number_salad", "semantic_back", sem(back=" image 1 2 3 4 5 6 7 8 "), ["back_low_information"]),
    ("back_phrase_again", "semantic_back", sem(back=BACK + " The Tuesday bar is 19. The Tuesday bar is 19. "
                                                "The Tuesday bar is 19. The Tuesday bar is 19."), ["back_repetitive"]),
    ("back_chinese_filler", "semantic_back", sem(back="让我再回头看一下图片，确保我的推理是正确的，一切都没有问题。"),
     ["back_filler"]),
    ("think_of_hmm", "semantic_back", sem(t1=" hmm" * 12 + " "), ["think_filler"]),
    ("think_of_chinese_filler", "semantic_back", sem(t1="嗯" * 15), ["think_filler"]),
    ("rethink_of_ok", "semantic_back", sem(t2=" ok ok ok ok ok "), ["rethink_filler"]),
    ("rethink_of_fillers", "solution_back", sol(t2=" Okay, well, hmm, so yeah, alright, I think so, got it. "),
     ["rethink_filler"]),
]


@pytest.mark.parametrize(("name", "variant", "text", "expected"), BAD, ids=[b[0] for b in BAD])
def test_bad_traces_get_exactly_their_reasons(name, variant, text, expected):
    v = validate_trace(text, variant=variant, gold=GOLD, question=Q)
    assert v.reasons == expected, v
    assert not v.accepted


def test_every_reason_code_has_a_crafted_trace():
    # insert_changed_reasoning needs a base trace, back_contradicts_figure scene facts: tested in their files
    covered = {code for *_, expected in BAD for code in expected} | {"insert_changed_reasoning", "back_contradicts_figure"}
    assert covered == set(REASONS)


def test_all_reasons_are_reported_together():
    text = "<think>Look.</think><back>Fine.</back><think>Ok.</think> \\boxed{6} \\boxed{5}"
    v = validate_trace(text, variant="semantic", gold="7", question=Q)
    assert v.reasons == [
        "multiple_final_answers",
        "answer_wrong",
        "back_before_reasoning",
        "no_rethink",
        "back_empty",
    ]
    assert v.answer == "5"


def test_solution_back_correction_is_scored():
    assert validate_trace(sol(), variant="solution_back", gold=GOLD).scores["corrected"] == 1.0
    ok = validate_trace(sol(S1_OK, SBACK_OK, S2_OK), variant="solution_back", gold=GOLD)
    assert ok.scores["corrected"] == 0.0


def test_labels_from_the_question_count_as_evidence():
    back = "In the figure, the little mark is drawn at vertex C, across from AB, so that is where it sits."
    text = GEO.split("<back>")[0] + f"<back>{back}</back>" + GEO.split("</back>")[1]
    assert validate_trace(text, variant="semantic", gold="A", question=QG).accepted
    q_without_labels = "Which side of the right triangle is the hypotenuse?"
    v = validate_trace(text, variant="semantic", gold="A", question=q_without_labels)
    assert "back_filler" in v.reasons  # C and AB are not from this question, and no number or relation


def test_verdict_fields_and_config_hash():
    cfg = ValidationConfig(min_back_words=4)
    v = validate_trace(sem(), variant="semantic-back", gold=GOLD, config=cfg, trace_id="t1")
    assert isinstance(v, Verdict)
    assert v.trace_id == "t1" and v.config_hash == cfg.config_hash and v.answer == "7"
    assert validate_trace(sem(), variant="semantic", gold=GOLD).trace_id == ""


def test_thresholds_come_from_the_config():
    text = sem(back="Bar Tuesday reaches 19 there.")
    assert validate_trace(text, variant="semantic", gold=GOLD).reasons == ["back_empty"]
    assert validate_trace(
        text, variant="semantic", gold=GOLD, config=ValidationConfig(min_back_words=5)
    ).accepted
    assert not validate_trace(FOUR_ROUNDS, variant="semantic", gold=GOLD).accepted
    assert validate_trace(
        FOUR_ROUNDS, variant="semantic", gold=GOLD, config=ValidationConfig(max_backs=4)
    ).accepted


def test_insert_mode_detects_changed_reasoning():
    base = f"<think>{T1} {T2}</think> \\boxed{{7}}"
    inserted = f"<think>{T1}</think>\n<back>{BACK}</back>\n<think>{T2}</think>\n\\boxed{{7}}"
    v = validate_trace(inserted, variant="semantic", gold=GOLD, question=Q, base_trace=base)
    assert v.accepted and v.scores["insert_overlap"] == 1.0
    rewritten = sem(
        t2="Thus the gap between the Tuesday bar and the Monday bar comes out as seven units in all."
    )
    v = validate_trace(rewritten, variant="semantic", gold=GOLD, question=Q, base_trace=base)
    assert v.reasons == ["insert_changed_reasoning"] and v.scores["insert_overlap"] < 0.9
    untagged_base = f"{T1} {T2}"
    assert validate_trace(
        inserted, variant="semantic", gold=GOLD, question=Q, base_trace=untagged_base
    ).accepted


# The format reward pays only on format_ok; none of these hacks may earn it (issue: rewards).
HACKS = {
    "empty_back": sem(back=""),
    "filler_back": sem(back="Let me look back at the image to double-check everything carefully here."),
    "back_copied_from_think": sem(back=T1),
    "back_outside_alternation": f"<back>{BACK}</back><think>{T1} {T2}</think> \\boxed{{7}}",
    "back_after_boxed": f"<think>{T1} {T2}</think> \\boxed{{7}} <back>{BACK}</back><think>{T2}</think>",
    "boxed_inside_back": sem(back=BACK + " \\boxed{7}", tail=""),
    "five_backs": FOUR_ROUNDS.replace(
        f"<think>{T2}</think>",
        f"<think>Nearly done.</think><back>{BACK3} Also the 7 line.</back><think>{T2}</think>",
    ),
    "no_back": f"<think>{T1} {T2}</think> \\boxed{{7}}",
}


@pytest.mark.parametrize("name", list(HACKS))
def test_format_ok_refuses_reward_hacks(name):
    assert not format_ok(HACKS[name], "semantic_back", question=Q)


def test_format_ok_ignores_answer_correctness():
    assert format_ok(sem(tail="\\boxed{6}"), "semantic_back", question=Q)
    assert format_ok(PLAIN, "plain")
    assert not format_ok(PLAIN, "semantic_back")


def test_readme_documents_every_reason_code():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Validation and reason codes", 1)[1].split("\n## ", 1)[0]
    for code, reason in REASONS.items():
        assert f"| `{code}` |" in section, code
        assert reason.meaning and reason.example


def test_huge_traces_are_validated_quickly():
    import time

    long_think = "The bar is taller than the line, so the value is 5. " * 3000
    long_back = "In the chart the red bar is above the blue square and equal to the side. " * 3000
    text = f"<think>{long_think}</think><back>{long_back}</back><think>{long_think}</think> \\boxed{{{'9' * 5000}}}"
    t0 = time.perf_counter()
    for variant in ("semantic_back", "solution_back", "plain"):
        validate_trace(text, variant=variant, gold=GOLD, question=Q, base_trace=long_think)
    assert time.perf_counter() - t0 < 3
