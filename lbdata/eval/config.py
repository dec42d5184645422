"""``EvalConfig``: how an evaluation samples, batches and how much of each dataset it takes.

Every setting's default, bound and help text live here once: ``GenerationParams`` (what a generator is
asked for) takes its defaults and bounds from these fields, ``evaluate`` takes the whole config, and
``lbdata eval`` derives its options from it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lbdata.errors import UsageError, error_reason
from lbdata.records import parse_variant

if TYPE_CHECKING:
    from lbdata.eval.generators import GenerationParams

class EvalConfig(BaseModel):
    """The settings of one evaluation: the prompt variant, the sampling, the batch size and the dataset limit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    variant: str = Field(default="semantic_back", description="format instruction after the question: semantic | "
                         "solution | none")
    max_new_tokens: int = Field(default=2048, ge=1, description="longest response in tokens")
    temperature: float = Field(default=0.0, ge=0.0, description="0 = greedy (the paper's evaluation); > 0 samples "
                               "with top-p 0.95")
    limit: int | None = Field(default=None, ge=1, description="at most N problems per dataset (None: all)")
    batch_size: int = Field(default=8, ge=1, description="problems per generate call (local) or requests in flight "
                            "(server)")
    seed: int = Field(default=0, description="seed of the synthetic source and of sampling")

    @field_validator("variant", mode="before")
    @classmethod
    def _variant(cls, value: str) -> str:
        try:
            return parse_variant(value)
        except UsageError as exc:
            raise ValueError(str(exc)) from None

    @classmethod
    def checked(cls, **settings: Any) -> EvalConfig:
        """The config of ``settings`` (the rest default); a refused value is a ``UsageError`` naming its setting."""
        try:
            return cls(**settings)
        except ValidationError as exc:
            error = exc.errors()[0]
            raise UsageError(f"{error['loc'][0]}: {error_reason(error)}") from None

    def replace(self, **settings: Any) -> EvalConfig:
        """This config with the ``settings`` given (None keeps this one's), checked like ``checked``."""
        given = {name: value for name, value in settings.items() if value is not None}
        return self.checked(**{**self.model_dump(), **given}) if given else self

    @property
    def generation(self) -> GenerationParams:
        """The settings that change the responses (max_new_tokens, temperature, seed), as the generators take them."""
        from dataclasses import fields

        from lbdata.eval.generators import GenerationParams

        return GenerationParams(**{f.name: getattr(self, f.name) for f in fields(GenerationParams)})
