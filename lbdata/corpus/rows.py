"""One corpus row: the trace text (plain forms derived from back traces), the TRL messages, the features."""

from __future__ import annotations

import re
from typing import Any

from lbdata.corpus.book import PlannedRow, sha_of
from lbdata.corpus.inputs import Inputs
from lbdata.hashing import content_hash
from lbdata.prompts import user_prompt
from lbdata.records import Trace

_BACK_RE = re.compile(r"\s*<back>.*?</back>\s*", re.S)
_THINK_JOIN_RE = re.compile(r"\s*</think>\s*<think>\s*")


def derive_plain_text(text: str) -> str:
    """A back trace without its ``<back>`` segments, the thinks around them joined into one."""
    return _THINK_JOIN_RE.sub(" ", _BACK_RE.sub(" ", text)).strip()


def back_count(text: str) -> int:
    return text.count("<back>")


def derived_trace_id(base: Trace) -> str:
    return Trace.make_id(
        problem_id=base.problem_id, variant="plain", mode="derived", teacher=base.teacher,
        prompt_hash=base.prompt_hash, sample=base.sample, attempt=base.attempt, base_trace_id=base.id,
    )


def build_messages(question: str, variant: str, n_images: int, trace: str) -> list[dict[str, Any]]:
    """TRL conversational form: user = one image block per image + question and instruction; assistant = trace."""
    user = [{"type": "image", "text": None} for _ in range(n_images)]
    user.append({"type": "text", "text": user_prompt(question, variant)})
    return [
        {"role": "user", "content": user},
        {"role": "assistant", "content": [{"type": "text", "text": trace}]},
    ]


def row_dict(inputs: Inputs, row: PlannedRow, *, with_images: bool) -> dict[str, Any]:
    trace = inputs.trace(row.run, row.trace_id)
    g = row.group
    if row.kind == "derived":
        text, trace_id, mode, base_id, variant = (
            derive_plain_text(trace.text), derived_trace_id(trace), "derived", trace.id, "plain"
        )
    else:
        text, trace_id, mode, base_id = trace.text, trace.id, trace.mode, trace.base_trace_id
        variant = trace.variant
    if with_images:
        images = [{"bytes": inputs.image(g, fn), "path": fn} for fn in g.images]
    else:
        images = [{"sha256": sha_of(fn), "path": fn} for fn in g.images]
    n_back = back_count(text)
    return {
        "id": content_hash({"config": row.config, "trace_id": trace_id}),
        "problem_id": g.problem_id,
        "images": images,
        "question": g.question,
        "answer": g.answer,
        "choices": g.choices,
        "variant": variant,
        "trace": text,
        "messages": build_messages(g.question, row.config, len(g.images), text),
        "source": g.source,
        "teacher": trace.teacher.backend,
        "model": trace.teacher.model,
        "prompt_hash": trace.prompt_hash,
        "has_back": n_back > 0,
        "back_count": n_back,
        "mode": mode,
        "trace_id": trace_id,
        "base_trace_id": base_id,
    }


def corpus_features():
    """The ``datasets.Features`` of every corpus config (images as ``List(Image())``)."""
    from datasets import Features, Image, List, Value

    text_block = {"type": Value("string"), "text": Value("string")}
    return Features(
        {
            "id": Value("string"),
            "problem_id": Value("string"),
            "images": List(Image()),
            "question": Value("string"),
            "answer": Value("string"),
            "choices": List(Value("string")),
            "variant": Value("string"),
            "trace": Value("string"),
            "messages": List({"role": Value("string"), "content": List(text_block)}),
            "source": Value("string"),
            "teacher": Value("string"),
            "model": Value("string"),
            "prompt_hash": Value("string"),
            "has_back": Value("bool"),
            "back_count": Value("int32"),
            "mode": Value("string"),
            "trace_id": Value("string"),
            "base_trace_id": Value("string"),
        }
    )
