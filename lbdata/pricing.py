"""What teacher requests cost: a price table (``lbdata/prices.yaml``, overridable per run) and the way
each model bills images.

``load_prices(path)`` reads the built-in table and merges ``path`` over it; ``PriceTable.lookup(model)``
finds a model by exact name or longest prefix; ``image_tokens`` counts an image as the model bills it
(GPT-4o: 85 + 170 per 512-px tile at high detail after its scaling, 85 at low); ``ModelPrice.cost``
turns token counts into USD: prompt tokens the provider served from its prompt cache at the model's
``cached_input`` rate, and everything at the ``batch`` multiplier when the request went through the
Batch API. ``run_cost(ledger)`` is what a run paid per 1,000 accepted traces.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lbdata.errors import ConfigError
from lbdata.resources import read_yaml_mapping

if TYPE_CHECKING:
    from lbdata.ledger import Ledger

DEFAULT_PRICES = Path(__file__).with_name("prices.yaml")


class ImageBilling(BaseModel):
    """How a model turns an image into prompt tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scheme: Literal["tiles", "patches", "qwen"] = Field(
        default="qwen", description="tiles (GPT-4o), patches (32-px patches, GPT-4.1-mini), qwen (28x28 pixels)"
    )
    base: int = Field(default=85, ge=0, description="tiles: tokens per image, and all of it at low detail")
    tile: int = Field(default=170, ge=0, description="tiles: tokens per 512-px tile at high detail")
    cap: int = Field(default=1536, ge=1, description="patches: most 32-px patches per image")
    multiplier: float = Field(default=1.0, gt=0, description="patches: tokens per patch")


class ModelPrice(BaseModel):
    """Price of one model in USD per million tokens, and its image billing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = Field(ge=0, description="USD per 1M prompt tokens (images included)")
    output: float = Field(ge=0, description="USD per 1M completion tokens")
    cached_input: float | None = Field(
        default=None, ge=0, description="USD per 1M prompt tokens served from the provider's prompt cache "
        "(default: the input price, i.e. no discount)"
    )
    batch: float = Field(default=1.0, gt=0, le=1, description="price multiplier for requests sent through the "
                         "Batch API (0.5: half price; 1: the model has no batch discount)")
    image: ImageBilling = Field(default_factory=ImageBilling, description="how images become tokens")

    def cost(self, prompt_tokens: int, completion_tokens: int, *, cached_tokens: int = 0, batch: bool = False) -> float:
        """USD of one request: ``cached_tokens`` of the ``prompt_tokens`` at the cached rate; the whole at the
        batch multiplier when ``batch``."""
        cached = min(max(cached_tokens, 0), prompt_tokens)
        cached_rate = self.input if self.cached_input is None else self.cached_input
        usd = ((prompt_tokens - cached) * self.input + cached * cached_rate + completion_tokens * self.output) / 1e6
        return usd * self.batch if batch else usd


class PriceTable(BaseModel):
    """Model prices, looked up by exact name or longest prefix."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    typical_completion_tokens: int = Field(
        default=600, ge=1, description="trace length a dry run assumes before the run has written any"
    )
    models: dict[str, ModelPrice] = Field(default_factory=dict, description="model name -> price")

    def lookup(self, model: str) -> ModelPrice | None:
        if model in self.models:
            return self.models[model]
        prefixes = [name for name in self.models if model.startswith(name)]
        return self.models[max(prefixes, key=len)] if prefixes else None


def _read(path: Path) -> dict:
    return read_yaml_mapping(path, what="price table", hint="a 'models' key, as in lbdata/prices.yaml",
                             unreadable_fix="check the --prices path")


@lru_cache(maxsize=8)
def _load(path: str | None) -> PriceTable:
    data = _read(DEFAULT_PRICES)
    if path is not None:
        extra = _read(Path(path))
        unknown = set(extra) - set(PriceTable.model_fields)
        if unknown:
            raise ConfigError(
                f"unknown key(s) {', '.join(sorted(unknown))} in price table {path}; "
                f"valid keys: {', '.join(PriceTable.model_fields)}"
            )
        models = {**data.get("models", {}), **(extra.get("models") or {})}
        data = {**data, **extra, "models": models}
    try:
        return PriceTable.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise ConfigError(
            f"price table {path or DEFAULT_PRICES}: {where}: {err['msg']}; see lbdata/prices.yaml for the layout"
        ) from None


def load_prices(path: str | Path | None = None) -> PriceTable:
    """The built-in price table, with the entries of ``path`` (same layout) merged over it."""
    return _load(str(path) if path is not None else None)


def image_tokens(width: int, height: int, detail: str, billing: ImageBilling) -> int:
    """Prompt tokens one image of ``width`` × ``height`` (as sent) costs under ``billing``."""
    if billing.scheme == "tiles":
        if detail == "low":
            return billing.base
        w, h = float(width), float(height)
        if max(w, h) > 2048:  # fit in a 2048 x 2048 square
            s = 2048 / max(w, h)
            w, h = w * s, h * s
        if min(w, h) > 768:  # then the shortest side becomes 768
            s = 768 / min(w, h)
            w, h = w * s, h * s
        return billing.base + billing.tile * math.ceil(w / 512) * math.ceil(h / 512)
    if billing.scheme == "patches":
        patches = math.ceil(width / 32) * math.ceil(height / 32)
        if patches > billing.cap:
            r = math.sqrt(32 * 32 * billing.cap / (width * height))
            r *= min(math.floor(width * r / 32) / (width * r / 32), math.floor(height * r / 32) / (height * r / 32))
            patches = math.ceil(width * r / 32) * math.ceil(height * r / 32)
        return math.ceil(patches * billing.multiplier)
    return math.ceil(width / 28) * math.ceil(height / 28)


def images_tokens(images: tuple[tuple[int, int, str], ...] | list, billing: ImageBilling) -> int:
    """Total prompt tokens of several ``(width, height, detail)`` images."""
    return sum(image_tokens(w, h, d, billing) for w, h, d in images)


@dataclass(frozen=True)
class RunCost:
    """What a run cost, and what that comes to per accepted trace."""

    cost_usd: float
    traces: int
    validated: int  # traces with a verdict under the validator config
    accepted: int

    @property
    def acceptance(self) -> float | None:
        """Share of the validated traces that were accepted (None before any verdict)."""
        return self.accepted / self.validated if self.validated else None

    @property
    def per_1k_accepted(self) -> float | None:
        """USD per 1,000 accepted traces: everything the run paid (rejected and failed requests included),
        over the traces the validators accepted. None before any verdict; inf when none was accepted."""
        if not self.validated:
            return None
        return 1000 * self.cost_usd / self.accepted if self.accepted else math.inf


def run_cost(ledger: Ledger, config_hash: str | None = None) -> RunCost:
    """The run's spend and accepted traces under ``config_hash`` (default: the default validator config)."""
    if config_hash is None:
        from lbdata.validate import ValidationConfig

        config_hash = ValidationConfig().config_hash
    counts = ledger.counts()
    validated, accepted = ledger.verdict_counts(config_hash)
    return RunCost(cost_usd=float(counts["cost_usd"]), traces=counts["traces"], validated=validated, accepted=accepted)


def format_per_1k(value: float | None) -> str:
    """USD per 1,000 accepted traces as a table shows it."""
    if value is None:
        return "-"
    return "no accepted" if math.isinf(value) else f"{value:.2f}"
