"""``lbdata train …``: ``tiny-model``, ``sft`` and ``grpo`` (in this process, or re-launched under accelerate)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lbdata.cli.options import HomeOpt, int64
from lbdata.cli.options import out as out_

train_app = typer.Typer(
    help="Train models on lbdata corpora (and build the tiny offline Qwen2.5-VL).", no_args_is_help=True
)


@train_app.command("tiny-model")
def train_tiny_model(
    out: Annotated[Path, typer.Option("--out", help="new or empty directory, or an earlier tiny model")],
    seed: Annotated[int, typer.Option(help="seed of the random weights; same seed, same files", callback=int64)] = 0,
) -> None:
    """Build a tiny random-weight Qwen2.5-VL with a local tokenizer and an image-only processor (offline)."""
    from lbdata.train.monitor import quiet_libraries
    from lbdata.train.tiny import build_tiny_model, parameter_count

    quiet_libraries()
    path = build_tiny_model(out, seed=seed)
    out_(f"wrote a tiny Qwen2.5-VL ({parameter_count(path):,} parameters) to {path}")


# --- train sft / grpo (lbdata.train.sft, lbdata.train.grpo) ---

RecipeOpt = Annotated[
    str | None, typer.Option("--recipe", help="recipe YAML file or built-in name (sft, grpo, tiny-sft, tiny-grpo)")
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="override a recipe key, KEY=VALUE (the value is read as YAML); repeatable"),
]
DeepSpeedOpt = Annotated[
    str | None,
    typer.Option("--deepspeed", help="zero2 | zero3 | zero3-offload | a DeepSpeed JSON file (launches accelerate)"),
]
NumProcessesOpt = Annotated[
    int | None,
    typer.Option("--num-processes", min=1, help="training processes; >1 launches accelerate (default: one per GPU)"),
]
LoraOpt = Annotated[bool, typer.Option("--lora", help="train a LoRA adapter (merged into the saved model)")]
VerboseOpt = Annotated[
    bool, typer.Option("--verbose", "-v", help="show the libraries' warnings and loading bars (hidden by default)")
]
TrainOutOpt = Annotated[Path | None, typer.Option("--out", help="output directory for the trained model")]
ResumeOpt = Annotated[bool, typer.Option(
    "--resume", help="resume from the last checkpoint in --out (an interrupted run of the same job resumes by itself)")]
ResumeFromOpt = Annotated[Path | None, typer.Option("--resume-from", help="resume from this checkpoint-N folder")]
OverwriteOpt = Annotated[bool, typer.Option(
    "--overwrite", help="start over in --out, deleting the checkpoints and run files of an earlier run there")]


def _train(kind: str, job, out_of) -> None:
    """Train in this process, or re-run under `accelerate launch` for several processes or DeepSpeed."""
    import json

    from lbdata.train.common import RUN_FILE
    from lbdata.train.launch import needs_launch, relaunch
    from lbdata.train.model import mixed_precision

    recipe, out = out_of(job)  # resolves and checks everything before a model loads or any process starts
    if needs_launch(job.num_processes, job.deepspeed):
        job.out = str(out)
        relaunch(kind, job.model_dump(), out, mixed_precision=mixed_precision(recipe.values))
        record = json.loads((out / RUN_FILE).read_text(encoding="utf-8"))
    else:
        from lbdata.train.grpo import train_grpo
        from lbdata.train.sft import train_sft

        result = (train_sft if kind == "sft" else train_grpo)(job)
        out, record = result.out, result.record
    from lbdata.render import render_trained

    out_(render_trained(record, out))


@train_app.command("sft")
def train_sft_command(
    corpus: Annotated[str, typer.Option("--corpus", help="corpus version NAME@VER (NAME@latest, or a version folder)")],
    model: Annotated[str | None, typer.Option("--model", help="base model directory or Hub id (else the recipe's)")]
    = None,
    config: Annotated[str, typer.Option("--config", help="corpus config: semantic_back | solution_back")]
    = "semantic_back",
    recipe: RecipeOpt = None,
    deepspeed: DeepSpeedOpt = None,
    num_processes: NumProcessesOpt = None,
    lora: LoraOpt = False,
    out: TrainOutOpt = None,
    set_: SetOpt = None,
    home: HomeOpt = None,
    verbose: VerboseOpt = False,
    resume: ResumeOpt = False,
    resume_from: ResumeFromOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Supervised fine-tuning on a corpus version (TRL SFTTrainer): assistant-turn loss, images never truncated."""
    from lbdata.corpus import resolve_version
    from lbdata.train.recipes import parse_overrides
    from lbdata.train.resume import resume_option, settle_resume
    from lbdata.train.sft import SFTJob, resolve_out, sft_identity, sft_recipe

    job = SFTJob(corpus=corpus, config=config, model=model, recipe=recipe, overrides=parse_overrides(set_ or []),
                 lora=lora, out=str(out) if out else None, home=str(home) if home else None, deepspeed=deepspeed,
                 num_processes=num_processes, verbose=verbose, resume=resume_option(resume, resume_from),
                 overwrite=overwrite)

    def out_of(job: SFTJob):
        from lbdata.train.launch import check_corpus_config, check_model_loads

        corpus_dir = resolve_version(job.corpus, job.home)
        job.corpus = str(corpus_dir.resolve())  # every process trains on this version, even if a newer one appears
        check_corpus_config(corpus_dir, job.config)
        recipe = sft_recipe(job)
        check_model_loads(str(recipe.values["model_name_or_path"]))
        out = resolve_out(job, corpus_dir).resolve()
        settle_resume(job, out, sft_identity(job, recipe, corpus_dir))
        return recipe, out

    _train("sft", job, out_of)


@train_app.command("grpo")
def train_grpo_command(
    data: Annotated[str, typer.Option("--data", help="corpus NAME@VER, or a source: hf:ID, jsonl:PATH, parquet:PATH")],
    model: Annotated[str | None, typer.Option("--model", help="model directory (usually the SFT output) or Hub id")]
    = None,
    config: Annotated[
        str | None, typer.Option("--config", help="corpus config / back variant (default: the recipe's variant)")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="at most N problems")] = None,
    recipe: RecipeOpt = None,
    deepspeed: DeepSpeedOpt = None,
    num_processes: NumProcessesOpt = None,
    lora: LoraOpt = False,
    out: TrainOutOpt = None,
    set_: SetOpt = None,
    home: HomeOpt = None,
    verbose: VerboseOpt = False,
    resume: ResumeOpt = False,
    resume_from: ResumeFromOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """GRPO with the accuracy and Look-Back format rewards (TRL GRPOTrainer); prompts carry the format instruction."""
    from lbdata.train.grpo import GRPOJob, grpo_identity, grpo_recipe, resolve_out
    from lbdata.train.recipes import parse_overrides
    from lbdata.train.resume import resume_option, settle_resume

    job = GRPOJob(data=data, config=config, limit=limit, model=model, recipe=recipe,
                  overrides=parse_overrides(set_ or []), lora=lora, out=str(out) if out else None,
                  home=str(home) if home else None, deepspeed=deepspeed, num_processes=num_processes, verbose=verbose,
                  resume=resume_option(resume, resume_from), overwrite=overwrite)

    def out_of(job: GRPOJob):
        from lbdata.corpus import resolve_version
        from lbdata.train.grpo import is_source_spec
        from lbdata.train.launch import check_corpus_config, check_model_loads

        r = grpo_recipe(job)
        if not is_source_spec(job.data):
            check_corpus_config(resolve_version(job.data, job.home), str(r.values.get("variant") or "semantic_back"))
        check_model_loads(str(r.values["model_name_or_path"]))
        out = resolve_out(job, str(r.values["model_name_or_path"])).resolve()
        settle_resume(job, out, grpo_identity(job, r))
        return r, out

    _train("grpo", job, out_of)
