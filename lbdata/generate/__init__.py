"""The generation engine: problems from a source go to a teacher; every trace lands in the run ledger.

``generate(config, run_dir)`` is resumable: problems and completed traces already in the ledger are
skipped, so re-running the same command after a crash or Ctrl-C finishes the job without paying
twice. The engine is async; at most ``concurrency`` requests are in flight.

For a teacher behind a server (``RemoteTeacher``: GPT-4o, vLLM, …) the engine also

- serves a request from the run's content-addressed cache when the same request was answered before
  (``use_cache``), so a re-run after a crash, Ctrl-C or a validator change never pays twice;
- throttles with token buckets for requests and tokens per minute (``rpm``, ``tpm``), which follow
  the server's ``x-ratelimit-*`` headers;
- retries what may succeed (429, 5xx, timeouts, lost connections, empty or malformed bodies) with
  exponential backoff and jitter, honouring ``Retry-After``; a ``TeacherError`` (bad key, unknown
  model, bad request) stops the run at once with its one-line message;
- asks once more with twice the ``max_tokens`` after a truncated answer (``finish_reason=length``);
- prices every request (``lbdata.pricing``) and stops cleanly before ``budget_usd`` would be exceeded:
  requests in flight finish, nothing new starts, and ``BudgetExceeded`` says how to resume.

With several base URLs the teacher spreads the requests over the servers (``lbdata.teachers.fleet``);
with ``samples`` > 1 the samples of one problem and variant are asked for in one request (``n``) when
the server supports it; cached prompt tokens are priced at the model's cached rate. With ``batch`` the
requests go through the provider's Batch API instead (``lbdata.teachers.batch``): same cache keys, same
ledger rows, half the price.

With ``max_attempts`` > 1 every new trace is validated as it arrives and a rejected one is requested
again (next attempt: a new trace id and seed) up to that many times; every attempt and its verdict
stay in the ledger.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lbdata import __version__
from lbdata.errors import BudgetExceeded, RequestFailed, TeacherError, UsageError
from lbdata.generate.sender import (
    BACKOFF_INITIAL_S,
    BACKOFF_MAX_S,
    BudgetStop,
    Pricer,
    RetryPolicy,
    Sender,
    Spend,
    bump,
    cache_entry,
    load_price,
)
from lbdata.generate.summary import GenerateSummary, stats_text
from lbdata.hashing import content_hash
from lbdata.images import DEFAULT_MAX_IMAGE_PIXELS
from lbdata.ledger import Ledger
from lbdata.progress import ProgressBar
from lbdata.records import BadRow, Trace, Usage, Verdict, parse_variant
from lbdata.secrets import redact
from lbdata.sources import load_source
from lbdata.sources.base import Source, SourceRow
from lbdata.teachers import load_teacher
from lbdata.teachers.base import (
    RemoteTeacher,
    Teacher,
    TeacherResponse,
    TraceRequest,
)
from lbdata.workspace import RunLock

if TYPE_CHECKING:
    from lbdata.teachers.batch import Batcher

log = logging.getLogger(__name__)

_SECRET_NAMES = frozenset({"api_key", "apikey", "key", "token", "api_token", "secret", "password", "authorization"})


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
    base_traces: str | None = Field(
        default=None, description="insert mode: rollout file (JSONL with problem_id and response, as `lbdata eval` writes)"
    )
    max_attempts: int = Field(
        default=1, ge=1, description="requests per trace until one passes validation (>1 validates as traces arrive)"
    )
    retries: int = Field(default=8, ge=0, description="retries of one request after 429, 5xx, timeouts, bad bodies")
    rpm: float | None = Field(default=None, gt=0, description="requests per minute (None: no limit unless the server sets one)")
    tpm: float | None = Field(default=None, gt=0, description="tokens per minute (None: no limit unless the server sets one)")
    budget_usd: float | None = Field(default=None, gt=0, description="stop before the run's total spend would exceed this")
    use_cache: bool = Field(default=True, description="answer a request from the run's cache when it was answered before")
    prices: str | None = Field(default=None, description="price table (YAML) merged over lbdata/prices.yaml")
    image_roots: tuple[str, ...] = Field(
        default=(), description="more folders a file source's image paths may point into (--image-root)"
    )
    max_image_pixels: int = Field(
        default=DEFAULT_MAX_IMAGE_PIXELS, ge=1, description="a larger source image is a bad row (checked before decoding)"
    )
    batch: bool = Field(default=False, description="send the requests through the provider's Batch API (24 h, batch price)")
    batch_max_requests: int = Field(default=50_000, ge=1, description="most requests in one batch input file")
    batch_max_bytes: int = Field(default=200_000_000, ge=1024, description="most bytes in one batch input file "
                                 "(images encoded)")
    poll_interval: float = Field(default=30.0, gt=0, description="seconds between two looks at a submitted batch")

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

    @field_validator("teacher_options")
    @classmethod
    def _no_secrets(cls, v: dict[str, Any]) -> dict[str, Any]:
        secret = sorted(k for k in v if k.lower() in _SECRET_NAMES)
        if secret:
            raise ValueError(
                f"teacher option(s) {', '.join(secret)} look like secrets, and teacher options are written to "
                "config.json; pass the key with --api-key, OPENAI_API_KEY or generate(..., api_key=...)"
            )
        return v

    # Settings that decide how much, how fast, how dear or where from — not what is generated.
    _HOW = frozenset({"limit", "concurrency", "max_attempts", "retries", "rpm", "tpm", "budget_usd", "use_cache",
                      "prices", "image_roots", "max_image_pixels", "batch", "batch_max_requests",
                      "batch_max_bytes", "poll_interval"})
    _HOW_TEACHER = frozenset({"base_url", "timeout", "endpoint_concurrency"})

    def identity(self) -> dict[str, Any]:
        """The non-default settings that decide *what* is generated (not how much, how fast or from where)."""
        out = self.model_dump(mode="json", exclude=set(self._HOW) | {"teacher_options"}, exclude_defaults=True)
        options = {k: v for k, v in self.teacher_options.items() if k not in self._HOW_TEACHER}
        if options:
            out["teacher_options"] = options
        return out

    def default_run_name(self) -> str:
        slug = "-".join(_slug(x) for x in (self.source, self.teacher))
        return f"{slug}-{content_hash(self.identity(), 8)}"


def _slug(text: str) -> str:
    text = re.sub(r"[^A-Za-z0-9]+", "-", text.split("/")[-1] if text.startswith(("jsonl:", "parquet:")) else text)
    return text.strip("-").lower()[:40] or "x"


def trace_seed(trace_id: str) -> int:
    return int(trace_id[:8], 16)


def _iter_limited(source: Any, limit: int | None):
    return itertools.islice(source, limit)


@dataclass
class _Job:
    row: SourceRow
    variant: str
    sample: int
    base_text: str | None
    base_id: str | None
    first_id: str = ""  # trace id of attempt 0, when the producer already computed it


@dataclass
class _Group:
    """Samples of one problem, variant and base trace whose first attempt goes out as one request with ``n``."""

    jobs: list[_Job]


class _Engine:
    def __init__(self, config: GenerateConfig, source: Source, ledger: Ledger, teacher: Teacher, progress: bool):
        self.config = config
        self.source = source
        self.ledger = ledger
        self.teacher = teacher
        self.summary = GenerateSummary(run_dir=ledger.run_dir)
        self.info = teacher.info
        self.prompt_hashes = {v: teacher.prompt_hash(v, config.mode) for v in config.variants}
        self.done_ids = ledger.done_trace_ids()
        self.remote = isinstance(teacher, RemoteTeacher)
        self.validating = config.max_attempts > 1
        self.progress = progress
        self.stopping = False
        self.fatal: BaseException | None = None
        self.budget_stop: BudgetStop | None = None
        self.done_count = 0
        self.base_traces: dict[str, list[str]] = {}
        if config.mode == "insert" and config.base_traces:
            from lbdata.insert import load_base_traces

            self.base_traces = load_base_traces(config.base_traces)
        self._stored_bases: set[str] = set()
        self.n_ok = True  # the server answers n samples in one request (until it shows otherwise)
        self.batcher: Batcher | None = None  # with --batch
        if config.batch and not self.remote:
            raise UsageError(f"--batch sends requests to a server's Batch API; teacher {config.teacher!r} has none "
                             "(use gpt-4o, openai:MODEL)")
        held = [] if config.batch else ledger.iter_batches(uncollected=True)
        if held:  # answered (or running, and billed) at the provider: asking online would pay for them again
            raise UsageError(
                f"run {ledger.run_dir.name} has {len(held)} batch(es) not read back yet "
                f"({', '.join(r['batch_id'] or r['submission'] for r in held[:3])}); re-run with --batch to collect "
                f"them (`lbdata batches {ledger.run_dir.name}` shows them), then run online if you like")
        if self.validating:
            from lbdata.validate import ValidationConfig

            self.vconfig = ValidationConfig()
            self.vhash = self.vconfig.config_hash
            self.accepted_ids = {v.trace_id for v in ledger.iter_verdicts(self.vhash) if v.accepted}
        self.sender: Sender | None = self._sender() if self.remote else None

    def _sender(self) -> Sender:
        from lbdata.ratelimit import RateLimiter

        config, teacher, ledger = self.config, self.teacher, self.ledger
        assert isinstance(teacher, RemoteTeacher)
        price = load_price(self.info.model, config.prices, config.budget_usd)
        pricer = Pricer(price, batch=config.batch)
        if config.batch:
            from lbdata.teachers.batch import Batcher

            self.batcher = Batcher(teacher, ledger, config, priced=pricer.priced)
        return Sender(teacher, policy=RetryPolicy(config.retries), limiter=RateLimiter(config.rpm, config.tpm),
                      pricer=pricer, cache=ledger if config.use_cache else None, budget_usd=config.budget_usd,
                      spent=float(ledger.counts()["cost_usd"]) if config.budget_usd is not None else 0.0,
                      submit=self.batcher.submit if self.batcher is not None else None)

    # ------------------------------------------------------------------ the run
    async def run(self) -> GenerateSummary:
        config, summary = self.config, self.summary
        total = config.limit * len(config.variants) * config.samples if config.limit else None
        self.bar = ProgressBar("generate", total, enabled=self.progress, unit="traces")
        n_workers = config.concurrency
        if self.batcher is not None:  # every request of a batch round waits at once
            n_workers = min(self.batcher.workers, total or self.batcher.workers)
        queue: asyncio.Queue[_Job | _Group | None] = asyncio.Queue(maxsize=n_workers * 2)
        workers = [asyncio.create_task(self._worker(queue)) for _ in range(n_workers)]
        if self.batcher is not None:
            self.batcher.start()
            workers.append(asyncio.create_task(self._tick()))  # the bar moves while batches run
        try:
            for row in _iter_limited(self.source, config.limit):
                if self.stopping:
                    break
                if isinstance(row, BadRow):
                    self.ledger.put_bad_row(row)
                    summary.bad_rows += 1
                    bump(summary.bad_rows_by_reason, row.reason)
                    continue
                summary.problems += 1
                if self.ledger.put_problem(row.problem, row.images):
                    summary.new_problems += 1
                for job in self._jobs(row):
                    await queue.put(job)
            for _ in range(n_workers):
                await queue.put(None)
            await asyncio.gather(*workers[:n_workers])
        finally:
            for w in workers:
                w.cancel()
            if self.batcher is not None:
                await self.batcher.stop()
            self._sync()
            self.bar.update(completed=self.done_count, force=True,
                            stats=lambda: stats_text(summary, self.validating, max(self.bar.elapsed_s, 1e-6) / 60))
            self.bar.close()
            await self.teacher.aclose()
        if self.fatal is not None:
            raise self.fatal
        if self.budget_stop is not None:
            raise BudgetExceeded(self._budget_message())
        return summary

    def _budget_message(self) -> str:
        assert self.config.budget_usd is not None and self.budget_stop is not None
        return (
            f"budget reached: ${self.sender.spent if self.sender else 0.0:.4f} of ${self.config.budget_usd:.2f} spent on this run, and the next "
            f"request could cost up to ${self.budget_stop.worst_usd:.4f}; requests in flight finished, nothing new "
            f"started ({self.summary.not_started} queued traces not requested). Re-run the same command with a "
            "higher --budget-usd to resume from there"
        )

    def _trace_id(self, job: _Job, attempt: int) -> str:
        return Trace.make_id(
            problem_id=job.row.problem.id,
            variant=job.variant,
            mode=self.config.mode,
            teacher=self.info,
            prompt_hash=self.prompt_hashes[job.variant],
            sample=job.sample,
            attempt=attempt,
            base_trace_id=job.base_id,
        )

    def _bases(self, row: SourceRow) -> list[tuple[str | None, str | None]]:
        """(text, id) of every base trace of a problem; one (None, None) in write mode."""
        if self.config.mode != "insert":
            return [(None, None)]
        from lbdata.insert import base_trace_id, put_base_trace

        texts = [row.base_trace.strip()] if row.base_trace and row.base_trace.strip() else []
        texts += self.base_traces.get(row.problem.id, [])
        out: list[tuple[str | None, str | None]] = []
        for text in dict.fromkeys(texts):
            bid = base_trace_id(text)
            if bid not in self._stored_bases:
                put_base_trace(self.ledger, text)
                self._stored_bases.add(bid)
            out.append((text, bid))
        if not out:
            self.summary.no_base_trace += 1
        return out

    def _jobs(self, row: SourceRow):
        grouping = self.remote and self.config.samples > 1
        for text, bid in self._bases(row):
            for variant in self.config.variants:
                jobs = list(self._pending(row, text, bid, variant))
                fresh = [j for j in jobs if grouping and self._trace_id(j, 0) not in self.done_ids]
                if len(fresh) > 1 and self.n_ok:
                    yield _Group(fresh)
                    jobs = [j for j in jobs if j not in fresh]
                yield from jobs

    def _pending(self, row: SourceRow, text: str | None, bid: str | None, variant: str):
        k = self.config.max_attempts
        for sample in range(self.config.samples):
            job = _Job(row, variant, sample, text, bid)
            if k == 1:
                job.first_id = self._trace_id(job, 0)
                if job.first_id in self.done_ids:
                    self.summary.traces_skipped += 1
                    self.done_count += 1
                    continue
            elif any(self._trace_id(job, a) in self.accepted_ids for a in range(k)):
                self.summary.traces_skipped += 1
                self.done_count += 1
                continue
            yield job

    async def _worker(self, queue: asyncio.Queue[_Job | _Group | None]) -> None:
        while True:
            item = await queue.get()
            if item is None:
                return
            if isinstance(item, _Group):
                await self._group(item.jobs)
            else:
                await self._run(item)

    async def _run(self, job: _Job, first: TeacherResponse | None = None, prepaid: Usage | None = None) -> None:
        """One job to its end, every outcome counted: a trace (and its verdicts), a failure, a stop."""
        summary = self.summary
        if self.stopping:
            summary.not_started += 1
            self._advance()
            return
        try:
            await self._job(job, first, prepaid)
        except RequestFailed as exc:
            summary.failures += 1
            bump(summary.failures_by_reason, str(exc).split(":", 1)[0])
        except BudgetStop as exc:
            summary.not_started += 1
            self.budget_stop = self.budget_stop or exc
            self.stopping = True
        except BaseException as exc:  # a fatal teacher error (or a bug) stops everything cleanly
            self._fail(exc)
        finally:
            self._advance()

    def _fail(self, exc: BaseException) -> None:
        """A fatal teacher error (or a bug): stop everything cleanly, the first error is raised."""
        self.fatal = self.fatal or exc
        self.stopping = True
        if self.sender is not None:
            self.sender.cancel()

    def _sync(self) -> None:
        """Copy the sender's counts and the servers' and batches' state into the summary."""
        summary = self.summary
        if self.sender is not None:
            for name, value in dataclasses.asdict(self.sender.counts).items():
                setattr(summary, name, value)
            summary.endpoints = self.teacher.endpoint_counts()  # type: ignore[attr-defined]
        if self.batcher is not None:
            summary.batches = self.batcher.counts()

    def _advance(self) -> None:
        self.done_count += 1
        summary = self.summary
        self.bar.update(completed=self.done_count,
                        stats=lambda: self._stats(summary))

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.bar.update(completed=self.done_count, stats=lambda: self._stats(self.summary), force=True)

    def _stats(self, summary: GenerateSummary) -> str:
        self._sync()
        return stats_text(summary, self.validating, max(self.bar.elapsed_s, 1e-6) / 60)

    async def _group(self, jobs: list[_Job]) -> None:
        """The first attempt of several samples as one request with ``n``; each sample then goes on alone
        (a sample whose choice is missing, cut off or empty is requested again by itself)."""
        if self.stopping:
            for job in jobs:
                await self._run(job)
            return
        tid = self._trace_id(jobs[0], 0)
        request = dataclasses.replace(self._request(jobs[0], 0, tid), n=len(jobs))
        spend = Spend()
        try:
            response, _ = await self.sender.send(request, spend)
        except RequestFailed:
            response = None  # each sample is asked for alone, and fails or succeeds on its own
        except TeacherError as exc:  # a server that refuses n: one sample per request from now on
            log.info("the server refused n=%d (%s); asking for one sample per request", len(jobs), exc)
            self.n_ok = False
            response = None
        except BudgetStop as exc:
            self.budget_stop = self.budget_stop or exc
            self.stopping = True
            response = None
        except BaseException as exc:
            self._fail(exc)
            response = None
        if response is None:
            for job in jobs:
                await self._run(job)
            return
        spend.flush(self.ledger)  # the n answers are paid: cached before any trace is written
        choices = response.choices or ((response.text, response.finish_reason),)
        if len(choices) < len(jobs) and self.n_ok:
            self.n_ok = False
            log.info("the server answered %d of %d samples asked for with n; asking for one sample per request now",
                     len(choices), len(jobs))
        share = spend.share(len(jobs))
        firsts: list[TeacherResponse | None] = []
        for i in range(len(jobs)):
            text, finish = choices[i] if i < len(choices) else ("", None)
            usable = bool(text.strip()) and finish not in ("length", "content_filter")
            firsts.append(TeacherResponse(text=text, usage=share, finish_reason=finish) if usable else None)
        await asyncio.gather(*(self._run(job, first, None if first else share)
                               for job, first in zip(jobs, firsts, strict=True)))

    async def _job(self, job: _Job, first: TeacherResponse | None = None, prepaid: Usage | None = None) -> None:
        if not self.validating:
            await self._write(job, 0, job.first_id or self._trace_id(job, 0), first, prepaid)
            return
        for attempt in range(self.config.max_attempts):
            tid = self._trace_id(job, attempt)
            if tid in self.done_ids:
                verdict = self.ledger.get_verdict(tid, self.vhash) or self._validate(self.ledger.get_trace(tid), job)
            else:
                verdict = self._validate(await self._write(job, attempt, tid, first, prepaid), job)
            first = prepaid = None
            if verdict.accepted:
                self.summary.accepted += 1
                return
            self.summary.rejected += 1
            for reason in verdict.reasons:
                bump(self.summary.rejected_by_reason, reason)
        self.summary.exhausted += 1

    def _validate(self, trace: Trace, job: _Job) -> Verdict:
        from lbdata.validate import validate_trace

        problem = job.row.problem
        verdict = validate_trace(
            trace.text,
            variant=trace.variant,
            gold=problem.answer,
            question=problem.question,
            choices=problem.choices,
            config=self.vconfig,
            trace_id=trace.id,
            base_trace=job.base_text,
        )
        if verdict.config_hash != self.vhash:
            verdict = verdict.model_copy(update={"config_hash": self.vhash})
        self.ledger.put_verdict(verdict)
        return verdict

    # ------------------------------------------------------------------ one trace
    def _request(self, job: _Job, attempt: int, tid: str) -> TraceRequest:
        return TraceRequest(
            problem=job.row.problem,
            images=job.row.images,
            variant=job.variant,
            mode=self.config.mode,
            sample=job.sample,
            attempt=attempt,
            base_trace=job.base_text,
            reveal_answer=self.config.reveal_answer,
            seed=trace_seed(tid),
        )

    async def _write(self, job: _Job, attempt: int, tid: str, first: TeacherResponse | None = None,
                     prepaid: Usage | None = None) -> Trace:
        """Request one trace and record it. ``first``: its answer, already received as one choice of an ``n``
        request; ``prepaid``: this sample's share of such a request whose choice was unusable."""
        config, problem = self.config, job.row.problem
        request = self._request(job, attempt, tid)
        started = datetime.now(UTC)
        spend = Spend()
        if prepaid is not None:
            spend.add(prepaid)
        ledger = self.ledger
        try:
            if first is not None:
                response = first
            elif self.remote:
                response = await self._remote(request, spend)
            else:
                response = await self.teacher.generate(request)
        except RequestFailed as exc:
            with ledger.transaction():
                spend.flush(self.ledger)
                ledger.put_failure(
                    trace_id=tid,
                    problem_id=problem.id,
                    variant=job.variant,
                    mode=config.mode,
                    sample=job.sample,
                    attempt=attempt,
                    error=str(exc),
                    cost_usd=spend.cost_usd,
                )
            raise
        except BaseException:
            spend.flush(self.ledger)  # a paid answer is kept even when the run stops before it becomes a trace
            raise
        trace = Trace(
            id=tid,
            problem_id=problem.id,
            variant=job.variant,
            mode=config.mode,
            teacher=self.info,
            prompt_hash=self.prompt_hashes[job.variant],
            text=response.text,
            usage=response.usage,
            finish_reason=response.finish_reason,
            sample=job.sample,
            attempt=attempt,
            base_trace_id=job.base_id,
            started_at=started,
            finished_at=datetime.now(UTC),
        )
        if spend.pending:
            with ledger.transaction():  # the raw answer and the trace land together, in one commit
                spend.flush(self.ledger)
                ledger.put_trace(trace)
        else:
            ledger.put_trace(trace)
        self.done_ids.add(tid)
        bump(self.summary.traces_new, job.variant)
        if not self.remote:
            self.summary.cost_usd += response.usage.cost_usd
        return trace

    async def _remote(self, request: TraceRequest, spend: Spend) -> TeacherResponse:
        teacher = self.teacher
        assert isinstance(teacher, RemoteTeacher)
        response, cached = await self.sender.send(request, spend)
        if response.finish_reason == "length":
            self.summary.truncated += 1
            log.info("truncated answer for %s (%s); asking again with more max_tokens",
                     request.problem.id, request.variant)
            limit = teacher.estimate(request).max_completion_tokens * 2
            longer = dataclasses.replace(request, max_tokens=limit)
            response, again_cached = await self.sender.send(longer, spend)
            cached = cached and again_cached
        return dataclasses.replace(response, usage=spend.usage(cached))


def _check_scene_source(config: GenerateConfig) -> None:
    """The scene teacher writes only from the synthetic source's scene facts: refuse any other source up front."""
    if config.teacher == "scene" and config.source.strip().split(":", 1)[0] != "synthetic":
        raise UsageError(
            f"the scene teacher writes traces from the synthetic source's scene facts, which {config.source!r} does "
            "not have; pass --teacher gpt-4o, or --teacher openai:MODEL --base-url URL for a local server"
        )


def _check(config: GenerateConfig) -> None:
    if config.mode == "insert":
        if config.teacher == "scene":
            raise UsageError("the scene teacher writes whole traces; use --mode write or an OpenAI-compatible teacher")
        if "plain" in config.variants:
            raise UsageError("insert mode places <back> segments, and plain traces have none; drop plain from --variant")
        if not config.base_traces and "trace" not in config.columns:
            raise UsageError("insert mode needs base traces: pass --base-traces FILE.jsonl or --trace-col COLUMN")
    elif config.base_traces:
        raise UsageError("--base-traces is for insert mode; add --mode insert")


def _source(config: GenerateConfig) -> Source:
    return load_source(config.source, seed=config.seed, columns=config.columns or None,
                       image_roots=config.image_roots, max_image_pixels=config.max_image_pixels)


def _teacher(config: GenerateConfig, teacher: Teacher | None, api_key: str | None) -> Teacher:
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
    _check(config)
    source = _source(config)
    _check_scene_source(config)
    teacher = _teacher(config, teacher, api_key)
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
        engine = _Engine(config, source, ledger, teacher, progress)
        summary = asyncio.run(engine.run())
        summary.elapsed_s = time.perf_counter() - started
        if engine.remote or summary.accepted:
            from lbdata.pricing import run_cost

            cost = run_cost(ledger, engine.vhash if engine.validating else None)
            summary.run_cost_usd = cost.cost_usd
            summary.acceptance, summary.usd_per_1k_accepted = cost.acceptance, cost.per_1k_accepted
    return summary


def _tell_waiting(holder: str) -> None:
    log.warning("waiting for %s, which is writing to this run", holder)


# ---------------------------------------------------------------------------- dry run


@dataclass
class DryRunEstimate:
    """What a run would send: requests, tokens and USD, counted without sending anything."""

    model: str
    requests: int = 0
    skipped: int = 0
    problems: int = 0
    bad_rows: int = 0
    no_base_trace: int = 0
    prompt_tokens: int = 0
    image_tokens: int = 0
    completion_tokens: int = 0
    max_completion_tokens: int = 0
    typical_completion_tokens: int = 0
    priced: bool = False
    cost_usd: float = 0.0
    max_cost_usd: float = 0.0
    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0
    max_attempts: int = 1
    batch: bool = False
    batches: int = 0  # batch input files the requests fill (--batch)
    batch_bytes: int = 0  # their size, images encoded
    acceptance: float | None = None  # the run's share of accepted traces so far (None before any verdict)

    @property
    def usd_per_1k_accepted(self) -> float | None:
        """Expected USD per 1,000 accepted traces, at the run's acceptance rate so far (inf: none accepted yet)."""
        if self.acceptance is None or not self.requests:
            return None
        if not self.acceptance:
            import math

            return math.inf
        return 1000 * self.cost_usd / (self.requests * self.acceptance)


def dry_run(
    config: GenerateConfig, run_dir: str | Path, *, teacher: Teacher | None = None, api_key: str | None = None
) -> DryRunEstimate:
    """Count the requests ``generate`` would send (traces already in ``run_dir`` skipped) and price them.

    Sends nothing and writes nothing. Completion tokens are estimated by the run's mean so far, else by
    the price table's ``typical_completion_tokens``; the upper bound assumes every answer hits ``max_tokens``.
    """
    from lbdata.insert import base_trace_id, load_base_traces
    from lbdata.pricing import images_tokens, load_prices, run_cost
    from lbdata.teachers.batch import Packer, batch_line
    from lbdata.teachers.openai import MissingApiKey

    _check(config)
    source = _source(config)
    _check_scene_source(config)
    try:
        teacher = _teacher(config, teacher, api_key)
    except MissingApiKey:  # nothing is sent, so no key is needed to count
        teacher = _teacher(config, None, "dry-run-sends-nothing")
    info = teacher.info
    table = load_prices(config.prices)
    price = table.lookup(info.model)
    out = DryRunEstimate(model=info.model, max_attempts=config.max_attempts, priced=price is not None,
                         batch=config.batch)
    packer = Packer(config.batch_max_requests, config.batch_max_bytes)
    if config.batch and not isinstance(teacher, RemoteTeacher):
        raise UsageError(f"--batch sends requests to a server's Batch API; teacher {config.teacher!r} has none "
                         "(use gpt-4o, openai:MODEL)")
    if config.batch:
        from lbdata.teachers.batch import check_teacher

        check_teacher(teacher)  # what the run would refuse, the plan refuses too
    done: set[str] = set()
    typical = table.typical_completion_tokens
    run_dir = Path(run_dir)
    if (run_dir / "ledger.sqlite").exists():
        with Ledger.open(run_dir) as ledger:
            done = ledger.done_trace_ids()
            lengths = [t.usage.completion_tokens for t in ledger.iter_traces() if t.usage.completion_tokens]
            if lengths:
                typical = round(sum(lengths) / len(lengths))
            out.acceptance = run_cost(ledger).acceptance
    out.typical_completion_tokens = typical
    bases_by_problem = load_base_traces(config.base_traces) if config.mode == "insert" and config.base_traces else {}
    hashes = {v: teacher.prompt_hash(v, config.mode) for v in config.variants}
    billing = price.image if price else None
    for row in _iter_limited(source, config.limit):
        if isinstance(row, BadRow):
            out.bad_rows += 1
            continue
        out.problems += 1
        if config.mode == "insert":
            texts = ([row.base_trace.strip()] if row.base_trace else []) + bases_by_problem.get(row.problem.id, [])
            bases = [(t, base_trace_id(t)) for t in dict.fromkeys(texts)]
            if not bases:
                out.no_base_trace += 1
        else:
            bases = [(None, None)]
        for text, bid in bases:
            for variant in config.variants:
                asked = 0  # samples of this problem and variant already counted: with n, one prompt pays for all
                for sample in range(config.samples):
                    tid = Trace.make_id(problem_id=row.problem.id, variant=variant, mode=config.mode, teacher=info,
                                        prompt_hash=hashes[variant], sample=sample, base_trace_id=bid)
                    if tid in done:
                        out.skipped += 1
                        continue
                    out.requests += 1
                    asked += 1
                    if not isinstance(teacher, RemoteTeacher):
                        continue
                    request = TraceRequest(problem=row.problem, images=row.images, variant=variant, mode=config.mode,
                                           sample=sample, base_trace=text, reveal_answer=config.reveal_answer,
                                           seed=trace_seed(tid))
                    est = teacher.estimate(request)
                    if config.batch and asked == 1:
                        line = batch_line(teacher.request_key(request), teacher.chat_body(request))
                        out.batches += packer.add(len(line))
                        out.batch_bytes += len(line)
                    if asked > 1:  # asked for with n in the first sample's request: only its completion is new
                        out.max_completion_tokens += est.max_completion_tokens
                        out.completion_tokens += min(typical, est.max_completion_tokens)
                        continue
                    if billing is None:
                        from lbdata.pricing import ImageBilling

                        billing = ImageBilling()
                    img = images_tokens(est.images, billing)
                    out.image_tokens += img
                    out.prompt_tokens += est.text_tokens + img
                    out.max_completion_tokens += est.max_completion_tokens
                    out.completion_tokens += min(typical, est.max_completion_tokens)
    if price is not None:
        out.input_per_mtok, out.output_per_mtok = price.input, price.output
        out.cost_usd = price.cost(out.prompt_tokens, out.completion_tokens, batch=config.batch)
        out.max_cost_usd = price.cost(out.prompt_tokens, out.max_completion_tokens, batch=config.batch)
    return out


__all__ = ["BACKOFF_INITIAL_S", "BACKOFF_MAX_S", "DryRunEstimate", "GenerateConfig", "GenerateSummary", "dry_run", "cache_entry", "generate", "trace_seed"]
