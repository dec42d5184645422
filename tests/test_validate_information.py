"""Information, not length, in any language: repetition, salad and fillers; CJK word counts; Chinese traces."""

from __future__ import annotations

import pytest

from lbdata.validate import ValidationConfig, format_ok, parse_trace, validate_trace
from lbdata.validate.information import (
    content_words,
    filler_share,
    informative_words,
    repeat_share,
    word_share,
)
from lbdata.validate.placement import find_candidate, states_answer
from lbdata.validate.tags import count_words

ZH_Q = "图中A柱比B柱高多少？"
ZH_T1 = (
    "题目问A柱比B柱高多少，所以我需要分别读出两根柱子的高度。A柱的顶端看起来在30附近，B柱在20附近，"
    "下一步要用到A柱的值，所以先确认它。"
)
ZH_BACK = "回看图片，A柱的顶端正好与标有30的网格线对齐，B柱的顶端与20的网格线对齐，读数没有错。"
ZH_T2 = "因此差值是30-20=10，所以A柱比B柱高10。"
ZH_SOL_T1 = "题目问A柱比B柱高多少。A柱的高度是30，B柱的高度是20，差值为30-20=10。所以答案是10。"
ZH_SOL_BACK = "回到图中逐一核对：A柱的顶端与30的网格线对齐，B柱的顶端与20的网格线对齐，两个读数都与图一致。"
ZH_SOL_T2 = "核对结果与我的计算一致，所以答案10成立。"
ZH_FILLER_BACK = "让我再回头看一下图片，确保我的推理是正确的，一切都没有问题。"


def trace(t1: str, back: str, t2: str, answer: str = "10") -> str:
    return f"<think> {t1} </think>\n<back> {back} </back>\n<think> {t2} </think>\n\\boxed{{{answer}}}"


def words(text: str) -> list[str]:
    return parse_trace(f"<think>{text}</think>").segments[0].words


def test_cjk_characters_count_as_words_and_latin_words_are_unchanged():
    assert count_words("The bar is 12.5 cm, isn't it?") == 7
    assert count_words("回看图片") == 4
    assert count_words("A柱的顶端与30对齐") == 9  # A, 柱的顶端与 (5), 30, 对齐 (2)
    assert count_words("グラフを見る") == 6  # Japanese kana and kanji
    assert count_words("그림을 다시 보면") == 7  # Korean syllables
    assert count_words("Looking again, A柱 reaches 30") == 6


def test_good_chinese_semantic_and_solution_traces_pass():
    sem = trace(ZH_T1, ZH_BACK, ZH_T2)
    v = validate_trace(sem, variant="semantic_back", gold="10", question=ZH_Q)
    assert v.accepted, v.reasons
    assert v.scores["back_words_min"] > 30  # counted by character, not by spaces
    sol = trace(ZH_SOL_T1, ZH_SOL_BACK, ZH_SOL_T2)
    v = validate_trace(sol, variant="solution_back", gold="10", question=ZH_Q)
    assert v.accepted, v.reasons
    assert v.scores["corrected"] == 0.0
    # the same back without a question to take labels from still has its evidence (numbers, 柱 … 对齐)
    assert format_ok(sem, "semantic_back")


def test_chinese_filler_back_fails_and_so_does_a_chinese_back_without_the_image():
    v = validate_trace(trace(ZH_T1, ZH_FILLER_BACK, ZH_T2), variant="semantic_back", gold="10", question=ZH_Q)
    assert v.reasons == ["back_filler"]
    not_visual = "重新计算：30减去20等于10，10加上20等于30，所以计算没有问题。"
    v = validate_trace(trace(ZH_T1, not_visual, ZH_T2), variant="semantic_back", gold="10", question=ZH_Q)
    assert "back_not_visual" in v.reasons


def test_chinese_placement_answers_and_candidates():
    assert states_answer("……所以答案是10。") and states_answer("最终答案：10")
    assert not states_answer("答案还需要核对。")
    assert find_candidate(ZH_SOL_T1) == "10"
    assert find_candidate("A柱是30，B柱是20，因此差值是30-20=10。") == "10"
    assert find_candidate("先读出两根柱子的高度。") is None
    # a semantic back whose first think already gives the answer in Chinese
    early = trace(ZH_T1 + "所以答案是10。", ZH_BACK, ZH_T2)
    assert "answer_before_back" in validate_trace(early, variant="semantic_back", gold="10").reasons


@pytest.mark.parametrize(
    ("back", "accepted"),
    [
        # English frame, Chinese evidence: judged on its content
        ("Looking at the image again, A柱的顶端与30的网格线对齐 and B柱 stops at 20.", True),
        # Chinese frame, English evidence
        ("回看图片，the A bar ends exactly on the 30 gridline and the B bar on 20.", True),
        # filler in both languages is still filler
        (
            "Let me look back at the image again, 再看一下图，确保一切都是正确的 and everything is right.",
            False,
        ),
    ],
)
def test_mixed_language_backs_are_judged_on_their_content(back, accepted):
    v = validate_trace(trace(ZH_T1, back, ZH_T2), variant="semantic_back", gold="10", question=ZH_Q)
    assert v.accepted is accepted, v.reasons


def test_measures():
    assert repeat_share(words("I see 7 7 7 7 7 7 7 7")) == pytest.approx(4 / 7)  # 4-word phrases again
    assert repeat_share(words("ok ok ok ok ok")) == pytest.approx(0.8)
    math = "Using 2 for side BC, AC = \\sqrt{2^2 + 2^2} = \\sqrt{8} = 2\\sqrt{2}. Hence the answer is 2\\sqrt{2}."
    assert repeat_share(words(math)) < 0.3  # numbers repeat in arithmetic
    assert repeat_share(words("the bar is taller the bar is taller the bar is taller")) > 0.5
    assert repeat_share(words("柱子很高柱子很高柱子很高柱子很高")) > 0.5
    prose = "Looking at the chart again, the Tuesday bar ends exactly at the 19 gridline and the Monday bar at 12."
    assert repeat_share(words(prose)) < 0.15
    assert word_share(words("image 1 2 3 4 5 6 7 8")) == pytest.approx(1 / 9)
    assert word_share(words(prose)) > 0.8
    assert content_words(words("the the the of of a 7")) == 0
    assert filler_share(words("hmm okay let me think um")) == 1.0
    assert filler_share(words("嗯嗯，让我想想")) == 1.0
    assert filler_share(words(prose)) == 0.0
    assert (
        informative_words(words("Let me look back at the image once more to make sure everything is right"))
        == 0
    )
    assert informative_words(words("再看一下图，A柱是30")) == 4  # A, 柱, 是, 30


def test_thresholds_come_from_the_config():
    salad = trace(ZH_T1, "image 1 2 3 4 5 6 7 8 9", ZH_T2)
    assert "back_low_information" in validate_trace(salad, variant="semantic_back", gold="10").reasons
    lenient = ValidationConfig(min_word_share=0.0, min_content_words=0)
    assert (
        "back_low_information"
        not in validate_trace(salad, variant="semantic_back", gold="10", config=lenient).reasons
    )
    hmm = trace("hmm " * 12, ZH_BACK, ZH_T2)
    assert "think_filler" in validate_trace(hmm, variant="semantic_back", gold="10").reasons
    loose = ValidationConfig(max_filler_share=1.0, max_repeat_share=1.0)
    assert "think_filler" not in validate_trace(hmm, variant="semantic_back", gold="10", config=loose).reasons
    assert ValidationConfig().config_hash != loose.config_hash


def test_plain_trace_of_fillers_is_think_filler():
    v = validate_trace(
        "<think> 嗯嗯嗯，好吧，让我想想，嗯。 </think> \\boxed{10}", variant="plain", gold="10"
    )
    assert v.reasons == ["think_filler"]
    good = "<think> A柱是30，B柱是20，差值为30-20=10。 </think> \\boxed{10}"
    assert validate_trace(good, variant="plain", gold="10").accepted


def test_a_chinese_text_answer_is_a_candidate():
    assert find_candidate("图中最大的形状是三角形，它有一个直角。所以答案是直角三角形。") == "直角三角形"
