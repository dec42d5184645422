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

from lbdata.errors import ConfigError, LbdataError
from lbdata.resources import resource_dir

log = logging.getLogger(__name__)

JOB_FILE = "lbdata_job.json"
LAUNCHED_ENV = "LBDATA_LAUNCHED"
"""Set in the processes ``relaunch`` starts (besides the launcher's own ``LOCAL_RANK``)."""


def in_launched_process() -> bool:
    """True inside a process started by accelerate/torchrun/deepspeed, or by ``relaunch``."""
    return "LOCAL_RANK" in os.environ or os.environ.get(LAUNCHED_ENV) == "1"


def needs_launch(num_processes: int | None, deepspeed: str | None) -> bool:
    """Whether a command must re-run itself under ``accelerate launch``."""
    return not in_launched_process() and ((num_processes or 1) > 1 or deepspeed is not None)


def deepspeed_config_path(name: str) -> Path:
    """``zero2``, ``zero3``, ``zero3-offload`` (``training/deepspeed/``) or the path of a DeepSpeed JSON file."""
    path = Path(name)
    if path.is_file():
        return path.resolve()
    builtin = resource_dir("training") / "deepspeed" / f"{name.removesuffix('.json')}.json"
    if builtin.is_file():
        return builtin.resolve()
    available = sorted(p.stem for p in (resource_dir("training") / "deepspeed").glob("*.json"))
    raise ConfigError(f"--deepspeed {name!r} is neither a file nor one of: {', '.join(available)}")


def zero_stage(config_path: Path) -> int:
    try:
        data = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read DeepSpeed config {config_path} ({exc}); fix or replace the file") from None
    return int(data.get("zero_optimization", {}).get("stage", 0))


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
