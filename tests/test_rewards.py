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


def test_the_format_reward_agrees_with_the_validator_on_every_case():
    texts = [GOOD, _backs(2), *(h[2] for h in HACKS)]
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
