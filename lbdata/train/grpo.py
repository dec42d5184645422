"""``lbdata train grpo``: GRPO with TRL's ``GRPOTrainer`` and the Look-Back rewards.

The data is a corpus version (``NAME@VER``, one prompt per problem of its ``--config``) or any problem
source (``hf:…``, ``jsonl:…``, ``parquet:…``, ``synthetic``). Each row becomes a conversational prompt
whose user turn is the question followed by the variant's model-facing format instruction
(``lbdata.prompts.user_prompt``, the text the corpus and the evaluation use); TRL inserts the image
blocks for the row's ``images``. The other columns — ``solution`` and ``answer`` (gold), ``choices``,
``question``, ``variant``, ``meta`` — reach the rewards as keyword arguments. ``meta`` is the problem's
meta as JSON text (one column type for every source): for a synthetic problem it holds the scene
facts, so a rollout whose back contradicts the figure earns no format reward; a corpus row has no meta,
so a synthetic one's is drawn again from its id and kept only when the figure matches the row's image
(``lbdata.sources.synthetic.recover_meta``); other sources' rows have none. Rewards: ``accuracy_reward`` and
``look_back_format_reward`` (``lbdata.train.rewards``), weighted by the recipe's ``reward_weights``
(default 1.0 and 0.1). Generation uses transformers, or vLLM in colocate mode when the recipe says
``use_vllm: true`` (GPU machines only).
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from lbdata.errors import ConfigError, UsageError
from lbdata.train.common import TrainResult
from lbdata.train.model import (
    apply_device_defaults,
    attach_monitor,
    deepspeed_in_args,
    parameter_counts,
    start_run,
)
from lbdata.train.recipes import GRPOOptions, Recipe, load_recipe
from lbdata.train.resume import plan_resume, run_identity
from lbdata.train.rewards import ACCURACY_WEIGHT, FORMAT_WEIGHT

log = logging.getLogger(__name__)

SOURCE_PREFIXES = ("hf:", "jsonl:", "parquet:", "synthetic")
SOURCE_SEED = 0
"""Seed of the synthetic source when it is the GRPO data (as ``lbdata generate``'s default)."""


class GRPOJob(BaseModel):
    """Everything ``lbdata train grpo`` was asked to do (written to ``lbdata_job.json`` when it re-launches)."""

    model_config = ConfigDict(extra="forbid")

    data: str = Field(description="corpus version NAME@VER, or a source: hf:ID[@split], jsonl:PATH, parquet:PATH, synthetic")
    config: str | None = Field(
        default=None, description="corpus config / back variant (default: the recipe's variant, semantic_back)"
    )
    split: str = Field(default="train", description="corpus split to train on")
    limit: int | None = Field(default=None, ge=1, description="at most N problems (required for the endless synthetic source)")
    model: str | None = Field(default=None, description="model directory or Hub id, usually the SFT output")
    recipe: str | None = Field(default=None, description="recipe file or built-in name (default: grpo)")
    overrides: dict[str, Any] = Field(default_factory=dict, description="recipe keys set on the command line")
    lora: bool = Field(default=False, description="train a LoRA adapter (merged into the saved model)")
    out: str | None = Field(default=None, description="output directory (default: <home>/models/<model>-grpo)")
    home: str | None = Field(default=None, description="lbdata home holding the corpus")
    deepspeed: str | None = Field(default=None, description="zero2, zero3, zero3-offload or a DeepSpeed JSON file")
    num_processes: int | None = Field(default=None, ge=1, description="processes to launch (default: one per GPU)")
    verbose: bool = Field(default=False, description="show the libraries' warnings and loading bars")
    resume: str | None = Field(default=None, description="'last' (the last checkpoint in out) or a checkpoint "
                               "folder; an interrupted run of the same job in out resumes without it")
    overwrite: bool = Field(default=False, description="start over in out, deleting an earlier run's checkpoints")


# ---------------------------------------------------------------------------- resolution (no torch)


def grpo_recipe(job: GRPOJob) -> Recipe:
    """The job's recipe with overrides, default reward weights, and the vLLM switch checked."""
    overrides = dict(job.overrides)
    if job.lora:
        overrides["use_peft"] = True
    if job.model:
        overrides["model_name_or_path"] = job.model
    if job.config:
        overrides["variant"] = job.config
    recipe = load_recipe(job.recipe, "grpo", overrides)
    recipe.values.setdefault("reward_weights", [ACCURACY_WEIGHT, FORMAT_WEIGHT])
    if len(recipe.values["reward_weights"]) != 2:
        raise ConfigError(
            f"reward_weights must have two values (accuracy, format), got {recipe.values['reward_weights']}"
        )
    if not recipe.values.get("model_name_or_path"):
        raise ConfigError(f"no model: pass --model PATH (the SFT output) or set model_name_or_path in {recipe.source}")
    if recipe.values.get("use_vllm"):
        import importlib.util

        import torch

        if not torch.cuda.is_available():
            raise ConfigError("use_vllm needs a GPU; on CPU pass --set use_vllm=false (or use --recipe tiny-grpo)")
        if importlib.util.find_spec("vllm") is None:
            raise ConfigError("use_vllm is set but vllm is not installed; pip install vllm, or --set use_vllm=false")
    return recipe


def is_source_spec(spec: str) -> bool:
    """A problem-source spec rather than a corpus version (a folder with manifest.json is a corpus)."""
    if spec.startswith(SOURCE_PREFIXES):
        return True
    path = Path(spec)
    return path.is_dir() and not (path / "manifest.json").exists()


def grpo_identity(job: GRPOJob, recipe: Recipe) -> dict[str, Any]:
    """What makes two GRPO runs the same job (``lbdata.train.resume``); ``recipe`` before device defaults."""
    from lbdata.records import parse_variant

    data = job.data
    if not is_source_spec(data):
        from lbdata.corpus import resolve_version

        data = str(resolve_version(data, job.home).resolve())
    variant = parse_variant(recipe.options.variant)  # type: ignore[attr-defined]
    return run_identity("grpo", data=data, config=variant, values=recipe.values, split=job.split, limit=job.limit)


def resolve_out(job: GRPOJob, model_path: str) -> Path:
    if job.out:
        return Path(job.out)
    from lbdata.workspace import home_dir

    name = Path(model_path.rstrip("/")).name or "model"
    return home_dir(job.home) / "models" / f"{name}-grpo"


# ---------------------------------------------------------------------------- data


def prompt_row(question: str, answer: str, choices: list[str] | None, variant: str, problem_id: str,
               meta: str | None = None) -> dict[str, Any]:
    """One GRPO row without its images: the conversational prompt and the columns the rewards read
    (``meta``: the problem's meta as JSON text, see ``meta_column``)."""
    from lbdata.prompts import user_prompt

    return {
        "problem_id": problem_id,
        "prompt": [{"role": "user", "content": user_prompt(question, variant)}],
        "question": question,
        "answer": answer,
        "solution": answer,
        "choices": list(choices) if choices else None,
        "variant": variant,
        "meta": meta,
    }


def grpo_features():
    from datasets import Features, Image, List, Value

    return Features(
        {
            "problem_id": Value("string"),
            "prompt": List({"role": Value("string"), "content": Value("string")}),
            "question": Value("string"),
            "answer": Value("string"),
            "solution": Value("string"),
            "choices": List(Value("string")),
            "variant": Value("string"),
            "meta": Value("string"),
            "images": List(Image()),
        }
    )


def load_grpo_data(
    spec: str, *, variant: str, split: str = "train", limit: int | None = None, home: str | None = None
) -> tuple[Any, dict[str, Any]]:
    """The GRPO dataset of a corpus version or a source, and what was read (rows, skipped by reason)."""
    from datasets import Dataset

    if is_source_spec(spec):
        from lbdata.records import BadRow
        from lbdata.sources import load_source
        from lbdata.sources.synthetic import meta_column

        if spec.startswith("synthetic") and limit is None:
            raise UsageError("the synthetic source is endless; pass --limit N")
        source = load_source(spec, seed=SOURCE_SEED)
        rows: list[dict[str, Any]] = []
        skipped: Counter[str] = Counter()
        for item in source:
            if limit is not None and len(rows) >= limit:
                break
            if isinstance(item, BadRow):
                skipped[item.reason] += 1
                continue
            p = item.problem
            row = prompt_row(p.question, p.answer, p.choices, variant, p.id, meta_column(p.meta))
            row["images"] = [{"bytes": blob, "path": None} for blob in item.images]
            rows.append(row)
        if skipped:
            log.warning("skipped %d rows of %s: %s", sum(skipped.values()), spec, dict(skipped))
        ds = Dataset.from_list(rows, features=grpo_features())
        return ds, {"data": spec, "rows": len(ds), "skipped": dict(skipped)}

    from lbdata.corpus import load_corpus, read_manifest, resolve_version

    corpus_dir = resolve_version(spec, home)
    manifest = read_manifest(str(corpus_dir))
    ds = load_corpus(str(corpus_dir), config=variant, split=split)
    seen: set[str] = set()
    keep = []
    for i, pid in enumerate(ds["problem_id"]):
        if pid not in seen:
            seen.add(pid)
            keep.append(i)
    ds = ds.select(keep[:limit] if limit is not None else keep)
    metas = corpus_metas(ds)
    ds = ds.map(
        lambda r, i: prompt_row(r["question"], r["answer"], r["choices"], variant, r["problem_id"], metas[i]),
        with_indices=True,
        remove_columns=[c for c in ds.column_names if c not in ("images",)],
        features=grpo_features(),
    )
    info = {"data": f"{manifest['name']}@{manifest['version']}", "corpus_version": manifest["version"],
            "rows": len(ds), "skipped": {}}
    return ds, info


def corpus_metas(ds: Any) -> list[str | None]:
    """The meta column of corpus rows (which carry none): a synthetic problem's meta drawn again from its id
    when the figure matches the row's first image, else None."""
    from datasets import Image, List

    from lbdata.sources.synthetic import meta_column, recover_meta

    if not any(pid.startswith("synthetic:") for pid in ds["problem_id"]):
        return [None] * len(ds)
    raw = ds.select_columns(["problem_id", "images"]).cast_column("images", List(Image(decode=False)))
    return [meta_column(recover_meta(r["problem_id"], r["images"][0]["bytes"] if r["images"] else None))
            for r in raw]


# ---------------------------------------------------------------------------- train


def grpo_rewards(options: GRPOOptions, variant: str) -> list[Any]:
    """The accuracy reward and the format reward the options ask for, under the options' validator thresholds."""
    from lbdata.train.rewards import AccuracyReward, LookBackFormatReward, RegexFormatReward
    from lbdata.validate import ValidationConfig

    validation = ValidationConfig.from_yaml(options.validation_config) if options.validation_config else ValidationConfig()
    format_reward = (
        RegexFormatReward() if options.format_reward == "regex" else LookBackFormatReward(variant, validation)
    )
    return [AccuracyReward(timeout_s=validation.answer_timeout_s), format_reward]


def last_reward_metrics(log_history: list[dict[str, Any]]) -> dict[str, float]:
    """The last logged value of every reward statistic (``rewards/…``, ``reward``, ``look_back/…``)."""
    metrics: dict[str, float] = {}
    for entry in log_history:
        for key, value in entry.items():
            if key.startswith(("rewards/", "reward", "look_back/")) and isinstance(value, int | float):
                metrics[key] = float(value)
    return metrics


def _run_record(job: GRPOJob, trainer: Any, info: dict[str, Any], *, base_model: str, variant: str, peft: Any,
                options: GRPOOptions, resumed_at: Any, args: Any, rewards: list[Any]) -> dict[str, Any]:
    """What ``lbdata_train.json`` says about a GRPO run (metrics and files are added by ``write_run_files``)."""
    return {
        "kind": "grpo",
        "base_model": base_model,
        "data": info["data"],
        "corpus_version": info.get("corpus_version"),
        "config": variant,
        "rows": {"train": info["rows"], "dropped": sum(info["skipped"].values()),
                 "dropped_reason": ", ".join(f"{k}={v}" for k, v in info["skipped"].items()) or "-"},
        "lora": peft is not None,
        "freeze_vision_tower": options.freeze_vision_tower,
        "parameters": parameter_counts(trainer.model),
        "global_step": trainer.state.global_step,
        "resumed_at": resumed_at,
        "processes": trainer.accelerator.num_processes,
        "deepspeed": job.deepspeed,
        "reward_weights": list(args.reward_weights),
        "rewards": [r.__name__ for r in rewards],
    }


def train_grpo(job: GRPOJob) -> TrainResult:
    """GRPO from ``job.model`` on ``job.data`` with the accuracy and Look-Back format rewards."""
    from lbdata.train.monitor import quiet_libraries

    quiet_libraries(job.verbose)
    from trl import GRPOTrainer

    from lbdata.records import parse_variant
    from lbdata.train.model import (
        check_model_dir,
        freeze_vision_tower,
        load_model_and_processor,
        lora_config,
        save_trained_model,
        write_run_files,
    )
    from lbdata.train.recipes import recipe_configs

    # recipe
    recipe = grpo_recipe(job)
    options: GRPOOptions = recipe.options  # type: ignore[assignment]
    variant = parse_variant(options.variant)
    rewards = grpo_rewards(options, variant)
    base_model = check_model_dir(recipe.values["model_name_or_path"])
    out = resolve_out(job, base_model)
    identity = grpo_identity(job, recipe)
    checkpoint = plan_resume(out, identity, resume=job.resume, overwrite=job.overwrite)
    apply_device_defaults(recipe)
    args, model_args, _ = recipe_configs(recipe, output_dir=str(out), deepspeed=deepspeed_in_args(job))

    # data, model, rewards
    train, info = load_grpo_data(job.data, variant=variant, split=job.split, limit=job.limit, home=job.home)
    if len(train) == 0:
        raise ConfigError(f"{job.data} gave no problems to train on")
    model, processor = load_model_and_processor(
        base_model, model_args, options, trust_remote_code=args.trust_remote_code, checkpoint=checkpoint
    )
    # GRPOTrainer left-pads the prompt ids itself but takes mm_token_type_ids from the processor as it pads;
    # a right-padding processor misaligns them for prompts of different lengths (wrong M-RoPE positions, or
    # a shape error in the loss). TRL loads its own processor with padding_side="left"; ours must match.
    processor.tokenizer.padding_side = "left"
    if options.freeze_vision_tower:
        freeze_vision_tower(model)
    peft = lora_config(model_args, options)

    # trainer
    trainer = GRPOTrainer(
        model=model, reward_funcs=rewards, args=args, train_dataset=train, processing_class=processor,
        peft_config=peft,
    )
    attach_monitor(trainer, out, "grpo", recipe)
    resumed_at = start_run(trainer, out, identity, checkpoint)
    result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    metrics = {k: float(v) for k, v in result.metrics.items() if isinstance(v, int | float)}
    metrics.update(last_reward_metrics(trainer.state.log_history))

    # save
    save_trained_model(trainer, processor, out, base_model=base_model, model_args=model_args)
    record = _run_record(job, trainer, info, base_model=base_model, variant=variant, peft=peft, options=options,
                         resumed_at=resumed_at, args=args, rewards=rewards)
    if trainer.is_world_process_zero():
        record = write_run_files(
            out, recipe=recipe, record=record, metrics=metrics,
            eval_command=f"lbdata eval --model {out} --data synthetic --limit 100 --variant {variant.removesuffix('_back')}",
        )
    trainer.accelerator.wait_for_everyone()
    return TrainResult(out=out, metrics=metrics, record=record)
