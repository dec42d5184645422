"""What to generate: ``GenerateConfig``, the public settings of a generation run (never secrets)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lbdata.hashing import content_hash
from lbdata.images import DEFAULT_MAX_IMAGE_PIXELS
from lbdata.records import parse_variant

_SECRET_NAMES = frozenset({"api_key", "apikey", "key", "token", "api_token", "secret", "password", "authorization"})


class GenerateConfig(BaseModel):
    """What to generate. Public settings only: secrets (API keys) never enter this model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(default="synthetic", description="problem source spec (see `lbdata sources`)")
    teacher: str = Field(default="scene", description="teacher name: scene, gpt-4o, openai:<model>, or a plug-in")
    variants: tuple[str, ...] = Field(
        default=("semantic_back", "solution_back"), description="trace variants to write for every problem"
    )
    limit: int | None = Field(default=200, ge=1, description="number of source problems to use (None: all)")
    seed: int = Field(default=0, description="seed of the synthetic source and of teacher sampling")
    samples: int = Field(default=1, ge=1, le=1024, description="traces per problem and variant")
    mode: Literal["write", "insert"] = Field(default="write", description="write whole traces or insert backs")
    concurrency: int = Field(default=8, ge=1, description="cap on teacher requests in flight")
    columns: dict[str, str] = Field(default_factory=dict, description="source column mapping (file/hf sources)")
    teacher_options: dict[str, Any] = Field(
        default_factory=dict, description="public teacher options (model parameters, base URL); never keys"
    )
    reveal_answer: bool = Field(default=False, description="show the teacher the gold answer")
    base_traces: str | None = Field(
        default=None, description="insert mode: rollout file (JSONL with problem_id and response, as `lbdata eval` writes)"
    )
    max_attempts: int = Field(
        default=1, ge=1, description="requests per trace until one passes validation (>1 validates as traces arrive)"
    )
    retries: int = Field(default=8, ge=0, description="retries of one request after 429, 5xx, timeouts, bad bodies")
    rpm: float | None = Field(default=None, gt=0, description="requests per minute (None: no limit unless the server sets one)")
    tpm: float | None = Field(default=None, gt=0, description="tokens per minute (None: no limit unless the server sets one)")
    budget_usd: float | None = Field(default=None, gt=0, description="stop before the run's total spend would exceed this")
    use_cache: bool = Field(default=True, description="answer a request from the run's cache when it was answered before")
    prices: str | None = Field(default=None, description="price table (YAML) merged over lbdata/prices.yaml")
    image_roots: tuple[str, ...] = Field(
        default=(), description="more folders a file source's image paths may point into; repeat the option for several"
    )
    max_image_pixels: int = Field(
        default=DEFAULT_MAX_IMAGE_PIXELS, ge=1, description="a larger source image is a bad row (checked before decoding)"
    )
    batch: bool = Field(default=False, description="send the requests through the provider's Batch API (24 h, batch price)")
    batch_max_requests: int = Field(default=50_000, ge=1, description="most requests in one batch input file")
    batch_max_bytes: int = Field(default=200_000_000, ge=1024, description="most bytes in one batch input file "
                                 "(images encoded)")
    poll_interval: float = Field(default=30.0, gt=0, description="seconds between two looks at a submitted batch")

    @field_validator("variants", mode="before")
    @classmethod
    def _variants(cls, v: Any) -> tuple[str, ...]:
        items = v.split(",") if isinstance(v, str) else list(v)
        out: list[str] = []
        for item in items:
            name = parse_variant(item)
            if name not in out:
                out.append(name)
        if not out:
            raise ValueError("at least one variant is required")
        return tuple(out)

    @field_validator("teacher_options")
    @classmethod
    def _no_secrets(cls, v: dict[str, Any]) -> dict[str, Any]:
        secret = sorted(k for k in v if k.lower() in _SECRET_NAMES)
        if secret:
            raise ValueError(
                f"teacher option(s) {', '.join(secret)} look like secrets, and teacher options are written to "
                "config.json; pass the key with --api-key, OPENAI_API_KEY or generate(..., api_key=...)"
            )
        return v

    # Settings that decide how much, how fast, how dear or where from — not what is generated.
    _HOW = frozenset({"limit", "concurrency", "max_attempts", "retries", "rpm", "tpm", "budget_usd", "use_cache",
                      "prices", "image_roots", "max_image_pixels", "batch", "batch_max_requests",
                      "batch_max_bytes", "poll_interval"})
    _HOW_TEACHER = frozenset({"base_url", "timeout", "endpoint_concurrency"})

    def identity(self) -> dict[str, Any]:
        """The non-default settings that decide *what* is generated (not how much, how fast or from where)."""
        out = self.model_dump(mode="json", exclude=set(self._HOW) | {"teacher_options"}, exclude_defaults=True)
        options = {k: v for k, v in self.teacher_options.items() if k not in self._HOW_TEACHER}
        if options:
            out["teacher_options"] = options
        return out

    def default_run_name(self) -> str:
        slug = "-".join(_slug(x) for x in (self.source, self.teacher))
        return f"{slug}-{content_hash(self.identity(), 8)}"


def _slug(text: str) -> str:
    text = re.sub(r"[^A-Za-z0-9]+", "-", text.split("/")[-1] if text.startswith(("jsonl:", "parquet:")) else text)
    return text.strip("-").lower()[:40] or "x"


__all__ = ["GenerateConfig"]
