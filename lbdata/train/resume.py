"""Resuming an interrupted training run from its last checkpoint in the output folder.

When training starts, ``lbdata_started.json`` in the output folder records which job it is: the kind,
the resolved data and config, and every recipe value (its ``identity``). The trainer writes
``checkpoint-<step>`` folders as the recipe says (``save_strategy``, ``save_steps``), and the finished run
writes ``lbdata_train.json``. Run again with the same ``--out``, the folder is one of:

- new, or holding no checkpoint: training starts at step 0;
- an interrupted run of the same job: it resumes from the last complete checkpoint (one that holds
  ``trainer_state.json``, which the trainer writes last), by itself or with ``--resume``;
- a finished run, or an interrupted run of another job: a one-line error; ``--overwrite`` starts over
  in that folder (its checkpoints and run files are deleted), or pass another ``--out``;
- checkpoints that no ``lbdata_started.json`` claims: ``--resume`` continues from them, ``--overwrite``
  starts over.

``--resume-from CHECKPOINT`` continues from a checkpoint folder given by path. The trainer restores the
weights, optimizer, scheduler, RNG state and step count (``Trainer.train(resume_from_checkpoint=…)``),
and ``TrainMonitor`` rebuilds the log of the steps before the checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

from lbdata.errors import ConfigError, UsageError
from lbdata.hashing import content_hash
from lbdata.train.common import CHECKPOINT_PREFIX, CURVE_FILE, LOG_FILE, RUN_FILE, STARTED_FILE

log = logging.getLogger(__name__)

LAST = "last"
"""``resume`` value for the last checkpoint in the output folder (``--resume``)."""
TRAINER_STATE = "trainer_state.json"
"""Written last into a checkpoint folder by the trainer: a checkpoint without it was cut off while saving."""
_CHECKPOINT = re.compile(rf"^{CHECKPOINT_PREFIX}(\d+)$")


def run_identity(kind: str, *, data: str, config: str, values: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """What makes two runs the same job: the kind, the resolved data and config, the recipe's values."""
    return {"kind": kind, "data": data, "config": config, **extra, "recipe": dict(values)}


def checkpoints(out: Path) -> list[Path]:
    """The trainer's ``checkpoint-<step>`` folders in ``out``, by step."""
    if not out.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in out.iterdir() if p.is_dir() and (m := _CHECKPOINT.match(p.name))]
    return [p for _, p in sorted(found)]


def last_checkpoint(out: Path) -> Path | None:
    """The checkpoint with the highest step that was saved whole, or None."""
    newer_cut: list[Path] = []
    for path in reversed(checkpoints(out)):
        if (path / TRAINER_STATE).is_file():
            for cut in newer_cut:
                log.warning("%s was cut off while saving (no %s); using %s", cut, TRAINER_STATE, path.name)
            return path
        newer_cut.append(path)
    return None


def checkpoint_step(checkpoint: Path) -> int:
    """The global step a checkpoint was saved at (from its ``trainer_state.json``)."""
    return int(json.loads((checkpoint / TRAINER_STATE).read_text(encoding="utf-8"))["global_step"])


def read_started(out: Path) -> dict[str, Any] | None:
    path = out / STARTED_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _differences(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """The top-level and recipe keys whose values differ between two identities."""
    keys = [k for k in sorted(set(before) | set(now)) if k != "recipe" and before.get(k) != now.get(k)]
    old, new = before.get("recipe", {}), now.get("recipe", {})
    return keys + [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]


def clear_run(out: Path) -> None:
    """Delete what a run left in ``out``: its checkpoints, run record, start record, log and curve."""
    for path in checkpoints(out):
        shutil.rmtree(path, ignore_errors=True)
    for name in (RUN_FILE, STARTED_FILE, LOG_FILE, CURVE_FILE):
        (out / name).unlink(missing_ok=True)


def _main_process() -> bool:
    """Whether this is the process that deletes files (rank 0, or the only process)."""
    return os.environ.get("RANK", "0") == "0"


def plan_resume(
    out: Path, identity: dict[str, Any], *, resume: str | None = None, overwrite: bool = False
) -> Path | None:
    """The checkpoint to resume from (None: start at step 0), or a ``UsageError`` / ``ConfigError`` that says
    what to pass instead. ``resume``: None (resume an interrupted run of the same job), ``"last"`` (the last
    checkpoint in ``out``, which must exist) or a checkpoint folder. ``overwrite`` clears ``out`` first."""
    kind = identity["kind"]
    if resume not in (None, LAST):
        explicit = Path(resume)
        if not (explicit / TRAINER_STATE).is_file():
            raise UsageError(f"--resume-from {resume}: not a checkpoint folder (no {TRAINER_STATE}); pass a "
                             f"{CHECKPOINT_PREFIX}N folder a run saved")
    if overwrite:
        if resume == LAST:
            raise UsageError("--resume and --overwrite contradict each other; pass one of them")
        if resume is not None and Path(resume).resolve().parent == out.resolve():
            raise UsageError(f"--overwrite would delete {resume}; copy it elsewhere or drop --overwrite")
        if _main_process():
            clear_run(out)
        return Path(resume) if resume else None
    again = f"pass --overwrite to start over in {out}, or another --out"
    if (out / RUN_FILE).is_file():
        raise ConfigError(f"{out} holds a finished {kind} run ({RUN_FILE}); {again}")
    last = last_checkpoint(out)
    started = read_started(out)
    if resume not in (None, LAST):
        return Path(resume)
    if last is not None and started is not None and started.get("identity") != content_hash(identity, 16):
        differs = _differences(started.get("job", {}), identity) or ["the job"]
        raise ConfigError(f"{out} holds an unfinished {started.get('job', {}).get('kind', kind)} run of another job "
                          f"(it differs in {', '.join(differs[:6])}); {again}")
    if last is not None and started is None and resume is None:
        raise ConfigError(f"{out} holds checkpoints ({last.name}) that no lbdata run claims; pass --resume to "
                          f"continue from {last.name}, or {again.removeprefix('pass ')}")
    if last is None and resume == LAST:
        raise UsageError(f"--resume: {out} holds no complete checkpoint to resume from; run without --resume "
                         "to start (checkpoints are saved as the recipe's save_strategy/save_steps say)")
    return last


def resume_option(resume: bool, resume_from: str | Path | None) -> str | None:
    """The ``resume`` value of ``--resume`` / ``--resume-from CHECKPOINT``."""
    if resume and resume_from:
        raise UsageError("pass --resume (the last checkpoint in --out) or --resume-from CHECKPOINT, not both")
    return str(resume_from) if resume_from else (LAST if resume else None)


def settle_resume(job: Any, out: Path, identity: dict[str, Any]) -> None:
    """Decide once, before any training process starts, where ``job`` starts: its ``resume`` becomes the
    checkpoint to resume from (or None), and an ``overwrite`` is done here, so no process repeats it."""
    checkpoint = plan_resume(out, identity, resume=job.resume, overwrite=job.overwrite)
    job.resume, job.overwrite = (str(checkpoint) if checkpoint else None), False


def mark_started(out: Path, identity: dict[str, Any], resumed_at: int | None) -> list[int]:
    """Write (or, on a resume, update) ``lbdata_started.json``; return every step the run resumed at."""
    before = read_started(out) if resumed_at is not None else None
    steps = [*(before or {}).get("resumed_at", []), *([resumed_at] if resumed_at is not None else [])]
    out.mkdir(parents=True, exist_ok=True)
    record = {"identity": content_hash(identity, 16), "job": identity, "resumed_at": steps}
    tmp = out / (STARTED_FILE + ".tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    tmp.replace(out / STARTED_FILE)
    return steps
