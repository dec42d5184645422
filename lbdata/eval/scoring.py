"""Scoring: one response becomes one ``EvalRow`` through the validators' public API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from lbdata.eval.data import EvalItem
from lbdata.eval.generators import Generation


class EvalRow(BaseModel):
    """One response and its score: a line of ``results.jsonl``."""

    model_config = ConfigDict(extra="forbid")

    problem_id: str = Field(description="the problem's id; insert mode matches base traces on it")
    dataset: str = Field(description="dataset (preset or source) name the row is counted under")
    question: str = Field(description="the question, without the format instruction")
    prompt: str = Field(description="the user-turn text the model saw: question and format instruction")
    gold: str = Field(description="the gold answer")
    choices: list[str] | None = Field(default=None, description="multiple-choice option texts, A first")
    response: str = Field(description="the model's full response (the base trace for insert mode)")
    pred: str | None = Field(default=None, description="content of the last \\boxed{} of the response")
    correct: bool = Field(description="answers_match(gold, pred, choices)")
    has_back: bool = Field(description="the response has at least one <back> segment")
    back_count: int = Field(ge=0, description="number of <back> segments")
    back_positions: list[float] = Field(
        default_factory=list, description="where each <back> starts, as a fraction of the response length"
    )
    well_formed: bool = Field(description="format_ok(response, variant): the variant's format, tags and box")
    finish_reason: str | None = Field(
        default=None, description="stop | length | error (the request failed: no response) | None when unknown"
    )
    error: str | None = Field(
        default=None, description="why the request failed; such a row counts as failed, not as a wrong answer"
    )
    response_tokens: int | None = Field(default=None, description="response length in tokens, when known")
    response_chars: int = Field(ge=0, description="response length in characters")
    variant: str = Field(description="semantic_back | solution_back | plain")
    model: str = Field(description="model path or served model name")


def score_response(item: EvalItem, prompt: str, generation: Generation, *, variant: str, model: str) -> EvalRow:
    """Score one response with the validators' public API (no second parser, no second matcher)."""
    from lbdata.validate import answers_match, format_ok, parse_trace

    text = generation.text
    parsed = parse_trace(text)
    problem = item.problem
    pred = parsed.answer
    backs = parsed.backs
    return EvalRow(
        problem_id=problem.id,
        dataset=item.dataset,
        question=problem.question,
        prompt=prompt,
        gold=problem.answer,
        choices=problem.choices,
        response=text,
        pred=pred,
        correct=bool(pred) and answers_match(problem.answer, pred, choices=problem.choices),
        has_back=bool(backs),
        back_count=len(backs),
        back_positions=[round(b.span[0] / len(text), 4) for b in backs] if text else [],
        well_formed=format_ok(text, variant, question=problem.question),
        finish_reason=generation.finish_reason,
        error=generation.error,
        response_tokens=generation.tokens,
        response_chars=len(text),
        variant=variant,
        model=model,
    )
