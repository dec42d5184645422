"""What a build takes: the configs and splits of a corpus, its file names, and ``BuildConfig``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lbdata.records import BACK_VARIANTS, parse_variant

CONFIGS: tuple[str, ...] = BACK_VARIANTS
SPLITS: tuple[str, ...] = ("train", "test")
MANIFEST_FILE = "manifest.json"
CARD_FILE = "README.md"
DATA_DIR = "data"
DEFAULT_REFLECTION_RATE = 0.4
"""Share of rows with ``<back>``: the middle of the 30–50 % band the Look-Back paper found best."""


class BuildConfig(BaseModel):
    """How a corpus is built from runs. Every field enters the version id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    variants: tuple[str, ...] = Field(
        default=CONFIGS, description="back variants to build; each becomes one Hugging Face config"
    )
    reflection_rate: float = Field(
        default=DEFAULT_REFLECTION_RATE, ge=0.0, le=1.0,
        description="share of rows that contain <back>; the other rows are plain traces",
    )
    test_size: float = Field(default=0.05, ge=0.0, lt=1.0, description="share of problems in the test split")
    seed: int = Field(default=0, description="seed of the split, the mix and the row order")
    per_problem: int = Field(default=1, ge=1, description="rows per problem and config (K traces per problem)")
    license: str = Field(default="unknown", description="license id written into the card (e.g. cc-by-4.0)")
    judge: str | None = Field(default=None, description="name of an `lbdata judge` of every run: a back with a "
                              "refuted claim is rejected (back_ungrounded)")
    require_judged: bool = Field(default=False, description="when a judge is named: reject back traces it has "
                                 "not judged (back_unjudged)")

    @field_validator("variants", mode="before")
    @classmethod
    def _variants(cls, value: Any) -> tuple[str, ...]:
        items = value.split(",") if isinstance(value, str) else list(value)
        out: list[str] = []
        for item in items:
            name = parse_variant(item)
            if name not in CONFIGS:
                raise ValueError(f"{item!r} is not a back variant; a corpus config is one of: semantic, solution")
            if name not in out:
                out.append(name)
        if not out:
            raise ValueError("at least one variant is required, e.g. semantic,solution")
        return tuple(out)
