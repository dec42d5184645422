"""GRPO rewards: the format reward is the validators' rules, hacks earn nothing, rewards pickle."""

from __future__ import annotations

import importlib.util
import pickle

import pytest

from lbdata.errors import UsageError
from lbdata.train.rewards import (
    REWARD_TYPE,
    AccuracyReward,
    LookBackFormatReward,
    accuracy_reward,
    easyr1_compute_score,
    look_back_format_reward,
)
from lbdata.validate import validate_trace

QUESTION = "Find the length of side AB of the right triangle. Round to the nearest tenth."
THINK_1 = (
    "<think> The triangle has a right angle at C, and the two legs are marked in the figure. "
    "I use the Pythagorean theorem on the legs to get the hypotenuse AB. </think>"
)
BACK = (
    "<back> Looking at the figure again, side AC is labeled 6 and side BC is labeled 8, "
    "and the right angle mark sits at C. </back>"
)
THINK_2 = "<think> With legs 6 and 8, AB = sqrt(36 + 64) = 10, so AB is 10. </think>"
GOOD = f"{THINK_1} {BACK} {THINK_2} \\boxed{{10}}"


def _backs(n: int) -> str:
    rounds = [
        f"<back> In the figure, the leg marked {6 + i} sits next to the angle of {30 + 10 * i} degrees. </back> "
        f"<think> Step {i}: this gives another check on the legs, and the value stays the same. </think>"
        for i in range(n)
    ]
    return f"{THINK_1} " + " ".join(rounds) + " \\boxed{10}"


def _with_back(back: str) -> str:
    return f"{THINK_1} <back> {back} </back> {THINK_2} \\boxed{{10}}"


# A hack, the validator reason that must catch it, and the trace. None of them may earn the format reward.
HACKS = [
    ("empty back", "back_empty", f"{THINK_1} <back> </back> {THINK_2} \\boxed{{10}}"),
    (
        "filler back",
        "back_filler",
        f"{THINK_1} <back> Let me look back at the image to double-check everything carefully once more now. "
        f"</back> {THINK_2} \\boxed{{10}}",
    ),
    (
        "back copied from the think",
        "back_copy",
        f"{THINK_1} <back> I use the Pythagorean theorem on the legs to get the hypotenuse AB. </back> "
        f"{THINK_2} \\boxed{{10}}",
    ),
    ("back outside the think/back alternation", "malformed_tags", f"{BACK} {THINK_1} {THINK_2} \\boxed{{10}}"),
    ("back after the boxed answer", "boxed_misplaced", f"{THINK_1} {THINK_2} \\boxed{{10}} {BACK}"),
    (
        "boxed answer inside a back",
        "multiple_final_answers",
        f"{THINK_1} <back> Looking at the figure again, side AC is labeled 6 and side BC is labeled 8, "
        f"so \\boxed{{10}}. </back> {THINK_2} \\boxed{{10}}",
    ),
    ("five backs", "back_too_many", _backs(5)),
    (
        "correct answer with no back",
        "back_missing",
        "<think> The legs in the figure are 6 and 8, so AB = sqrt(36 + 64) = 10. </think> \\boxed{10}",
    ),
    # information, not length
    ("one number said again", "back_repetitive", _with_back("I see 7 7 7 7 7 7 7 7")),
    ("number salad", "back_low_information", _with_back("image 1 2 3 4 5 6 7 8")),
    ("one phrase said three times", "back_repetitive",
     _with_back("the bar is taller the bar is taller the bar is taller")),
    ("letter salad", "back_low_information", _with_back("Looking at A B C D E F G H I J")),
    ("stop-word salad", "back_low_information",
     _with_back("the of and to in is it the of and to in is it a figure")),
    ("look-again phrases only", "back_filler",
     _with_back("Let me look back at the image once more to make sure everything is correct and consistent.")),
    ("look-again phrases and a stray number", "back_filler",
     _with_back("Looking at the image again, once more, to double-check, everything is right: 6.")),
    ("a real back padded with one sentence repeated", "back_repetitive",
     _with_back("Looking at the figure again, side AC is labeled 6 and side BC is labeled 8. "
                "AC is 6. AC is 6. AC is 6. AC is 6. AC is 6.")),
    ("a back of hmm", "back_repetitive", _with_back("hmm hmm hmm hmm hmm hmm hmm hmm hmm")),
    ("a repeated list of values", "back_repetitive", _with_back("In the figure: 6 8 10 6 8 10 6 8 10 6 8 10")),
    ("a first think of twelve hmm", "think_filler",
     f"<think> {'hmm ' * 12}</think> {BACK} {THINK_2} \\boxed{{10}}"),
    ("a first think of fillers", "think_filler",
     f"<think> Okay, well, um, let me think, hmm, so, yeah, alright, let me see, I think, okay. </think> {BACK} "
     f"{THINK_2} \\boxed{{10}}"),
    ("a first think of one sentence repeated", "think_filler",
     f"<think> I use the legs. I use the legs. I use the legs. I use the legs. </think> {BACK} {THINK_2} "
     f"\\boxed{{10}}"),
    ("a rethink of ok", "rethink_filler", f"{THINK_1} {BACK} <think> ok ok ok ok ok </think> \\boxed{{10}}"),
    ("a rethink of fillers", "rethink_filler",
     f"{THINK_1} {BACK} <think> Okay, well, hmm, so yeah, alright, I think so. </think> \\boxed{{10}}"),
    ("a rethink of one sentence repeated", "rethink_filler",
     f"{THINK_1} {BACK} <think> AB is 10. AB is 10. AB is 10. AB is 10. </think> \\boxed{{10}}"),
    ("a second back of salad", "back_low_information",
     f"{THINK_1} {BACK} <think> The legs check out, so I look at the figure once more for the angle. </think> "
     f"<back> 1 2 3 4 5 6 7 8 9 </back> {THINK_2} \\boxed{{10}}"),
    ("a long back of look-again phrases", "back_filler",
     _with_back("Let me look back at the image. Looking at the figure again. Let me double-check. Once more, to "
                "make sure, carefully: everything is correct, everything looks right, it is consistent.")),
]

ZH_QUESTION = "图中直角三角形的斜边AB是多少？"
ZH_THINK_1 = "<think> 三角形在C处有直角，两条直角边在图中标出，我用勾股定理求斜边AB的长度。 </think>"
ZH_BACK = "<back> 回看图片，边AC标为6，边BC标为8，直角记号在C处。 </back>"
ZH_THINK_2 = "<think> 两条直角边是6和8，所以AB = √(36+64) = 10。 </think>"
ZH_GOOD = f"{ZH_THINK_1} {ZH_BACK} {ZH_THINK_2} \\boxed{{10}}"


def _zh(back: str) -> str:
    return f"{ZH_THINK_1} <back> {back} </back> {ZH_THINK_2} \\boxed{{10}}"


# The same in Chinese (and mixed): none of them may earn the format reward either.
ZH_HACKS = [
    ("空的回看", "back_empty", _zh(" ")),
    ("太短的回看", "back_empty", _zh("看过了。")),
    ("套话回看", "back_filler", _zh("让我再回头看一下图片，确保我的推理是正确的，一切都没有问题。")),
    ("只有再看一下", "back_filler", _zh("再看一下图，再看一遍，仔细检查，确认一下，一切正确。")),
    ("重复一句话", "back_repetitive", _zh("柱子很高柱子很高柱子很高柱子很高")),
    ("数字堆砌", "back_low_information", _zh("图中 1 2 3 4 5 6 7 8 9")),
    ("中文数字堆砌", "back_low_information", _zh("一二三四五六七八九十")),
    ("照抄思考", "back_copy", _zh("三角形在C处有直角，两条直角边在图中标出，我用勾股定理求斜边AB的长度。")),
    ("不看图的回看", "back_not_visual", _zh("重新计算：36加64等于100，100开方等于10，所以计算没有问题。")),
    ("嗯嗯嗯的思考", "think_filler", f"<think> {'嗯' * 15} </think> {ZH_BACK} {ZH_THINK_2} \\boxed{{10}}"),
    ("语气词的思考", "think_filler",
     f"<think> 嗯，那么，让我想想，然后，就是，这个，那个，嗯。 </think> {ZH_BACK} {ZH_THINK_2} \\boxed{{10}}"),
    ("好的好的的再思考", "rethink_filler", f"{ZH_THINK_1} {ZH_BACK} <think> 好的好的好的好的好的 </think> \\boxed{{10}}"),
    ("嗯嗯的再思考", "rethink_filler", f"{ZH_THINK_1} {ZH_BACK} <think> 嗯嗯嗯嗯嗯嗯 </think> \\boxed{{10}}"),
    ("没有回看", "back_missing", "<think> 两条直角边是6和8，所以AB = √(36+64) = 10。 </think> \\boxed{10}"),
    ("回看里给答案", "multiple_final_answers", _zh("回看图片，边AC标为6，边BC标为8，所以 \\boxed{10}。")),
    ("中英混合的套话", "back_filler", _zh("Let me look back at the image, 再看一下图，确保一切正确。")),
    ("中英混合的数字堆砌", "back_low_information", _zh("figure 图 1 2 3 4 5 6 7 8 9 10")),
]


def test_a_real_back_earns_the_format_reward():
    assert validate_trace(GOOD, variant="semantic_back", gold="10", question=QUESTION).accepted
    assert look_back_format_reward([GOOD], variant=["semantic_back"], question=[QUESTION]) == [1.0]
    assert accuracy_reward([GOOD], solution=["10"]) == [1.0]
    # two real backs (within max_backs) are fine too
    assert look_back_format_reward([_backs(2)], variant=["semantic_back"], question=[QUESTION]) == [1.0]


@pytest.mark.parametrize(("name", "reason", "text"), HACKS, ids=[h[0] for h in HACKS])
def test_hacks_never_earn_the_format_reward(name, reason, text):
    verdict = validate_trace(text, variant="semantic_back", gold="10", question=QUESTION)
    assert reason in verdict.reasons, (name, verdict.reasons)
    for variant in ("semantic_back", "solution_back"):
        assert look_back_format_reward([text], variant=[variant], question=[QUESTION]) == [0.0], (name, variant)
    assert easyr1_compute_score([{"response": text, "response_length": 50, "ground_truth": "10"}])[0]["format"] == 0.0


def test_a_real_chinese_back_earns_the_format_reward():
    assert validate_trace(ZH_GOOD, variant="semantic_back", gold="10", question=ZH_QUESTION).accepted
    assert look_back_format_reward([ZH_GOOD], variant=["semantic_back"], question=[ZH_QUESTION]) == [1.0]
    assert look_back_format_reward([ZH_GOOD], variant=["semantic_back"]) == [1.0]  # no question column


@pytest.mark.parametrize(("name", "reason", "text"), ZH_HACKS, ids=[h[0] for h in ZH_HACKS])
def test_chinese_and_mixed_hacks_never_earn_the_format_reward(name, reason, text):
    verdict = validate_trace(text, variant="semantic_back", gold="10", question=ZH_QUESTION)
    assert reason in verdict.reasons, (name, verdict.reasons)
    for variant in ("semantic_back", "solution_back"):
        assert look_back_format_reward([text], variant=[variant], question=[ZH_QUESTION]) == [0.0], (name, variant)
    assert easyr1_compute_score([{"response": text, "response_length": 50, "ground_truth": "10"}])[0]["format"] == 0.0


def test_the_hack_table_is_large_and_bilingual():
    assert len(HACKS) + len(ZH_HACKS) >= 40
    assert len(ZH_HACKS) >= 15


def figure_traces(problem, seed: int = 0) -> tuple[str, str]:
    """A clean semantic-back trace of a synthetic bar chart, and the same trace whose back misreads one bar
    by a gridline step (the figure contradicts it)."""
    from lbdata.teachers.scene import write_trace

    good = write_trace(problem, "semantic_back", seed=seed, misread_rate=0.0).text
    back = good.split("<back>")[1].split("</back>")[0]
    bar = next(b for b in problem.meta["scene"]["bars"] if b["label"] in back)
    wrong = bar["value"] + problem.meta["scene"]["step"]
    bad = good.replace(back, back.replace(f" {bar['value']} ", f" {wrong} ").replace(
        f" {bar['value']},", f" {wrong},"))
    assert bad != good
    return good, bad


def test_with_scene_facts_a_back_that_contradicts_the_figure_earns_nothing():
    import json
    from itertools import islice

    from lbdata.sources.synthetic import SyntheticSource

    rows = [r.problem for r in islice(SyntheticSource(seed=5, families=["bar_chart"]), 6)]
    for i, p in enumerate(rows):
        good, bad = figure_traces(p, i)
        meta = [p.meta, json.dumps(p.meta)]
        for m in meta:
            assert look_back_format_reward([good], variant=["semantic_back"], meta=[m]) == [1.0]
            assert look_back_format_reward([bad], variant=["semantic_back"], meta=[m]) == [0.0]
        # without the scene facts the reward cannot tell: the limit documented for EasyR1
        assert look_back_format_reward([bad], variant=["semantic_back"]) == [1.0]


def test_the_format_reward_agrees_with_the_validator_on_every_case():
    texts = [GOOD, _backs(2), ZH_GOOD, *(h[2] for h in HACKS), *(h[2] for h in ZH_HACKS)]
    for text in texts:
        for variant in ("semantic_back", "solution_back"):
            verdict = validate_trace(text, variant=variant, gold="10", question=QUESTION)
            format_reasons = [r for r in verdict.reasons if r != "answer_wrong"]
            reward = look_back_format_reward([text], variant=[variant], question=[QUESTION])[0]
            assert reward == (0.0 if format_reasons else 1.0), (text, variant, verdict.reasons)


def test_accuracy_reward_reads_solution_or_answer_and_choices():
    wrong = GOOD.replace("\\boxed{10}", "\\boxed{12}")
    assert accuracy_reward([GOOD, wrong], solution=["10", "10"]) == [1.0, 0.0]
    assert accuracy_reward([GOOD, wrong], answer=["10", "10"]) == [1.0, 0.0]
    # a gold letter matches its option text
    mc = "<think> The legs are 6 and 8, so the hypotenuse is 10. </think> \\boxed{10}"
    assert accuracy_reward([mc], solution=["B"], choices=[["8", "10", "12"]]) == [1.0]
    assert accuracy_reward([mc], solution=["C"], choices=[["8", "10", "12"]]) == [0.0]
    # no gold: not applicable (TRL ignores None)
    assert accuracy_reward([GOOD], solution=[None]) == [None]
    with pytest.raises(ValueError, match="solution"):
        accuracy_reward([GOOD])


def test_conversational_completions_and_trigger_rate_metric():
    logged: dict[str, float] = {}
    completions = [[{"role": "assistant", "content": GOOD}], [{"role": "assistant", "content": [
        {"type": "text", "text": "<think> The legs are 6 and 8, so AB is 10. </think> \\boxed{10}"}]}]]
    rewards = look_back_format_reward(
        completions, variant=["semantic_back"] * 2, question=[QUESTION] * 2, log_metric=logged.__setitem__
    )
    assert rewards == [1.0, 0.0]
    assert logged == {"look_back/trigger_rate": 0.5}
    assert accuracy_reward(completions, solution=["10", "10"]) == [1.0, 1.0]


def test_rewards_pickle_and_keep_their_names():
    for reward in (accuracy_reward, look_back_format_reward, AccuracyReward(timeout_s=1.0),
                   LookBackFormatReward("solution")):
        clone = pickle.loads(pickle.dumps(reward))
        assert clone.__name__ == reward.__name__
        assert clone([GOOD], solution=["10"], variant=["semantic_back"], question=[QUESTION]) == [1.0]
    assert accuracy_reward.__name__ == "accuracy_reward"
    assert look_back_format_reward.__name__ == "look_back_format_reward"


def test_format_reward_refuses_the_plain_variant():
    with pytest.raises(UsageError, match="back variant"):
        LookBackFormatReward("plain")
    with pytest.raises(UsageError, match="back variant"):
        look_back_format_reward([GOOD], variant=["plain"])


def test_easyr1_adapter_loads_like_easyr1_and_scores_a_batch():
    import lbdata.train.rewards as rewards_module

    spec = importlib.util.spec_from_file_location("custom_reward_fn", rewards_module.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.REWARD_TYPE == REWARD_TYPE == "batch"
    inputs = [
        {"response": GOOD, "response_length": 80, "ground_truth": "10"},
        {"response": GOOD.replace("\\boxed{10}", "\\boxed{12}"), "response_length": 80, "ground_truth": "10"},
        {"response": HACKS[0][2], "response_length": 60, "ground_truth": "10"},
    ]
    scores = module.easyr1_compute_score(inputs)
    assert scores == [
        {"overall": pytest.approx(1.1), "format": 1.0, "accuracy": 1.0},
        {"overall": pytest.approx(0.1), "format": 1.0, "accuracy": 0.0},
        {"overall": pytest.approx(1.0), "format": 0.0, "accuracy": 1.0},
    ]
    assert easyr1_compute_score(inputs[:1], format_weight=0.5)[0]["overall"] == pytest.approx(1.5)
    with pytest.raises(ValueError, match="batch"):
        easyr1_compute_score(inputs[0])  # type: ignore[arg-type]
