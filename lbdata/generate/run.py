"""``generate(config, run_dir)``: check the settings, open (or resume) the run, and drive the engine."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from lbdata import __version__
from lbdata.errors import UsageError
from lbdata.generate.config import GenerateConfig
from lbdata.generate.engine import Engine
from lbdata.generate.summary import GenerateSummary
from lbdata.ledger import Ledger
from lbdata.secrets import redact
from lbdata.sources import load_source
from lbdata.sources.base import Source
from lbdata.teachers import load_teacher
from lbdata.teachers.base import Teacher
from lbdata.workspace import RunLock

log = logging.getLogger(__name__)


def check_scene_source(config: GenerateConfig) -> None:
    """The scene teacher writes only from the synthetic source's scene facts: refuse any other source up front."""
    if config.teacher == "scene" and config.source.strip().split(":", 1)[0] != "synthetic":
        raise UsageError(
            f"the scene teacher writes traces from the synthetic source's scene facts, which {config.source!r} does "
            "not have; pass --teacher gpt-4o, or --teacher openai:MODEL --base-url URL for a local server"
        )


def check_config(config: GenerateConfig) -> None:
    if config.mode == "insert":
        if config.teacher == "scene":
            raise UsageError("the scene teacher writes whole traces; use --mode write or an OpenAI-compatible teacher")
        if "plain" in config.variants:
            raise UsageError("insert mode places <back> segments, and plain traces have none; drop plain from --variant")
        if not config.base_traces and "trace" not in config.columns:
            raise UsageError("insert mode needs base traces: pass --base-traces FILE.jsonl or --trace-col COLUMN")
    elif config.base_traces:
        raise UsageError("--base-traces is for insert mode; add --mode insert")


def open_source(config: GenerateConfig) -> Source:
    return load_source(config.source, seed=config.seed, columns=config.columns or None,
                       image_roots=config.image_roots, max_image_pixels=config.max_image_pixels)


def open_teacher(config: GenerateConfig, teacher: Teacher | None, api_key: str | None) -> Teacher:
    if teacher is not None:
        return teacher
    secrets = {"api_key": api_key} if api_key else {}
    try:
        return load_teacher(config.teacher, **config.teacher_options, **secrets)
    except TypeError as exc:
        names = sorted([*config.teacher_options, *secrets])
        raise UsageError(
            f"teacher {config.teacher!r} does not take the option(s) {', '.join(names)} ({exc}); "
            "drop them or pick an OpenAI-compatible teacher (gpt-4o, openai:MODEL)"
        ) from None


def generate(
    config: GenerateConfig,
    run_dir: str | Path,
    *,
    teacher: Teacher | None = None,
    progress: bool = False,
    api_key: str | None = None,
    wait: bool = False,
) -> GenerateSummary:
    """Generate traces for ``config`` into ``run_dir`` (created or resumed). Returns a summary.

    One writer per run: another ``generate`` on the same run raises ``RunBusy`` naming it, or with
    ``wait=True`` this one waits for it to finish.

    Raises ``BudgetExceeded`` after a clean stop at the budget, and ``TeacherError`` when the teacher
    cannot be used at all (bad key, unknown model); everything written so far stays in the ledger.
    ``api_key`` goes to the teacher only: it is never written anywhere.
    """
    started = time.perf_counter()
    check_config(config)
    source = open_source(config)
    check_scene_source(config)
    teacher = open_teacher(config, teacher, api_key)
    with Ledger.create(run_dir) as ledger, RunLock(ledger.run_dir, wait=wait, on_wait=_tell_waiting):
        ledger.sweep_partial_images()  # this process holds the run's lock: any other writer is gone
        previous = ledger.read_config()
        if previous and previous.get("identity") not in (None, redact(config.identity())):
            raise UsageError(
                f"run {ledger.run_dir} was made with other settings; pass a new --run NAME "
                "or repeat the settings it was made with (see its config.json)"
            )
        ledger.write_config(redact({"identity": config.identity(), "config": config.model_dump(mode="json"),
                                    "lbdata_version": __version__}))
        engine = Engine(config, source, ledger, teacher, progress)
        summary = asyncio.run(engine.run())
        summary.elapsed_s = time.perf_counter() - started
        if engine.remote is not None or summary.accepted:
            from lbdata.pricing import run_cost

            verdicts = engine.planner.verdicts
            cost = run_cost(ledger, verdicts.hash if verdicts is not None else None)
            summary.run_cost_usd = cost.cost_usd
            summary.acceptance, summary.usd_per_1k_accepted = cost.acceptance, cost.per_1k_accepted
    return summary


def _tell_waiting(holder: str) -> None:
    log.warning("waiting for %s, which is writing to this run", holder)


__all__ = ["check_config", "check_scene_source", "generate", "open_source", "open_teacher"]
