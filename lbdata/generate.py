"""The generation engine: problems from a source go to a teacher; every trace lands in the run ledger.

``generate(config, run_dir)`` is resumable: problems and completed traces already in the ledger are
skipped, so re-running the same command after a crash or Ctrl-C finishes the job without paying
twice. The engine is async; at most ``concurrency`` requests are in flight.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lbdata import __version__
from lbdata.errors import RequestFailed, UsageError
from lbdata.hashing import content_hash
from lbdata.ledger import Ledger
from lbdata.records import BadRow, Trace, parse_variant
from lbdata.sources import load_source
from lbdata.sources.base import Source, SourceRow
from lbdata.teachers import load_teacher
from lbdata.teachers.base import Teacher, TraceRequest

log = logging.getLogger(__name__)


class GenerateConfig(BaseModel):
    """What to generate. Public settings only: secrets (API keys) never enter this model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(default="synthetic", description="problem source spec (see `lbdata sources`)")
    teacher: str = Field(default="scene", description="teacher name: scene, gpt-4o, openai:<model>, or a plug-in")
    variants: tuple[str, ...] = Field(
        default=("semantic_back", "solution_back"), description="trace variants to write for every problem"
    )
    limit: int | None = Field(default=200, ge=1, description="number of source problems to use (None: all)")
    seed: int = Field(default=0, description="seed of the synthetic source and of teacher sampling")
    samples: int = Field(default=1, ge=1, description="traces per problem and variant")
    mode: Literal["write", "insert"] = Field(default="write", description="write whole traces or insert backs")
    concurrency: int = Field(default=8, ge=1, description="cap on teacher requests in flight")
    columns: dict[str, str] = Field(default_factory=dict, description="source column mapping (file/hf sources)")
    teacher_options: dict[str, Any] = Field(
        default_factory=dict, description="public teacher options (model parameters, base URL); never keys"
    )
    reveal_answer: bool = Field(default=False, description="show the teacher the gold answer")

    @field_validator("variants", mode="before")
    @classmethod
    def _variants(cls, v: Any) -> tuple[str, ...]:
        items = v.split(",") if isinstance(v, str) else list(v)
        out: list[str] = []
        for item in items:
            name = parse_variant(item)
            if name not in out:
                out.append(name)
        if not out:
            raise ValueError("at least one variant is required")
        return tuple(out)

    def identity(self) -> dict[str, Any]:
        """The settings that decide *what* is generated (not how much or how fast)."""
        return self.model_dump(mode="json", exclude={"limit", "concurrency"})

    def default_run_name(self) -> str:
        slug = "-".join(_slug(x) for x in (self.source, self.teacher))
        return f"{slug}-{content_hash(self.identity(), 8)}"


def _slug(text: str) -> str:
    text = re.sub(r"[^A-Za-z0-9]+", "-", text.split("/")[-1] if text.startswith(("jsonl:", "parquet:")) else text)
    return text.strip("-").lower()[:40] or "x"


@dataclass
class GenerateSummary:
    run_dir: Path
    problems: int = 0
    new_problems: int = 0
    bad_rows: int = 0
    bad_rows_by_reason: dict[str, int] = field(default_factory=dict)
    traces_new: dict[str, int] = field(default_factory=dict)
    traces_skipped: int = 0
    failures: int = 0
    failures_by_reason: dict[str, int] = field(default_factory=dict)
    cost_usd: float = 0.0
    elapsed_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["run_dir"] = str(self.run_dir)
        return d


def trace_seed(trace_id: str) -> int:
    return int(trace_id[:8], 16)


def _iter_limited(source: Any, limit: int | None):
    n = 0
    for row in source:
        if limit is not None and n >= limit:
            return
        n += 1
        yield row


class _Progress:
    """A rich progress bar on stderr (or nothing), with done / failed counts and spend."""

    def __init__(self, enabled: bool, total: int | None):
        self._bar = None
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("[bold]generate"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[stats]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(file=sys.stderr),
                transient=False,
            )
            self._task = self._bar.add_task("generate", total=total, stats="")
            self._bar.start()

    def update(self, summary: GenerateSummary, done: int) -> None:
        if self._bar is not None:
            stats = f"failed {summary.failures}  ${summary.cost_usd:.4f}"
            self._bar.update(self._task, completed=done, stats=stats)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


async def _run(
    config: GenerateConfig, source: Source, ledger: Ledger, teacher: Teacher, progress: bool
) -> GenerateSummary:
    summary = GenerateSummary(run_dir=ledger.run_dir)
    done_ids = ledger.done_trace_ids()
    teacher_info = teacher.info
    prompt_hashes = {v: teacher.prompt_hash(v, config.mode) for v in config.variants}
    total = config.limit * len(config.variants) * config.samples if config.limit else None
    bar = _Progress(progress, total)
    queue: asyncio.Queue[tuple[SourceRow, str, int] | None] = asyncio.Queue(maxsize=config.concurrency * 2)
    done_count = 0
    fatal: list[BaseException] = []

    async def worker() -> None:
        nonlocal done_count
        while True:
            item = await queue.get()
            if item is None:
                return
            row, variant, sample = item
            try:
                if not fatal:
                    await _one(row, variant, sample)
            except RequestFailed as exc:
                summary.failures += 1
                code = str(exc).split(":", 1)[0]
                summary.failures_by_reason[code] = summary.failures_by_reason.get(code, 0) + 1
            except BaseException as exc:  # a fatal teacher error stops everything cleanly
                fatal.append(exc)
            finally:
                done_count += 1
                bar.update(summary, done_count)

    async def _one(row: SourceRow, variant: str, sample: int) -> None:
        problem = row.problem
        tid = Trace.make_id(
            problem_id=problem.id,
            variant=variant,
            mode=config.mode,
            teacher=teacher_info,
            prompt_hash=prompt_hashes[variant],
            sample=sample,
        )
        request = TraceRequest(
            problem=problem,
            images=row.images,
            variant=variant,
            mode=config.mode,
            sample=sample,
            base_trace=row.base_trace,
            reveal_answer=config.reveal_answer,
            seed=trace_seed(tid),
        )
        started = datetime.now(UTC)
        try:
            response = await teacher.generate(request)
        except RequestFailed as exc:
            ledger.put_failure(
                trace_id=tid,
                problem_id=problem.id,
                variant=variant,
                mode=config.mode,
                sample=sample,
                attempt=0,
                error=str(exc),
            )
            raise
        trace = Trace(
            id=tid,
            problem_id=problem.id,
            variant=variant,
            mode=config.mode,
            teacher=teacher_info,
            prompt_hash=prompt_hashes[variant],
            text=response.text,
            usage=response.usage,
            finish_reason=response.finish_reason,
            sample=sample,
            started_at=started,
            finished_at=datetime.now(UTC),
        )
        ledger.put_trace(trace)
        summary.traces_new[variant] = summary.traces_new.get(variant, 0) + 1
        summary.cost_usd += response.usage.cost_usd

    workers = [asyncio.create_task(worker()) for _ in range(config.concurrency)]
    try:
        for row in _iter_limited(source, config.limit):
            if fatal:
                break
            if isinstance(row, BadRow):
                ledger.put_bad_row(row)
                summary.bad_rows += 1
                summary.bad_rows_by_reason[row.reason] = summary.bad_rows_by_reason.get(row.reason, 0) + 1
                continue
            summary.problems += 1
            if ledger.put_problem(row.problem, row.images):
                summary.new_problems += 1
            for variant in config.variants:
                for sample in range(config.samples):
                    tid = Trace.make_id(
                        problem_id=row.problem.id,
                        variant=variant,
                        mode=config.mode,
                        teacher=teacher_info,
                        prompt_hash=prompt_hashes[variant],
                        sample=sample,
                    )
                    if tid in done_ids:
                        summary.traces_skipped += 1
                        done_count += 1
                        continue
                    await queue.put((row, variant, sample))
        for _ in workers:
            await queue.put(None)
        await asyncio.gather(*workers)
    finally:
        for w in workers:
            w.cancel()
        bar.close()
        await teacher.aclose()
    if fatal:
        raise fatal[0]
    return summary


def generate(
    config: GenerateConfig,
    run_dir: str | Path,
    *,
    teacher: Teacher | None = None,
    progress: bool = False,
) -> GenerateSummary:
    """Generate traces for ``config`` into ``run_dir`` (created or resumed). Returns a summary."""
    started = time.perf_counter()
    if config.mode == "insert" and config.teacher == "scene":
        raise UsageError("the scene teacher writes whole traces; use --mode write or an OpenAI-compatible teacher")
    source = load_source(config.source, seed=config.seed, columns=config.columns or None)
    teacher = teacher or load_teacher(config.teacher, **config.teacher_options)
    with Ledger.create(run_dir) as ledger:
        previous = ledger.read_config()
        if previous and previous.get("identity") not in (None, config.identity()):
            raise UsageError(
                f"run {ledger.run_dir} was made with other settings; pass a new --run NAME "
                "or repeat the settings it was made with (see its config.json)"
            )
        ledger.write_config({"identity": config.identity(), "config": config.model_dump(mode="json"),
                             "lbdata_version": __version__})
        summary = asyncio.run(_run(config, source, ledger, teacher, progress))
        summary.elapsed_s = time.perf_counter() - started
    return summary
