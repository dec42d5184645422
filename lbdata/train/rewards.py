"""GRPO rewards built on the validators, so the data filter and the RL signal never disagree.

Two TRL reward functions, ``f(completions, **columns) -> list[float | None]`` (TRL passes every dataset
column as a keyword argument), each a small picklable class instance rather than a closure:

- ``accuracy_reward``: 1.0 when the last ``\\boxed{}`` of the completion matches the gold answer
  (``answers_match``, with the row's ``choices``); the gold comes from the ``solution`` column, else
  ``answer``. A row without a gold answer gets ``None`` (TRL skips it).
- ``look_back_format_reward``: 1.0 only when ``format_ok`` accepts the completion under the row's
  ``variant`` (``semantic_back`` or ``solution_back``): the grammar, placement, think and anti-empty-back
  rules of ``lbdata.validate``, which for a back variant require a real ``<back>``. Empty, filler,
  copied, repetitive, number-salad, misplaced or excess backs earn 0, and so do filler thinks, in
  any language. With a ``meta`` column holding a synthetic problem's meta (a dict or its JSON), a
  back that contradicts the figure's scene facts earns 0 too. It also logs
  ``look_back/trigger_rate`` (share of completions with any ``<back>``) through TRL's ``log_metric``.

TRL logs each function's mean as ``rewards/<name>/mean``; the recipe's ``reward_weights`` (default
1.0 and 0.1, as in the paper) combine them.

``easyr1_compute_score`` is an EasyR1 reward function over the same two functions (``REWARD_TYPE =
"batch"``): point ``worker.reward.reward_function`` at this file with ``:easyr1_compute_score``.

``verl_compute_score`` is the same reward for upstream verl (``custom_reward_function.path`` = this
file, ``.name`` = ``verl_compute_score``): verl passes the ``verl`` export's ``extra_info``, whose
``variant``, ``question``, ``choices`` and ``meta`` pick the rules exactly as the TRL columns do.
EasyR1 hands a reward function only the response and the ground truth, so ``easyr1_compute_score``
cannot check a back against the figure (nor the copied-question rule, nor a per-row variant).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from lbdata.records import BACK_VARIANTS, parse_variant
from lbdata.sources.synthetic.facts import SceneFacts, scene_facts
from lbdata.validate import ValidationConfig, answers_match, format_ok, parse_trace

ACCURACY_WEIGHT = 1.0
"""Weight of the accuracy reward (the paper's reward is accuracy + 0.1 × format)."""
FORMAT_WEIGHT = 0.1
"""Weight of the Look-Back format reward."""
PAPER_FORMAT_PATTERN = r"<think>.*</think>.*<back>.*</back>.*<think>.*</think>.*\\boxed\{.*\}.*"
"""The paper-style format regex (``RegexFormatReward``): tags in order, whatever they hold."""
REWARD_TYPE = "batch"
"""Read by EasyR1: ``easyr1_compute_score`` takes and returns a list."""


def completion_text(completion: Any) -> str:
    """The text of one TRL completion: a string, or a conversational list of messages (text blocks joined)."""
    if isinstance(completion, str):
        return completion
    parts: list[str] = []
    for message in completion:
        content = message.get("content") if isinstance(message, dict) else message
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(b.get("text") or "" for b in content if isinstance(b, dict) and b.get("type") == "text")
    return "".join(parts)


def _column(values: Sequence[Any] | None, n: int) -> list[Any]:
    return list(values) if values is not None else [None] * n


class AccuracyReward:
    """1.0 when the completion's final ``\\boxed{}`` answer matches the row's gold answer, else 0.0.

    ``timeout_s`` bounds one sympy comparison (a timeout counts as no match, never a hang).
    """

    def __init__(self, timeout_s: float = 2.0) -> None:
        self.timeout_s = timeout_s
        self.__name__ = "accuracy_reward"  # the name TRL logs under

    def __call__(
        self,
        completions: Sequence[Any],
        solution: Sequence[str | None] | None = None,
        answer: Sequence[str | None] | None = None,
        choices: Sequence[Sequence[str] | None] | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        n = len(completions)
        golds = solution if solution is not None else answer
        if golds is None:
            raise ValueError("accuracy_reward needs the gold answer as a 'solution' or 'answer' dataset column")
        rewards: list[float | None] = []
        for completion, gold, options in zip(completions, golds, _column(choices, n), strict=True):
            if gold is None or not str(gold).strip():
                rewards.append(None)
                continue
            pred = parse_trace(completion_text(completion)).answer
            ok = pred is not None and answers_match(
                str(gold), pred, choices=list(options) if options else None, timeout_s=self.timeout_s
            )
            rewards.append(1.0 if ok else 0.0)
        return rewards

    def __repr__(self) -> str:
        return f"AccuracyReward(timeout_s={self.timeout_s})"


class LookBackFormatReward:
    """1.0 when the completion passes ``format_ok`` for its back variant (a real ``<back>``), else 0.0.

    The row's ``variant`` column picks the rules; rows without one use ``variant``. ``config`` holds
    the validator thresholds: pass the ones the corpus was built with.
    """

    def __init__(self, variant: str = "semantic_back", config: ValidationConfig | None = None) -> None:
        self.variant = _back_variant(variant)
        self.config = config or ValidationConfig()
        self.__name__ = "look_back_format_reward"

    def __call__(
        self,
        completions: Sequence[Any],
        variant: Sequence[str | None] | None = None,
        question: Sequence[str | None] | None = None,
        meta: Sequence[dict | str | None] | None = None,
        log_metric: Callable[[str, float], None] | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        n = len(completions)
        rewards: list[float | None] = []
        triggered = 0
        rows = zip(completions, _column(variant, n), _column(question, n), _column(meta, n), strict=True)
        for completion, row_variant, q, row_meta in rows:
            text = completion_text(completion)
            rules = _back_variant(row_variant) if row_variant else self.variant
            facts = _facts(row_meta)
            rewards.append(1.0 if format_ok(text, rules, question=q, config=self.config, facts=facts) else 0.0)
            triggered += bool(parse_trace(text).backs)
        if log_metric is not None and n:
            log_metric("look_back/trigger_rate", triggered / n)
        return rewards

    def __repr__(self) -> str:
        return f"LookBackFormatReward(variant={self.variant!r})"


def _facts(meta: dict | str | None) -> SceneFacts | None:
    """The scene facts of a row's ``meta`` column (a dict or its JSON text); None for other sources."""
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except ValueError:
            return None
    return scene_facts(meta) if isinstance(meta, dict) else None


class RegexFormatReward:
    """The paper-style format reward, for comparison only: 1.0 when the whole completion matches
    ``PAPER_FORMAT_PATTERN`` (think, back, think, boxed, in that order, anything in between), else 0.0.

    The paper's own format term was never released; this is the likeliest reading (EasyR1's math format
    regex with a ``<back>`` added). It pays for an empty or filler ``<back>`` as much as for a real one,
    which is what ``benchmarks/loop.py`` trains against ``look_back_format_reward`` to show.
    """

    def __init__(self) -> None:
        self.pattern = re.compile(PAPER_FORMAT_PATTERN, re.DOTALL)
        self.__name__ = "regex_format_reward"

    def __call__(
        self, completions: Sequence[Any], log_metric: Callable[[str, float], None] | None = None, **kwargs: Any
    ) -> list[float | None]:
        texts = [completion_text(c) for c in completions]
        if log_metric is not None and texts:
            log_metric("look_back/trigger_rate", sum(bool(parse_trace(t).backs) for t in texts) / len(texts))
        return [1.0 if self.pattern.fullmatch(t.strip()) else 0.0 for t in texts]

    def __repr__(self) -> str:
        return "RegexFormatReward()"


def _back_variant(name: str) -> str:
    variant = parse_variant(name)
    if variant not in BACK_VARIANTS:
        from lbdata.errors import UsageError

        raise UsageError(
            f"the Look-Back format reward pays for a <back>, so it needs a back variant, not {name!r}; "
            "use semantic or solution"
        )
    return variant


accuracy_reward = AccuracyReward()
"""Default accuracy reward (TRL signature)."""
look_back_format_reward = LookBackFormatReward()
"""Default Look-Back format reward (TRL signature); the row's ``variant`` column picks the rules."""


def easyr1_compute_score(
    reward_inputs: list[dict[str, Any]],
    format_weight: float = FORMAT_WEIGHT,
    variant: str = "semantic_back",
) -> list[dict[str, float]]:
    """EasyR1 batch reward: ``overall = accuracy + format_weight × format`` with the lbdata rewards.

    Each input has ``response``, ``response_length`` and ``ground_truth``; each output has ``overall``,
    ``format`` and ``accuracy``. ``variant`` picks the format rules (EasyR1 passes no per-row variant).
    """
    if not isinstance(reward_inputs, list):
        raise ValueError("easyr1_compute_score is a batch reward function; set REWARD_TYPE/reward_type to batch")
    responses = [item["response"] for item in reward_inputs]
    golds = [item["ground_truth"] for item in reward_inputs]
    accuracy = AccuracyReward()(responses, solution=golds)
    formats = LookBackFormatReward(variant)(responses)
    return [
        {
            "overall": ACCURACY_WEIGHT * (acc or 0.0) + format_weight * (fmt or 0.0),
            "format": fmt or 0.0,
            "accuracy": acc or 0.0,
        }
        for acc, fmt in zip(accuracy, formats, strict=True)
    ]


_FORMAT_REWARDS: dict[str, LookBackFormatReward] = {}


def verl_compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: str,
    extra_info: dict[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, float]:
    """verl reward for one response: ``score = accuracy + FORMAT_WEIGHT × format`` with the lbdata rewards.

    ``extra_info`` is the ``verl`` export's: its ``variant`` picks the format rules (``semantic_back``
    when absent), ``question`` feeds the copied-question check, ``choices`` let a multiple-choice
    answer be given as a letter or as the option text, ``meta`` (a synthetic problem's, as JSON) lets
    the format reward check a back against the figure. ``acc`` and ``format`` are logged by verl.
    """
    extra = extra_info or {}
    variant = _back_variant(extra.get("variant") or "semantic_back")
    if variant not in _FORMAT_REWARDS:
        _FORMAT_REWARDS[variant] = LookBackFormatReward(variant)
    acc = accuracy_reward([solution_str], solution=[ground_truth], choices=[extra.get("choices")])[0] or 0.0
    fmt = _FORMAT_REWARDS[variant]([solution_str], question=[extra.get("question")], meta=[extra.get("meta")])[0] or 0.0
    return {"score": ACCURACY_WEIGHT * acc + FORMAT_WEIGHT * fmt, "acc": acc, "format": fmt}
