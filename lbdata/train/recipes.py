"""Recipes: flat YAML files whose keys are trainer config fields, loaded into TRL's config dataclasses.

A recipe (``training/recipes/*.yaml``, or any YAML file) maps keys to values, as open-r1's recipes do.
Every key is a field of one of three config classes, and goes to each class that has it:

- the trainer's config: ``trl.SFTConfig`` (``sft``) or ``trl.GRPOConfig`` (``grpo``) — learning rate,
  batch sizes, epochs, ``assistant_only_loss``, ``num_generations``, ``reward_weights``, ``use_vllm`` …;
- ``trl.ModelConfig`` — how the model loads (``model_name_or_path``, ``dtype``,
  ``attn_implementation``) and LoRA (``use_peft``, ``lora_r``, ``lora_alpha``, ``lora_target_modules`` …);
- lbdata's ``SFTOptions`` / ``GRPOOptions`` — ``freeze_vision_tower``, the image pixel band
  (``min_pixels``, ``max_pixels``) and, for GRPO, the format rules (``variant``, ``validation_config``).

An unknown key is a ``ConfigError`` that names it (and the closest known key). CLI flags override the
recipe: ``--set KEY=VALUE`` for any key (the value is read as YAML), plus the dedicated flags of the
commands (``--model``, ``--out``, ``--lora``). ``load_recipe`` only reads and checks; the config objects
are built by ``trainer_config`` / ``model_config`` (they import TRL).
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lbdata.errors import ConfigError
from lbdata.hashing import content_hash
from lbdata.resources import read_yaml_mapping, resource_dir

log = logging.getLogger(__name__)

KINDS = ("sft", "grpo")
DEFAULT_RECIPES = {"sft": "sft", "grpo": "grpo"}
FORMAT_REWARDS = ("look_back", "regex")


@dataclass(frozen=True)
class SFTOptions:
    """lbdata's own recipe keys for ``lbdata train sft`` (every other key is a TRL config field)."""

    freeze_vision_tower: bool = field(
        default=True,
        metadata={
            "help": "Freeze the vision encoder (patch embedding and blocks); the patch merger that projects image "
            "features into the language model stays trainable, as in Qwen2.5-VL's own fine-tuning defaults."
        },
    )
    min_pixels: int | None = field(
        default=None,
        metadata={"help": "Smallest image area after resizing, in pixels (None: keep the processor's setting)."},
    )
    max_pixels: int | None = field(
        default=None,
        metadata={"help": "Largest image area after resizing, in pixels (None: keep the processor's setting)."},
    )

    def __post_init__(self) -> None:
        for key in ("min_pixels", "max_pixels"):
            value = getattr(self, key)
            if value is not None and value < 28 * 28:
                raise ConfigError(f"{key} must be at least 784 (one 28×28 patch group), got {value}")
        if self.min_pixels and self.max_pixels and self.min_pixels > self.max_pixels:
            raise ConfigError(f"min_pixels ({self.min_pixels}) is larger than max_pixels ({self.max_pixels})")


@dataclass(frozen=True)
class GRPOOptions(SFTOptions):
    """lbdata's own recipe keys for ``lbdata train grpo``."""

    variant: str = field(
        default="semantic_back",
        metadata={
            "help": "Back variant whose format instruction ends each prompt and whose rules the format reward "
            "applies, for data that carries none (hf:/jsonl:/parquet: sources); a corpus uses its --config."
        },
    )
    validation_config: str | None = field(
        default=None,
        metadata={
            "help": "Validator thresholds YAML (as for `lbdata validate` / `lbdata build`); pass the one the "
            "corpus was built with so the format reward and the data filter apply the same rules."
        },
    )
    format_reward: str = field(
        default="look_back",
        metadata={
            "help": "The format term: look_back (lbdata's validators: a real <back> only) or regex (the paper-style "
            "tag regex, which also pays for empty and filler backs; for comparisons, see benchmarks/loop.py). "
            "Set its weight to 0 (reward_weights: [1.0, 0.0]) to train on accuracy alone."
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.format_reward not in FORMAT_REWARDS:
            raise ConfigError(
                f"format_reward must be one of {', '.join(FORMAT_REWARDS)}, got {self.format_reward!r}"
            )


@dataclass
class Recipe:
    """A checked recipe: where it came from, the resolved values, and lbdata's own options."""

    kind: str
    source: str
    values: dict[str, Any]
    options: SFTOptions

    @property
    def recipe_hash(self) -> str:
        return content_hash(self.values, 12)

    def to_yaml(self) -> str:
        """The resolved recipe (file and overrides merged) as a flat YAML recipe that reproduces the run."""
        header = f"# resolved {self.kind} recipe: {self.source} plus command-line overrides\n"
        return header + yaml.safe_dump(self.values, sort_keys=True, allow_unicode=True)


def _config_classes(kind: str) -> tuple[type, type, type]:
    from trl import GRPOConfig, ModelConfig, SFTConfig

    if kind == "sft":
        return SFTConfig, ModelConfig, SFTOptions
    if kind == "grpo":
        return GRPOConfig, ModelConfig, GRPOOptions
    raise ValueError(f"unknown recipe kind {kind!r}; expected one of {KINDS}")


def _field_types(cls: type) -> dict[str, Any]:
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # a forward reference that cannot be resolved: no coercion for this class
        hints = {}
    return {f.name: hints.get(f.name, f.type) for f in dataclasses.fields(cls)}


def known_keys(kind: str) -> dict[str, str]:
    """Every key a recipe of ``kind`` may hold, mapped to the name of the class that owns it."""
    out: dict[str, str] = {}
    for cls in reversed(_config_classes(kind)):
        for f in dataclasses.fields(cls):
            if f.init:
                out[f.name] = cls.__name__
    return out


def resolve_recipe_path(recipe: str | Path | None, kind: str) -> Path:
    """A recipe file: an existing path, or the name of a built-in recipe (``sft``, ``tiny-grpo`` …)."""
    name = str(recipe) if recipe is not None else DEFAULT_RECIPES[kind]
    path = Path(name)
    if path.is_file():
        return path
    builtin = resource_dir("training") / "recipes" / f"{name.removesuffix('.yaml')}.yaml"
    if builtin.is_file():
        return builtin
    available = sorted(p.stem for p in (resource_dir("training") / "recipes").glob("*.yaml"))
    raise ConfigError(
        f"recipe {name!r} is neither a file nor a built-in recipe; built-in recipes: {', '.join(available)}"
    )


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``["learning_rate=1e-5", "bf16=false"]`` → ``{"learning_rate": 1e-5, "bf16": False}`` (values as YAML)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}; e.g. --set learning_rate=1e-5")
        try:
            out[key] = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            out[key] = raw
    return out


def _coerce(key: str, value: Any, hint: Any, origin: str) -> Any:
    """Numbers written as strings (``1e-5`` is a string in YAML 1.1) become numbers for numeric fields."""
    if not isinstance(value, str):
        return value
    args = set(typing.get_args(hint)) or {hint}
    if str in args or not args & {int, float}:
        return value
    for cast in (int, float):
        if cast in args:
            try:
                return cast(value)
            except ValueError:
                continue
    raise ConfigError(f"bad value for {key!r} in {origin}: {value!r} is not a number")


def load_recipe(recipe: str | Path | None, kind: str, overrides: Mapping[str, Any] | None = None) -> Recipe:
    """Read a recipe, apply ``overrides``, check every key; raise ``ConfigError`` naming a bad key."""
    path = resolve_recipe_path(recipe, kind)
    data = read_yaml_mapping(path, what="recipe", hint="a flat mapping of key: value, as in training/recipes/")
    values = {**data, **dict(overrides or {})}
    keys = known_keys(kind)
    classes = _config_classes(kind)
    types: dict[str, Any] = {}
    for cls in reversed(classes):
        types.update(_field_types(cls))
    for key in values:
        if key not in keys:
            origin = "--set" if overrides and key in overrides else str(path)
            close = difflib.get_close_matches(key, keys, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"unknown key {key!r} in {origin}{hint} Recipe keys are fields of trl.{classes[0].__name__}, "
                f"trl.ModelConfig or lbdata's {classes[2].__name__} (see README, Train)"
            )
    values = {k: _coerce(k, v, types.get(k), str(path)) for k, v in values.items()}
    option_cls = classes[2]
    option_names = {f.name for f in dataclasses.fields(option_cls)}
    try:
        options = option_cls(**{k: v for k, v in values.items() if k in option_names})
    except TypeError as exc:
        raise ConfigError(f"bad lbdata option in {path}: {exc}") from None
    return Recipe(kind=kind, source=str(path), values=values, options=options)


def _build(cls: type, values: Mapping[str, Any], origin: str, **forced: Any) -> Any:
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    kwargs = {k: v for k, v in values.items() if k in names}
    kwargs.update(forced)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"the recipe {origin} does not make a valid {cls.__name__}: {exc}") from None


def trainer_config(recipe: Recipe, **forced: Any):
    """The ``SFTConfig`` / ``GRPOConfig`` of a recipe; ``forced`` values (e.g. ``output_dir``) win."""
    return _build(_config_classes(recipe.kind)[0], recipe.values, recipe.source, **forced)


def model_config(recipe: Recipe, **forced: Any):
    """The ``trl.ModelConfig`` of a recipe (model path, dtype, attention, LoRA)."""
    return _build(_config_classes(recipe.kind)[1], recipe.values, recipe.source, **forced)
