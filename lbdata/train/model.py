"""What SFT and GRPO share: loading the model and processor, freezing the vision tower, LoRA, and writing
the trained model directory (weights, processor, resolved recipe, run record, model card).

A trained directory holds:

- the model (``config.json``, ``*.safetensors``) and the processor (with the training pixel band);
  after LoRA the adapter is merged into the weights, and the adapter itself is kept under ``adapter/``;
- ``train_config.yaml``: the resolved recipe (file plus command-line overrides), itself a recipe;
- ``lbdata_train.json``: what was trained on what (base model, data, corpus version, recipe hash),
  row counts, final metrics and library versions;
- ``train_log.csv``: every logged step (loss; for GRPO the reward means and the trigger rate), and
  ``train_curve.png``, their curve (``lbdata.train.monitor``);
- ``README.md``: the model card from ``cards/model.md.j2``, which shows the curve.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from lbdata import __version__
from lbdata.errors import ConfigError, UsageError
from lbdata.train.common import (
    ADAPTER_DIR,
    CARD_FILE,
    CONFIG_FILE,
    CURVE_FILE,
    LOG_FILE,
    RUN_FILE,
    WEIGHT_FILES,
    deepspeed_config_path,
)
from lbdata.train.recipes import Recipe, SFTOptions

log = logging.getLogger(__name__)

VISION_TOWERS = ("visual", "vision_tower", "vision_model")
"""Attribute names under which vision-language models keep their vision encoder."""
PROJECTORS = ("merger",)
"""Submodules of the vision encoder that project into the language model and stay trainable."""


def mixed_precision(values: dict[str, Any]) -> str:
    """The precision ``accelerate launch`` is told, the same the trainer config resolves (TRL: bf16 unless fp16)."""
    fp16 = bool(values.get("fp16"))
    bf16 = values.get("bf16")
    if bf16 or (bf16 is None and not fp16):
        return "bf16"
    return "fp16" if fp16 else "no"


def apply_device_defaults(recipe: Recipe) -> None:
    """On a machine without a GPU: ``use_cpu`` (as DeepSpeed over gloo needs), unless the recipe set it."""
    import torch

    if not torch.cuda.is_available() and "use_cpu" not in recipe.values:
        recipe.values["use_cpu"] = True


def deepspeed_in_args(job: Any) -> str | None:
    """A DeepSpeed config for TrainingArguments when no launcher plugin carries one (torchrun, plain python)."""
    if not job.deepspeed or os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true":
        return None
    return str(deepspeed_config_path(job.deepspeed))


def attach_monitor(trainer: Any, out: Path, kind: str, recipe: Recipe) -> None:
    """Swap the trainer's printer (raw ``{'loss': …}`` dicts, or tqdm) for ``TrainMonitor``.

    ``disable_tqdm: true`` in the recipe turns the progress bar (and its log lines) off; the CSV and the
    curve are written either way. (The recipe's value, not the resolved one: transformers turns tqdm off
    by itself when its logging is quieter than warnings, as ``quiet_libraries`` makes it.)
    """
    from transformers import PrinterCallback, ProgressCallback

    from lbdata.train.monitor import TrainMonitor

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(TrainMonitor(out, kind, progress=not recipe.values.get("disable_tqdm")))


def start_run(trainer: Any, out: Path, identity: dict[str, Any], checkpoint: Path | None) -> list[int]:
    """Record in ``out`` which job trains there (``lbdata.train.resume``) and tell the monitor the steps the run
    resumed at; return those steps (the last is ``checkpoint``'s, when there is one)."""
    from lbdata.train.monitor import TrainMonitor
    from lbdata.train.resume import checkpoint_step, mark_started

    step = checkpoint_step(checkpoint) if checkpoint is not None else None
    steps = mark_started(out, identity, step) if trainer.is_world_process_zero() else []
    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, TrainMonitor):
            callback.resumed_at = steps
    if checkpoint is not None:
        log.info("resuming from %s (step %d)", checkpoint, step)
    return steps


def check_model_dir(path: str | Path) -> str:
    """A local model directory must hold ``config.json``; anything else is passed on as a Hub id."""
    p = Path(path)
    if p.exists() and not (p / "config.json").is_file():
        raise UsageError(f"{p} is not a model directory (no config.json); pass a checkpoint folder or a Hub id")
    return str(path)


def set_pixel_band(processor: Any, min_pixels: int | None, max_pixels: int | None) -> None:
    """Resize images into ``[min_pixels, max_pixels]`` (the band is saved with the trained processor)."""
    if min_pixels is None and max_pixels is None:
        return
    size = dict(processor.image_processor.size)
    if min_pixels is not None:
        size["shortest_edge"] = min_pixels
    if max_pixels is not None:
        size["longest_edge"] = max_pixels
    if size.get("shortest_edge", 0) > size.get("longest_edge", float("inf")):
        raise ConfigError(f"min_pixels {size['shortest_edge']} exceeds max_pixels {size['longest_edge']}")
    processor.image_processor.size = size


def torch_dtype(name: str | None):
    """``ModelConfig.dtype`` (``auto``, ``bfloat16``, ``float32`` …) as what ``from_pretrained`` takes."""
    import torch

    if name in (None, "auto"):
        return "auto"
    dtype = getattr(torch, str(name), None)
    if not isinstance(dtype, torch.dtype):
        raise ConfigError(f"unknown dtype {name!r}; use auto, bfloat16, float16 or float32")
    return dtype


def load_model_and_processor(
    model_path: str, model_args: Any, options: SFTOptions, *, trust_remote_code: bool = False,
    checkpoint: Path | None = None,
):
    """The processor (``load_processor``: never a bare tokenizer) and the model (``AutoModelForImageTextToText``).

    With ``checkpoint`` (a run resuming) the weights come from the checkpoint when it holds a whole model: the
    trainer's own resume loads its state dict without the key renaming ``from_pretrained`` applies (transformers
    5 saves Qwen2.5-VL under its original key names), which would leave the base weights in place. A LoRA
    checkpoint holds only the adapter, which the trainer loads itself.
    """
    from transformers import AutoModelForImageTextToText

    from lbdata.train.processor import load_processor

    revision = None if model_args.model_revision == "main" else model_args.model_revision
    kwargs = {"revision": revision} if revision else {}
    processor = load_processor(model_path, trust_remote_code=trust_remote_code, **kwargs)
    set_pixel_band(processor, options.min_pixels, options.max_pixels)
    if model_args.attn_implementation:
        kwargs["attn_implementation"] = model_args.attn_implementation
    weights = model_path
    if checkpoint is not None and any((checkpoint / name).is_file() for name in WEIGHT_FILES):
        weights, kwargs = str(checkpoint), {k: v for k, v in kwargs.items() if k != "revision"}
    model = AutoModelForImageTextToText.from_pretrained(
        weights, dtype=torch_dtype(model_args.dtype), trust_remote_code=trust_remote_code, **kwargs
    )
    return model, processor


def vision_tower(model: Any):
    """The vision encoder of a vision-language model (``model.visual`` for Qwen2.5-VL), or None."""
    for holder in (model, getattr(model, "model", None)):
        for name in VISION_TOWERS:
            module = getattr(holder, name, None) if holder is not None else None
            if module is not None:
                return module
    return None


def freeze_vision_tower(model: Any) -> int:
    """Freeze the vision encoder except its projector into the language model; return the frozen count."""
    tower = vision_tower(model)
    if tower is None:
        raise ConfigError(
            f"{type(model).__name__} has no vision tower ({', '.join(VISION_TOWERS)}) to freeze; "
            "set freeze_vision_tower: false in the recipe"
        )
    frozen = 0
    for name, param in tower.named_parameters():
        if name.split(".")[0] in PROJECTORS:
            continue
        param.requires_grad_(False)
        frozen += param.numel()
    log.info("froze %d vision-tower parameters (projector left trainable)", frozen)
    return frozen


def lora_config(model_args: Any, options: SFTOptions):
    """The LoRA config of the recipe (``use_peft``), or None; a frozen vision tower gets no adapters."""
    from trl import get_peft_config

    config = get_peft_config(model_args)
    if config is None:
        return None
    if config.target_modules is None:
        # The language model's attention and MLP projections (Qwen2 naming); the vision blocks use other names
        # for attention but share the MLP names, hence the exclusion below.
        config.target_modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    if options.freeze_vision_tower:
        config.exclude_modules = r".*\b(?:" + "|".join(VISION_TOWERS) + r")\b.*"
    return config


def parameter_counts(model: Any) -> dict[str, int]:
    """Total and trainable parameters (the full sizes under ZeRO-3, whose local tensors are empty)."""

    def size(p: Any) -> int:
        return int(getattr(p, "ds_numel", p.numel()))

    return {
        "total": sum(size(p) for p in model.parameters()),
        "trainable": sum(size(p) for p in model.parameters() if p.requires_grad),
    }


def save_trained_model(trainer: Any, processor: Any, out: Path, *, base_model: str, model_args: Any) -> None:
    """Save the weights and the processor to ``out``; a LoRA adapter is saved to ``out/adapter`` and merged."""
    from peft import PeftModel

    if isinstance(trainer.model, PeftModel):
        trainer.save_model(str(out / ADAPTER_DIR))
        trainer.accelerator.wait_for_everyone()
        if trainer.is_world_process_zero():
            merge_adapter(base_model, out / ADAPTER_DIR, out, model_args, trainer.args.trust_remote_code)
    else:
        trainer.save_model(str(out))
    if trainer.is_world_process_zero():
        processor.save_pretrained(str(out))


def merge_adapter(
    base_model: str, adapter_dir: Path, out: Path, model_args: Any, trust_remote_code: bool
) -> None:
    """Load the base model afresh, merge the adapter into it and save the full model to ``out``."""
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText

    base = AutoModelForImageTextToText.from_pretrained(
        base_model, dtype=torch_dtype(model_args.dtype), trust_remote_code=trust_remote_code
    )
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(str(out))
    log.info("merged the LoRA adapter of %s into %s", adapter_dir, out)


def render_model_card(context: dict[str, Any]) -> str:
    """The model card (README.md with the Hub YAML header) from ``cards/model.md.j2``."""
    from lbdata.templates import environment

    return environment("cards").get_template("model.md.j2").render(**context)


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"lbdata": __version__}
    for name in ("torch", "transformers", "trl", "accelerate", "peft", "deepspeed"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            continue
    return out


def write_run_files(
    out: Path,
    *,
    recipe: Recipe,
    record: dict[str, Any],
    metrics: dict[str, float],
    eval_command: str,
) -> dict[str, Any]:
    """Write ``train_config.yaml``, ``lbdata_train.json`` and the model card; return the run record."""
    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG_FILE).write_text(recipe.to_yaml(), encoding="utf-8")
    full = {
        **record,
        "recipe": recipe.source,
        "recipe_hash": recipe.recipe_hash,
        "metrics": metrics,
        "versions": _versions(),
    }
    (out / RUN_FILE).write_text(json.dumps(full, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    base = str(record["base_model"])
    context = {
        "r": full,
        "recipe_yaml": recipe.to_yaml().strip(),
        "base_model_is_hub_id": not Path(base).exists() and base.count("/") == 1,
        "eval_command": eval_command,
        "curve_file": CURVE_FILE if (out / CURVE_FILE).is_file() else None,
        "log_file": LOG_FILE if (out / LOG_FILE).is_file() else None,
    }
    (out / CARD_FILE).write_text(render_model_card(context), encoding="utf-8")
    return full
