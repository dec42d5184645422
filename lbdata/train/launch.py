"""Several processes and DeepSpeed through ``accelerate launch`` (no launcher of our own).

``lbdata train sft|grpo --num-processes N [--deepspeed zero2|zero3|zero3-offload|PATH]`` writes the job
(every option of the command) to ``<out>/lbdata_job.json`` and re-runs itself as::

    python -m accelerate.commands.launch --num_processes N [--use_deepspeed --deepspeed_config_file F]
        -m lbdata.train.launch <out>/lbdata_job.json

Each process then reads the job and trains in place. A process started by a launcher (``accelerate
launch``, ``torchrun``, ``deepspeed``: ``LOCAL_RANK`` is set) never re-launches, so several nodes are
run the usual way, with accelerate's own config and flags on every node::

    accelerate launch --config_file training/accelerate/multi-node-zero3.yaml \\
        --machine_rank $RANK --main_process_ip $MASTER -m lbdata.cli train sft --corpus … --model …

On a machine without a GPU the processes talk over gloo (accelerate's MULTI_CPU, or DeepSpeed's CPU
accelerator) and the trainer runs with ``use_cpu=True``.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from lbdata.errors import ConfigError, LbdataError, UsageError
from lbdata.train.common import JOB_FILE, WEIGHT_FILES, deepspeed_config_path, zero_stage

log = logging.getLogger(__name__)

LAUNCHED_ENV = "LBDATA_LAUNCHED"
"""Set in the processes ``relaunch`` starts (besides the launcher's own ``LOCAL_RANK``)."""


def in_launched_process() -> bool:
    """True inside a process started by accelerate/torchrun/deepspeed, or by ``relaunch``."""
    return "LOCAL_RANK" in os.environ or os.environ.get(LAUNCHED_ENV) == "1"


def needs_launch(num_processes: int | None, deepspeed: str | None) -> bool:
    """Whether a command must re-run itself under ``accelerate launch``."""
    return not in_launched_process() and ((num_processes or 1) > 1 or deepspeed is not None)


def default_num_processes() -> int:
    """One process per visible GPU, or one on a machine without a GPU."""
    import torch

    return max(1, torch.cuda.device_count())


def accelerate_command(
    job_file: Path, *, num_processes: int, deepspeed: Path | None, mixed_precision: str
) -> list[str]:
    """The ``accelerate launch`` command line that runs ``job_file`` in ``num_processes`` processes."""
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--num_processes", str(num_processes),
        "--num_machines", "1",
        "--mixed_precision", mixed_precision,
        "--dynamo_backend", "no",
    ]
    if deepspeed is not None:
        cmd += ["--use_deepspeed", "--deepspeed_config_file", str(deepspeed)]
        if zero_stage(deepspeed) == 3:
            cmd += ["--zero3_init_flag", "true"]
    elif num_processes > 1:
        cmd += ["--multi_gpu"]  # accelerate's multi-process launcher; gloo on a machine without GPUs
    cmd += ["-m", "lbdata.train.launch", str(job_file)]
    return cmd


def relaunch(kind: str, job: dict[str, Any], out: Path, *, mixed_precision: str) -> None:
    """Write the job to ``out`` and run it under ``accelerate launch``; raise when the processes fail."""
    num_processes = job.get("num_processes") or default_num_processes()
    deepspeed = deepspeed_config_path(job["deepspeed"]) if job.get("deepspeed") else None
    out.mkdir(parents=True, exist_ok=True)
    job_file = out / JOB_FILE
    job_file.write_text(json.dumps({"kind": kind, "job": job}, indent=2, default=str) + "\n", encoding="utf-8")
    cmd = accelerate_command(job_file, num_processes=num_processes, deepspeed=deepspeed,
                             mixed_precision=mixed_precision)
    log.info("launching: %s", " ".join(cmd))
    env = {**os.environ, LAUNCHED_ENV: "1"}
    result = subprocess.run(cmd, env=env, check=False)
    if result.returncode != 0:
        raise LbdataError(
            f"`accelerate launch` of {kind} with {num_processes} processes exited with {result.returncode}; "
            "its log is above (run with LBDATA_LOG_LEVEL=INFO for more)"
        )


# ---------------------------------------------------------------------------- checks before any process starts


def check_corpus_config(corpus_dir: Path, config: str, split: str = "train") -> None:
    """Fail with one line unless the corpus version has rows of ``config`` in ``split`` (reads the manifest only)."""
    from lbdata.corpus import read_manifest
    from lbdata.records import parse_variant

    manifest = read_manifest(str(corpus_dir))
    config = parse_variant(config)
    if manifest["counts"].get(config, {}).get(split, {}).get("rows", 0) > 0:
        return
    have = [c for c, per in manifest["counts"].items() if per.get(split, {}).get("rows", 0) > 0]
    label = f"{manifest['name']}@{manifest['version']}"
    fix = (f"pass --config {' or '.join(have)}, or " if have else "") + \
        f"build a version with --variant {config.removesuffix('_back')}"
    raise ConfigError(f"{label} has no {config} {split} rows (it has {', '.join(have) or 'none'}); {fix}")


def check_model_loads(model: str) -> None:
    """Fail with one line unless ``model`` can be loaded: a local folder with a readable config, weights and an
    image processor, or a Hub id that is cached or reachable. Reads no weights; starts no process."""
    path = Path(model)
    if not path.exists():
        looks_like_path = model.startswith((".", "/", "~")) or model.count("/") != 1
        if looks_like_path:
            raise UsageError(f"no model folder at {model!r}; pass --model with a checkpoint folder (config.json, "
                             "weights, processor) or a Hub id ORG/NAME")
        _check_hub_model(model)
        return
    if not (path / "config.json").is_file():
        raise UsageError(f"{path} is not a model folder (no config.json); pass a checkpoint folder or a Hub id")
    if not any((path / name).is_file() for name in WEIGHT_FILES):
        raise UsageError(f"{path} has no weights ({', '.join(WEIGHT_FILES)}); pass a complete checkpoint folder "
                         "(a LoRA adapter folder is not one: train with --lora to get a merged model)")
    from transformers import AutoConfig

    from lbdata.train.processor import load_processor

    try:
        AutoConfig.from_pretrained(str(path))
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"cannot read the model config in {path} ({exc}); fix or replace config.json") from None
    try:
        load_processor(path)
    except LbdataError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot load the processor of {path} ({type(exc).__name__}: {exc}); the folder needs "
                          "the tokenizer and image processor files saved with the model") from None


def _check_hub_model(repo_id: str) -> None:
    from huggingface_hub import try_to_load_from_cache

    from lbdata.sources.offline import check_hub_reachable, hub_offline, no_hub_message

    if isinstance(try_to_load_from_cache(repo_id, "config.json"), str):
        return
    local = "pass --model with a local checkpoint folder"
    if hub_offline():
        raise UsageError(no_hub_message(repo_id, "no config.json cached", what=f"model {repo_id}", alternatives=local))
    check_hub_reachable(repo_id, what=f"model {repo_id} (no local folder has that name)", alternatives=local)


def run_job_file(path: str | Path) -> None:
    """Run a job written by ``relaunch`` in this process (one of the launched processes)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    kind = data["kind"]
    if kind == "sft":
        from lbdata.train.sft import SFTJob, train_sft

        train_sft(SFTJob(**data["job"]))
    elif kind == "grpo":
        from lbdata.train.grpo import GRPOJob, train_grpo

        train_grpo(GRPOJob(**data["job"]))
    else:
        raise ConfigError(f"{path}: unknown job kind {kind!r}")


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.exit("usage: python -m lbdata.train.launch JOB.json (written by lbdata train sft|grpo)")
    logging.basicConfig(
        level=os.environ.get("LBDATA_LOG_LEVEL", "WARNING").upper(),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        run_job_file(args[0])
    except LbdataError as exc:
        if os.environ.get("LBDATA_DEBUG") == "1":
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
