"""The records that flow through lbdata (see DESIGN.md, "Contracts").

These pydantic models are the source of ``schemas/*.schema.json``; ``lbdata schemas --check`` and
``tests/test_schemas.py`` fail when the two drift apart. Ids are content hashes: the same content
gives the same id on any machine, and nothing here depends on time or randomness.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lbdata.hashing import content_hash

Variant = Literal["semantic_back", "solution_back", "plain"]
Mode = Literal["write", "insert", "derived"]
TraceStatus = Literal["done", "failed"]

VARIANTS: tuple[str, ...] = ("semantic_back", "solution_back", "plain")
BACK_VARIANTS: tuple[str, ...] = ("semantic_back", "solution_back")
VARIANT_ALIASES: dict[str, str] = {
    "semantic": "semantic_back",
    "semantic_back": "semantic_back",
    "semantic-back": "semantic_back",
    "solution": "solution_back",
    "solution_back": "solution_back",
    "solution-back": "solution_back",
    "plain": "plain",
    "none": "plain",
}


def parse_variant(name: str) -> str:
    """Map a user-facing variant name (``semantic``, ``solution-back``, …) to its canonical form."""
    from lbdata.errors import UsageError

    key = name.strip().lower()
    if key not in VARIANT_ALIASES:
        raise UsageError(f"unknown variant {name!r}; use one of: semantic, solution, plain")
    return VARIANT_ALIASES[key]


def parse_variants(spec: str) -> list[str]:
    """Parse a comma-separated variant list, keeping order and dropping repeats."""
    out: list[str] = []
    for part in spec.split(","):
        if part.strip():
            v = parse_variant(part)
            if v not in out:
                out.append(v)
    if not out:
        from lbdata.errors import UsageError

        raise UsageError("no variant given; use e.g. --variant semantic,solution")
    return out


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ImageRef(_Record):
    """An image, addressed by the sha256 of its bytes. Bytes live once per run in ``images/``."""

    sha256: str = Field(description="sha256 hex digest of the encoded image bytes")
    ext: str = Field(default="png", description="file extension of the encoded bytes (png, jpg, webp)")
    width: int = Field(ge=1, description="width in pixels")
    height: int = Field(ge=1, description="height in pixels")

    @property
    def filename(self) -> str:
        return f"{self.sha256}.{self.ext}"


class Problem(_Record):
    """A question about one or more images, with its gold answer."""

    id: str = Field(description="stable id '<source>:<key>'")
    images: list[ImageRef] = Field(description="the images, in the order the question refers to them")
    question: str = Field(description="the question text, without any format instruction")
    answer: str = Field(description="the gold answer (a letter for multiple choice)")
    choices: list[str] | None = Field(default=None, description="option texts for multiple choice, A first")
    source: str = Field(description="name of the source the problem came from")
    meta: dict[str, Any] = Field(
        default_factory=dict,
        description="source-specific facts; the synthetic source keeps its scene facts under 'scene'",
    )


class TeacherInfo(_Record):
    """Who wrote a trace and with which generation parameters."""

    backend: str = Field(description="teacher backend name, e.g. 'scene' or 'openai'")
    model: str = Field(description="model name as sent to the backend")
    params: dict[str, Any] = Field(default_factory=dict, description="generation parameters that shape output")


class Usage(_Record):
    """Tokens and money spent on one request (all attempts of it, billed ones included)."""

    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    image_tokens: int = Field(default=0, ge=0, description="share of prompt_tokens spent on images")
    cached_tokens: int = Field(default=0, ge=0, description="share of prompt_tokens the provider served from its "
                               "prompt cache (billed at the cached rate)")
    cost_usd: float = Field(default=0.0, ge=0.0)
    requests: int = Field(default=0, ge=0, description="HTTP requests made, retries included")
    cached: bool = Field(default=False, description="served from the request cache, nothing paid")


class Trace(_Record):
    """One reasoning trace written by a teacher for one problem and variant."""

    id: str = Field(description="content hash of problem, variant, mode, teacher, prompt hash, sample, attempt")
    problem_id: str
    variant: Variant
    mode: Mode = "write"
    teacher: TeacherInfo
    prompt_hash: str = Field(description="hash of the prompt template(s) that produced the request")
    text: str = Field(description="the full trace: <think>…</think> <back>…</back> <think>…</think> \\boxed{…}")
    usage: Usage = Field(default_factory=Usage)
    finish_reason: str | None = None
    sample: int = Field(default=0, ge=0, description="sample index when several traces per problem are drawn")
    attempt: int = Field(default=0, ge=0, description="0 for the first request, k for the k-th re-request")
    base_trace_id: str | None = Field(default=None, description="insert/derived mode: the trace it came from")
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @staticmethod
    def make_id(
        *,
        problem_id: str,
        variant: str,
        mode: str,
        teacher: TeacherInfo,
        prompt_hash: str,
        sample: int = 0,
        attempt: int = 0,
        base_trace_id: str | None = None,
    ) -> str:
        return content_hash(
            {
                "problem_id": problem_id,
                "variant": variant,
                "mode": mode,
                "teacher": teacher.model_dump(mode="json"),
                "prompt_hash": prompt_hash,
                "sample": sample,
                "attempt": attempt,
                "base_trace_id": base_trace_id,
            }
        )


class Verdict(_Record):
    """The validators' decision on one trace."""

    trace_id: str
    accepted: bool
    reasons: list[str] = Field(default_factory=list, description="every reason code that applies (see README)")
    answer: str | None = Field(default=None, description="the extracted final answer, if any")
    scores: dict[str, float] = Field(default_factory=dict)
    config_hash: str = Field(default="", description="hash of the ValidationConfig that produced it")
    text_sha256: str = Field(
        default="", description="sha256 of the trace text it judged; a verdict whose text changed is not used"
    )


class BadRow(_Record):
    """A source row that could not become a Problem; recorded and counted, never dropped silently."""

    source: str
    key: str
    reason: str = Field(description="short snake_case code, e.g. missing_answer, unreadable_image")
    detail: str = ""


RECORDS: dict[str, type[BaseModel]] = {
    "ImageRef": ImageRef,
    "Problem": Problem,
    "TeacherInfo": TeacherInfo,
    "Usage": Usage,
    "Trace": Trace,
    "Verdict": Verdict,
    "BadRow": BadRow,
}


def json_schemas() -> dict[str, str]:
    """``{file name: JSON text}`` of every record's JSON Schema, as kept in ``schemas/``."""
    import json

    return {
        f"{name}.schema.json": json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n"
        for name, model in RECORDS.items()
    }


def drifted_schemas(directory) -> list[str]:
    """Names of schema files in ``directory`` that are missing or differ from ``records.py``."""
    from pathlib import Path

    directory = Path(directory)
    return [
        name
        for name, text in json_schemas().items()
        if not (directory / name).exists() or (directory / name).read_text() != text
    ]
