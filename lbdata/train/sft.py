"""``lbdata train sft``: supervised fine-tuning on a corpus version with TRL's ``SFTTrainer``.

One linear run, as open-r1's scripts: recipe → data → model → trainer → train → save. The corpus rows'
``messages`` (TRL conversational form, typed content blocks, one image block per image) and ``images``
go to ``SFTTrainer`` as they are; the loss covers the assistant turn only (``assistant_only_loss``:
the tiny model's chat template carries ``{% generation %}`` markers, and TRL swaps in a marked template
for the Qwen2.5-VL family); ``max_length`` defaults to None so image tokens are never truncated (a
recipe that sets it drops the longer rows, counted, instead of cutting them); the vision tower is
frozen unless the recipe says ``freeze_vision_tower: false``. The output directory holds the model, the
processor, the resolved recipe, the run record and a model card (see ``lbdata.train.model``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from lbdata.errors import ConfigError
from lbdata.train.common import TrainResult
from lbdata.train.model import apply_device_defaults, attach_monitor, deepspeed_in_args, start_run
from lbdata.train.recipes import Recipe, load_recipe
from lbdata.train.resume import plan_resume, run_identity

log = logging.getLogger(__name__)


class SFTJob(BaseModel):
    """Everything ``lbdata train sft`` was asked to do (written to ``lbdata_job.json`` when it re-launches)."""

    model_config = ConfigDict(extra="forbid")

    corpus: str = Field(description="corpus version NAME@VER (a unique prefix will do), NAME@latest or a version folder")
    config: str = Field(default="semantic_back", description="corpus config: semantic_back or solution_back")
    model: str | None = Field(default=None, description="base model directory or Hub id (else the recipe's model_name_or_path)")
    recipe: str | None = Field(default=None, description="recipe file or built-in name (default: sft)")
    overrides: dict[str, Any] = Field(default_factory=dict, description="recipe keys set on the command line")
    lora: bool = Field(default=False, description="train a LoRA adapter (merged into the saved model)")
    out: str | None = Field(default=None, description="output directory (default: <home>/models/<corpus>-<version>-<config>-sft)")
    home: str | None = Field(default=None, description="lbdata home holding the corpus")
    deepspeed: str | None = Field(default=None, description="zero2, zero3, zero3-offload or a DeepSpeed JSON file")
    num_processes: int | None = Field(default=None, ge=1, description="processes to launch (default: one per GPU)")
    verbose: bool = Field(default=False, description="show the libraries' warnings and loading bars")
    resume: str | None = Field(default=None, description="'last' (the last checkpoint in out) or a checkpoint "
                               "folder; an interrupted run of the same job in out resumes without it")
    overwrite: bool = Field(default=False, description="start over in out, deleting an earlier run's checkpoints")


# ---------------------------------------------------------------------------- resolution (no torch)


def sft_recipe(job: SFTJob) -> Recipe:
    """The job's recipe with its command-line overrides and SFT's safe defaults for vision data."""
    overrides = dict(job.overrides)
    if job.lora:
        overrides["use_peft"] = True
    if job.model:
        overrides["model_name_or_path"] = job.model
    recipe = load_recipe(job.recipe, "sft", overrides)
    recipe.values.setdefault("max_length", None)  # TRL's default 1024 would cut image tokens
    recipe.values.setdefault("assistant_only_loss", True)
    if not recipe.values.get("model_name_or_path"):
        raise ConfigError(f"no model: pass --model PATH or set model_name_or_path in {recipe.source}")
    return recipe


def sft_identity(job: SFTJob, recipe: Recipe, corpus_dir: Path) -> dict[str, Any]:
    """What makes two SFT runs the same job (``lbdata.train.resume``); ``recipe`` before device defaults."""
    from lbdata.records import parse_variant

    return run_identity("sft", data=str(corpus_dir.resolve()), config=parse_variant(job.config), values=recipe.values)


def resolve_out(job: SFTJob, corpus_dir: Path) -> Path:
    if job.out:
        return Path(job.out)
    from lbdata.records import parse_variant
    from lbdata.workspace import home_dir

    name, version = corpus_dir.parent.name, corpus_dir.name
    return home_dir(job.home) / "models" / f"{name}-{version}-{parse_variant(job.config)}-sft"


# ---------------------------------------------------------------------------- data


def sequence_length(example: dict[str, Any], processor: Any) -> int:
    """Tokens of one conversation after the chat template, image tokens counted as the processor expands them."""
    tokenizer = processor.tokenizer
    text = processor.apply_chat_template(example["messages"], tokenize=False)
    n = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    images = example.get("images") or []
    if images:
        sizes = [(im.height, im.width) for im in images]
        per_image = processor._get_num_multimodal_tokens(image_sizes=sizes)["num_image_tokens"]
        n += sum(per_image) - len(images)  # each image placeholder token becomes per_image tokens
    return n


def load_sft_data(corpus_dir: Path, config: str, split: str, processor: Any, max_length: int | None):
    """Rows ``messages`` + ``images`` of one split; with ``max_length`` the longer rows are dropped and counted."""
    from lbdata.corpus import load_corpus

    ds = load_corpus(str(corpus_dir), config=config, split=split).select_columns(["messages", "images"])
    dropped = 0
    if max_length is not None:
        before = len(ds)
        ds = ds.filter(lambda ex: sequence_length(ex, processor) <= max_length)
        dropped = before - len(ds)
        if dropped:
            log.warning("dropped %d of %d %s rows longer than max_length=%d", dropped, before, split, max_length)
    return ds, dropped


# ---------------------------------------------------------------------------- train


@dataclass
class SFTRun:
    """A prepared SFT run: the trainer (model, data, collator) and what the run record needs."""

    trainer: Any
    processor: Any
    recipe: Recipe
    out: Path
    base_model: str
    model_args: Any
    record: dict[str, Any]
    identity: dict[str, Any]
    checkpoint: Path | None = None
    """The checkpoint training resumes from (None: from step 0)."""


def prepare_sft(job: SFTJob) -> SFTRun:
    """Resolve the recipe, load the corpus and the model, and build the ``SFTTrainer`` (nothing trained yet)."""
    from lbdata.train.monitor import quiet_libraries

    quiet_libraries(job.verbose)
    from trl import SFTTrainer

    from lbdata.corpus import read_manifest, resolve_version
    from lbdata.records import parse_variant
    from lbdata.train.model import check_model_dir, freeze_vision_tower, load_model_and_processor, lora_config
    from lbdata.train.recipes import recipe_configs

    # recipe
    recipe = sft_recipe(job)
    options = recipe.options
    config = parse_variant(job.config)
    corpus_dir = resolve_version(job.corpus, job.home)
    manifest = read_manifest(str(corpus_dir))
    out = resolve_out(job, corpus_dir)
    identity = sft_identity(job, recipe, corpus_dir)
    checkpoint = plan_resume(out, identity, resume=job.resume, overwrite=job.overwrite)
    apply_device_defaults(recipe)
    args, model_args, _ = recipe_configs(recipe, output_dir=str(out), deepspeed=deepspeed_in_args(job))
    base_model = check_model_dir(model_args.model_name_or_path)

    # model and data
    model, processor = load_model_and_processor(
        base_model, model_args, options, trust_remote_code=args.trust_remote_code, checkpoint=checkpoint
    )
    train, dropped = load_sft_data(corpus_dir, config, "train", processor, args.max_length)
    if len(train) == 0:
        raise ConfigError(f"{job.corpus} has no {config}/train rows to train on (after the max_length filter)")
    has_test = manifest["counts"].get(config, {}).get("test", {}).get("rows", 0) > 0
    test = load_sft_data(corpus_dir, config, "test", processor, args.max_length)[0] if has_test else None
    if options.freeze_vision_tower:
        freeze_vision_tower(model)
    peft = lora_config(model_args, options)

    # trainer
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=test if test is not None and len(test) else None,
        processing_class=processor,
        peft_config=peft,
    )
    attach_monitor(trainer, out, "sft", recipe)
    record: dict[str, Any] = {
        "kind": "sft",
        "base_model": base_model,
        "data": f"{manifest['name']}@{manifest['version']}",
        "corpus_version": manifest["version"],
        "config": config,
        "rows": {"train": len(train), "test": len(test) if test is not None else 0, "dropped": dropped,
                 "dropped_reason": f"longer than max_length={args.max_length}"},
        "lora": peft is not None,
        "freeze_vision_tower": options.freeze_vision_tower,
        "processes": trainer.accelerator.num_processes,
        "deepspeed": job.deepspeed,
        "assistant_only_loss": args.assistant_only_loss,
    }
    return SFTRun(trainer, processor, recipe, out, base_model, model_args, record, identity, checkpoint)


def train_sft(job: SFTJob) -> TrainResult:
    """Fine-tune ``job.model`` on the corpus' ``messages`` + ``images``; write the model directory."""
    from lbdata.train.model import parameter_counts, save_trained_model, write_run_files

    run = prepare_sft(job)
    trainer = run.trainer
    resumed_at = start_run(trainer, run.out, run.identity, run.checkpoint)
    result = trainer.train(resume_from_checkpoint=str(run.checkpoint) if run.checkpoint else None)
    metrics = {k: float(v) for k, v in result.metrics.items() if isinstance(v, int | float)}
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    if losses:
        metrics["first_logged_loss"], metrics["last_logged_loss"] = float(losses[0]), float(losses[-1])
    if trainer.eval_dataset is not None:
        metrics.update({k: float(v) for k, v in trainer.evaluate().items() if isinstance(v, int | float)})

    save_trained_model(trainer, run.processor, run.out, base_model=run.base_model, model_args=run.model_args)
    record = {**run.record, "parameters": parameter_counts(trainer.model), "global_step": trainer.state.global_step,
              "resumed_at": resumed_at}
    if trainer.is_world_process_zero():
        short = record["config"].removesuffix("_back")
        record = write_run_files(
            run.out, recipe=run.recipe, record=record, metrics=metrics,
            eval_command=f"lbdata eval --model {run.out} --data synthetic --limit 100 --variant {short}",
        )
    trainer.accelerator.wait_for_everyone()
    return TrainResult(out=run.out, metrics=metrics, record=record)
