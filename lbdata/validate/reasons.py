"""The stable reason codes a Verdict can carry, with their meaning and an example.

The README section "Validation and reason codes" lists the same codes; a test keeps the two in sync.
Codes are never renamed: corpora manifests, ``lbdata show --reason`` and rewards refer to them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reason:
    code: str
    group: str  # grammar | answer | placement | back | think | insert
    meaning: str
    example: str


REASONS: dict[str, Reason] = {
    r.code: r
    for r in [
        Reason(
            "malformed_tags",
            "grammar",
            "tags other than <think>, </think>, <back>, </back>; unbalanced or nested tags; text before the "
            "first <think> or between segments; a <back> without a <think> before and after it; two segments "
            "of the same kind in a row; more than a few words after the last segment",
            "<think>a</think> so <back>b</back><think>c</think> \\boxed{5}",
        ),
        Reason(
            "no_final_answer",
            "grammar",
            "no \\boxed{…} with balanced braces and non-empty content",
            "<think>… the answer is 5</think>",
        ),
        Reason(
            "multiple_final_answers",
            "grammar",
            "more than one \\boxed (one inside a segment counts too)",
            "<think>… \\boxed{4}</think> … \\boxed{5}",
        ),
        Reason(
            "boxed_misplaced",
            "grammar",
            "a \\boxed sits inside or between segments instead of after the last one",
            "<think>a</think><back>b</back><think>c \\boxed{5}</think>",
        ),
        Reason("think_empty", "grammar", "a <think> segment holds no words", "<think> </think> \\boxed{5}"),
        Reason(
            "answer_wrong",
            "answer",
            "the boxed answer does not match the gold (answers_match)",
            "gold 13, \\boxed{12}",
        ),
        Reason(
            "answer_hedged",
            "answer",
            "the boxed answer hedges between answers where the gold names one (is_hedged): two options, "
            '"or" between values, words of doubt; given instead of answer_wrong',
            "gold B, \\boxed{(B) or (C)}",
        ),
        Reason(
            "back_missing",
            "placement",
            "a back variant (semantic_back, solution_back) has no <back>",
            "<think>…</think> \\boxed{5}",
        ),
        Reason(
            "back_unexpected",
            "placement",
            "the plain variant contains a <back>",
            "plain: <think>…</think><back>…</back><think>…</think> \\boxed{5}",
        ),
        Reason(
            "back_too_many",
            "placement",
            "more <back> segments than max_backs (default 3)",
            "four think/back rounds",
        ),
        Reason(
            "back_before_reasoning",
            "placement",
            "semantic_back: the think before the first back has fewer than min_words_before_back (12) words",
            "<think>Let me look.</think><back>…</back>…",
        ),
        Reason(
            "answer_before_back",
            "placement",
            "semantic_back: the think before the first back already states the final answer "
            '("the answer is", "final answer", a \\boxed)',
            "<think>… so the answer is 13.</think><back>…</back>…",
        ),
        Reason(
            "no_candidate_before_back",
            "placement",
            "solution_back: the think before the first back reaches no candidate answer that answers_match can "
            'compare ("so the answer is X", "therefore … is X", "… = X." at its end)',
            "<think>I will first read the bars.</think><back>…</back>…",
        ),
        Reason(
            "no_rethink",
            "placement",
            "the think after the last back has fewer than min_rethink_words (5) words",
            "…</back><think>OK.</think> \\boxed{5}",
        ),
        Reason(
            "back_empty", "back", "a back has fewer than min_back_words (8) words", "<back>Checked.</back>"
        ),
        Reason(
            "back_filler",
            "back",
            "a back has no concrete visual evidence: no number, no label or name from the question, no visual "
            "noun (bar, axis, side, angle, colour, shape, …) tied to a value or relation",
            "<back>Let me look back at the image again to make sure everything is right.</back>",
        ),
        Reason(
            "back_copy",
            "back",
            "a back mostly repeats text before it (more than max_copy_share of its 5-grams already appear in "
            "the question or earlier segments) or is identical to another back",
            "<back> + the previous think pasted verbatim",
        ),
        Reason(
            "back_not_visual",
            "back",
            "a back never refers to the image: no image word (figure, chart, see, shown, …) and no visual noun",
            "<back>Recomputing: 12 + 5 = 17 and 17 - 3 = 14, so the sum holds.</back>",
        ),
        Reason(
            "insert_changed_reasoning",
            "insert",
            "insert mode: the text outside <back> differs from the base trace (token overlap below "
            "min_insert_overlap, default 0.9)",
            "the teacher rewrote the base reasoning while inserting backs",
        ),
        Reason(
            "back_repetitive",
            "back",
            "a back says one word or phrase again and again: the repeats of its most repeated content word, or its "
            "repeated 4-word phrases, take more than max_repeat_share (0.3) of it, whatever its length or language",
            "<back>I see 7 7 7 7 7 7 7 7</back>; <back>the bar is taller the bar is taller the bar is taller</back>",
        ),
        Reason(
            "back_low_information",
            "back",
            "number or letter salad: fewer than min_word_share (0.3) of a back's words are real words (not bare "
            "numbers or single letters), or it has fewer than min_content_words (3) distinct content words",
            "<back>image 1 2 3 4 5 6 7 8</back>",
        ),
        Reason(
            "think_filler",
            "think",
            "a think before (or without) a back is filler: more than max_filler_share (0.5) of its words are "
            "fillers (hmm, okay, let me think, 嗯, 让我想想) or one word or phrase is repeated past max_repeat_share",
            "<think>hmm hmm hmm hmm hmm hmm hmm hmm hmm hmm hmm hmm</think><back>…",
        ),
        Reason(
            "rethink_filler",
            "think",
            "the think after the last back is filler (as think_filler) or has fewer than min_rethink_words (5) "
            "words besides fillers",
            "…</back><think>ok ok ok ok ok</think> \\boxed{5}",
        ),
        Reason(
            "back_contradicts_figure",
            "back",
            "synthetic source: a back states a value, label, count or colour of the figure that the scene facts "
            "contradict (a bar's value, a side's length, an angle, a point, a table cell, a count, a bar's colour)",
            "the Mon bar is 40 in the figure; <back>Looking again, the Mon bar ends on the 90 gridline.</back>",
        ),
    ]
}

FORMAT_GROUPS = ("grammar", "placement", "back", "think")
"""Groups whose reasons make a trace ill-formatted (what ``format_ok`` and the format reward check)."""
