"""Recipes: flat YAML files whose keys are trainer config fields, loaded into TRL's config dataclasses.

A recipe (``training/recipes/*.yaml``, or any YAML file) maps keys to values, as open-r1's recipes do.
Every key is a field of one of three config classes, and goes to each class that has it:

- the trainer's config: ``trl.SFTConfig`` (``sft``) or ``trl.GRPOConfig`` (``grpo``) — learning rate,
  batch sizes, epochs, ``assistant_only_loss``, ``num_generations``, ``reward_weights``, ``use_vllm`` …;
- ``trl.ModelConfig`` — how the model loads (``model_name_or_path``, ``dtype``,
  ``attn_implementation``) and LoRA (``use_peft``, ``lora_r``, ``lora_alpha``, ``lora_target_modules`` …);
- lbdata's ``SFTOptions`` / ``GRPOOptions`` — ``freeze_vision_tower``, the image pixel band
  (``min_pixels``, ``max_pixels``) and, for GRPO, the format rules (``variant``, ``validation_config``).

The three classes go to one ``transformers.HfArgumentParser`` (``recipe_parser``), as TRL's ``TrlParser``
does for its scripts: its ``parse_dict`` builds the three objects (``recipe_configs``), and the field types
it derives convert a number written as a string, as argparse converts a string default. An unknown key is
a ``ConfigError`` that names it (and the closest known key). CLI flags override the recipe:
``--set KEY=VALUE`` for any key (the value is read as YAML), plus the dedicated flags of the commands
(``--model``, ``--out``, ``--lora``). ``load_recipe`` reads and checks, and builds lbdata's options; the
TRL config objects are built by ``recipe_configs`` (``trainer_config`` / ``model_config`` pick one).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import logging
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


@functools.cache
def recipe_parser(kind: str, *, options_only: bool = False):
    """The ``transformers.HfArgumentParser`` of a recipe kind: the trainer config, ``ModelConfig``, lbdata's options
    (only the options with ``options_only``: they are checked when a recipe loads, before any TRL config is built).

    The parser TRL's scripts build (``TrlParser`` is a subclass of it); recipes use its ``parse_dict`` and the
    field types it derived for its command-line arguments.
    """
    from transformers import HfArgumentParser

    classes = _config_classes(kind)
    return HfArgumentParser(classes[2:] if options_only else classes)


def known_keys(kind: str) -> dict[str, str]:
    """Every key a recipe of ``kind`` may hold, mapped to the name of the class that owns it."""
    out: dict[str, str] = {}
    for cls in reversed(recipe_parser(kind).dataclass_types):
        for f in dataclasses.fields(cls):
            if f.init:
                out[f.name] = cls.__name__
    return out


def _numeric_fields(kind: str) -> dict[str, type]:
    """Single-valued int and float fields, with the type the parser converts a command-line string with."""
    return {a.dest: a.type for a in recipe_parser(kind)._actions if a.type in (int, float) and a.nargs is None}


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


def _coerce(key: str, value: Any, cast: type | None, origin: str) -> Any:
    """A number written as a string (``1e-5`` is a string in YAML 1.1) becomes a number for a numeric field,
    as argparse converts a string default (TRL's ``TrlParser`` sets a YAML config's values as defaults)."""
    if not isinstance(value, str) or cast is None:
        return value
    try:
        return cast(value)
    except ValueError:
        raise ConfigError(f"bad value for {key!r} in {origin}: {value!r} is not a number") from None


# Bounds the trainers check only once training has started (or never, failing in a tensor op):
# key -> (integer?, lowest, highest). Checked when the recipe is read, before any model loads.
_BOUNDS: dict[str, tuple[bool, float, float | None]] = {
    "per_device_train_batch_size": (True, 1, None),
    "per_device_eval_batch_size": (True, 1, None),
    "gradient_accumulation_steps": (True, 1, None),
    "num_generations": (True, 1, None),
    "max_steps": (True, -1, None),
    "num_train_epochs": (False, 0, None),
    "learning_rate": (False, 0, None),
    "weight_decay": (False, 0, None),
    "warmup_ratio": (False, 0, 1),
    "seed": (True, 0, 2**32 - 1),
}


def _check_bounds(values: Mapping[str, Any], origin_of: Any) -> None:
    """One ``ConfigError`` naming the key and where it came from for a value out of ``_BOUNDS``."""
    for key, (integer, low, high) in _BOUNDS.items():
        if key not in values:
            continue
        value = values[key]
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if integer and not (isinstance(value, int) and not isinstance(value, bool)):
            why = "must be a whole number"
        elif not number or value != value or value in (float("inf"), float("-inf")):
            why = "must be a finite number"
        elif value < low or (high is not None and value > high):
            why = f"must be at least {low}" + (f" and at most {high}" if high is not None else "")
        else:
            continue
        raise ConfigError(f"bad value for {key!r} in {origin_of(key)}: {why} (got {value!r})")


def load_recipe(recipe: str | Path | None, kind: str, overrides: Mapping[str, Any] | None = None) -> Recipe:
    """Read a recipe, apply ``overrides``, check every key; raise ``ConfigError`` naming a bad key."""
    path = resolve_recipe_path(recipe, kind)
    data = read_yaml_mapping(path, what="recipe", hint="a flat mapping of key: value, as in training/recipes/")
    values = {**data, **dict(overrides or {})}
    keys = known_keys(kind)
    classes = recipe_parser(kind).dataclass_types
    for key in values:
        if key not in keys:
            origin = "--set" if overrides and key in overrides else str(path)
            close = difflib.get_close_matches(key, keys, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"unknown key {key!r} in {origin}{hint} Recipe keys are fields of trl.{classes[0].__name__}, "
                f"trl.ModelConfig or lbdata's {classes[2].__name__} (see README, Train)"
            )
    numeric = _numeric_fields(kind)
    given = dict(overrides or {})
    values = {k: _coerce(k, v, numeric.get(k), "--set" if k in given else str(path)) for k, v in values.items()}
    _check_bounds(values, lambda k: "--set" if k in given else str(path))
    try:  # lbdata's options are checked now; the TRL configs are built with them by recipe_configs
        options = recipe_parser(kind, options_only=True).parse_dict(values, allow_extra_keys=True)[0]
    except TypeError as exc:
        raise ConfigError(f"bad lbdata option in {path}: {exc}") from None
    return Recipe(kind=kind, source=str(path), values=values, options=options)


def recipe_configs(recipe: Recipe, **forced: Any) -> tuple[Any, Any, SFTOptions]:
    """The recipe parsed into ``(SFTConfig | GRPOConfig, ModelConfig, SFTOptions | GRPOOptions)`` in one
    ``parse_dict``; ``forced`` values (e.g. ``output_dir``) win over the recipe's."""
    parser = recipe_parser(recipe.kind)
    try:
        return parser.parse_dict({**recipe.values, **forced})
    except (TypeError, ValueError) as exc:
        names = ", ".join(cls.__name__ for cls in parser.dataclass_types)
        raise ConfigError(f"the recipe {recipe.source} does not make a valid {names}: {exc}") from None


def trainer_config(recipe: Recipe, **forced: Any):
    """The ``SFTConfig`` / ``GRPOConfig`` of a recipe; ``forced`` values (e.g. ``output_dir``) win."""
    return recipe_configs(recipe, **forced)[0]


def model_config(recipe: Recipe, **forced: Any):
    """The ``trl.ModelConfig`` of a recipe (model path, dtype, attention, LoRA)."""
    return recipe_configs(recipe, **forced)[1]
