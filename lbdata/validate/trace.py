"""``validate_trace`` (one trace → Verdict) and ``format_ok`` (the format half, for rewards).

A trace is accepted when no reason applies. Every reason that applies is reported, in the order of
``REASONS``; the rules live in ``tags`` (grammar), ``placement`` (where backs sit), ``backs``
(anti-empty-back) and ``answers`` (answer checking).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

from lbdata.hashing import sha256_text
from lbdata.records import Verdict, parse_variant
from lbdata.sources.synthetic.facts import SceneFacts
from lbdata.validate.answers import answers_match, is_hedged
from lbdata.validate.backs import back_reasons
from lbdata.validate.config import ValidationConfig
from lbdata.validate.grounding import figure_contradictions
from lbdata.validate.information import think_reasons
from lbdata.validate.placement import placement_reasons
from lbdata.validate.reasons import REASONS
from lbdata.validate.tags import ParsedTrace, find_words, parse_trace

_DEFAULT_CONFIG = ValidationConfig()
_CANONICAL_VARIANTS = frozenset({"plain", "semantic_back", "solution_back"})  # parse_variant gives them back
_ORDER = {code: i for i, code in enumerate(REASONS)}


@lru_cache(maxsize=32)
def _config_hash(config: ValidationConfig) -> str:
    return config.config_hash


def grammar_reasons(parsed: ParsedTrace) -> list[str]:
    """Grammar and final-answer-position reasons (every variant)."""
    reasons = []
    if parsed.errors:
        reasons.append("malformed_tags")
    if parsed.answer is None:
        reasons.append("no_final_answer")
    if len(parsed.boxed) > 1:
        reasons.append("multiple_final_answers")
    if any(not b.in_tail for b in parsed.boxed):
        reasons.append("boxed_misplaced")
    if any(s.kind == "think" and not s.words for s in parsed.segments):
        reasons.append("think_empty")
    return reasons


def _format_reasons(
    parsed: ParsedTrace,
    variant: str,
    config: ValidationConfig,
    *,
    question: str | None,
    choices: Sequence[str] | None,
    with_scores: bool,
    facts: SceneFacts | None = None,
) -> tuple[list[str], dict[str, float]]:
    reasons = grammar_reasons(parsed)
    reasons += think_reasons(parsed, config)
    placed, scores = placement_reasons(parsed, variant, config, choices=choices, with_scores=with_scores)
    reasons += placed
    if variant != "plain":
        backed, back_scores = back_reasons(parsed, config, question=question, choices=choices)
        reasons += backed
        scores.update(back_scores)
        if facts is not None:
            refuted = sum(len(figure_contradictions(b.text, facts)) for b in parsed.backs)
            scores["figure_contradictions"] = float(refuted)
            if refuted:
                reasons.append("back_contradicts_figure")
    return reasons, scores


def format_ok(
    text: str,
    variant: str,
    *,
    question: str | None = None,
    config: ValidationConfig | None = None,
    facts: SceneFacts | None = None,
) -> bool:
    """True when ``text`` passes the grammar, placement, think and anti-empty-back rules of ``variant``.

    For ``semantic_back`` and ``solution_back`` this requires a real ``<back>``; with the ``facts`` of a
    synthetic problem, also one that does not contradict the figure. Answer correctness is not part of
    it (use ``answers_match``). The same rules as ``validate_trace``, so a format reward built on this
    never disagrees with the data filter.
    """
    parsed = parse_trace(text)
    reasons, _ = _format_reasons(
        parsed,
        parse_variant(variant),
        config or _DEFAULT_CONFIG,
        question=question,
        choices=None,
        with_scores=False,
        facts=facts,
    )
    return not reasons


def _reasoning_tokens(text: str) -> list[str]:
    """Lower-cased words of a trace outside its ``<back>`` segments (the whole text if it has no tags)."""
    parsed = parse_trace(text)
    if parsed.segments:
        parts = [s.text for s in parsed.segments if s.kind == "think"] + [parsed.tail]
    else:
        parts = [text]
    return [w.lower() for w in find_words(" ".join(parts))]


def insert_overlap(text: str, base_trace: str) -> float:
    """Token overlap between the non-back text of ``text`` and ``base_trace``, in [0, 1].

    The Dice coefficient of their word-bigram multisets (``2·|A∩B| / (|A|+|B|)``): 1.0 when the
    reasoning is kept word for word, lower as words are changed, dropped, added or moved. Linear in
    the length of the texts.
    """
    a, b = _reasoning_tokens(text), _reasoning_tokens(base_trace)
    if not a and not b:
        return 1.0
    n = 2 if min(len(a), len(b)) >= 2 else 1
    ga = Counter(zip(*(a[i:] for i in range(n)), strict=False))
    gb = Counter(zip(*(b[i:] for i in range(n)), strict=False))
    total = sum(ga.values()) + sum(gb.values())
    return 2 * sum((ga & gb).values()) / total if total else 0.0


def validate_trace(
    text: str,
    *,
    variant: str,
    gold: str,
    question: str | None = None,
    choices: Sequence[str] | None = None,
    config: ValidationConfig | None = None,
    trace_id: str = "",
    base_trace: str | None = None,
    facts: SceneFacts | None = None,
) -> Verdict:
    """Validate one trace against the rules of ``variant`` and the gold answer.

    ``question`` lets the back rules recognise labels and names from it as evidence. ``base_trace``
    (insert mode) adds ``insert_changed_reasoning`` when the text outside the backs drifts from it.
    ``facts`` (``scene_facts(problem.meta)`` for a synthetic problem) adds ``back_contradicts_figure``
    when a back states a value, label, count or colour the figure does not have.
    Scores: ``answer_match``, ``backs``, ``words_before_back``, ``rethink_words``, ``back_words_min``,
    ``back_copy_max``, ``corrected`` (solution_back), ``insert_overlap`` (insert
    mode) and ``figure_contradictions`` (with facts).
    """
    config = config or _DEFAULT_CONFIG
    if variant not in _CANONICAL_VARIANTS:
        variant = parse_variant(variant)
    parsed = parse_trace(text)
    reasons, scores = _format_reasons(
        parsed, variant, config, question=question, choices=choices, with_scores=True, facts=facts
    )
    answer = parsed.answer
    matched = answer is not None and answers_match(
        gold, answer, choices=choices, timeout_s=config.answer_timeout_s
    )
    scores["answer_match"] = 1.0 if matched else 0.0
    if answer is not None and not matched:
        reasons.append("answer_hedged" if is_hedged(answer, gold) else "answer_wrong")
    if base_trace is not None:
        overlap = insert_overlap(text, base_trace)
        scores["insert_overlap"] = round(overlap, 4)
        if overlap < config.min_insert_overlap:
            reasons.append("insert_changed_reasoning")
    reasons = sorted(set(reasons), key=_ORDER.__getitem__)
    return Verdict(
        trace_id=trace_id,
        accepted=not reasons,
        reasons=reasons,
        answer=answer,
        scores=scores,
        config_hash=_config_hash(config),
        text_sha256=sha256_text(text),
    )
