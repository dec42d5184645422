"""The generation engine: the planner's jobs go on a queue; ``concurrency`` workers take them to their end.

A job ends as a trace in the ledger (with ``max_attempts`` > 1: validated as it arrives, and asked for
again while rejected, each attempt and verdict kept), a failure row, or not started (the run stopped).
Samples that share a request (``n``) are split back into their jobs once answered. Every request to a
server-backed teacher goes through the ``Sender`` (cache, budget, rate limits, retries, price); in
batch mode it waits for the provider's Batch API (``Batcher``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lbdata.errors import BudgetExceeded, RequestFailed, TeacherError, UsageError
from lbdata.generate.config import GenerateConfig
from lbdata.generate.planner import Group, Job, Planner, RowPlan, Verdicts
from lbdata.generate.sender import BudgetStop, Pricer, RetryPolicy, Sender, Spend, bump, load_price
from lbdata.generate.summary import GenerateSummary, stats_text
from lbdata.ledger import Ledger
from lbdata.progress import ProgressBar
from lbdata.records import BadRow, Trace, Usage, Verdict
from lbdata.sources.base import Source
from lbdata.teachers.base import RemoteTeacher, Teacher, TeacherResponse, TraceRequest

if TYPE_CHECKING:
    from lbdata.teachers.batch import Batcher

log = logging.getLogger(__name__)

_Item = Job | Group | None  # None: no more work, the worker ends


def planner_for(config: GenerateConfig, teacher: Teacher, ledger: Ledger | None, *, record: bool) -> Planner:
    """The planner of a run over ``ledger`` (``None``: a run not started yet); ``record``: verdicts it makes
    of stored attempts are written (the run) or not (the dry run)."""
    verdicts = None
    if config.max_attempts > 1:
        from lbdata.validate import ValidationConfig

        verdicts = Verdicts(ledger, ValidationConfig(), record=record)
    base_traces: dict[str, list[str]] = {}
    if config.mode == "insert" and config.base_traces:
        from lbdata.insert import load_base_traces

        base_traces = load_base_traces(config.base_traces)
    return Planner(config, teacher.info, {v: teacher.prompt_hash(v, config.mode) for v in config.variants},
                   done_ids=ledger.done_trace_ids() if ledger is not None else set(), verdicts=verdicts,
                   grouping=isinstance(teacher, RemoteTeacher) and config.samples > 1, base_traces=base_traces)


def check_batch(config: GenerateConfig, teacher: Teacher) -> None:
    if config.batch and not isinstance(teacher, RemoteTeacher):
        raise UsageError(f"--batch sends requests to a server's Batch API; teacher {config.teacher!r} has none "
                         "(use gpt-4o, openai:MODEL)")


def _check_no_held_batches(config: GenerateConfig, ledger: Ledger) -> None:
    held = [] if config.batch else ledger.iter_batches(uncollected=True)
    if held:  # answered (or running, and billed) at the provider: asking online would pay for them again
        raise UsageError(
            f"run {ledger.run_dir.name} has {len(held)} batch(es) not read back yet "
            f"({', '.join(r['batch_id'] or r['submission'] for r in held[:3])}); re-run with --batch to collect "
            f"them (`lbdata batches {ledger.run_dir.name}` shows them), then run online if you like")


@dataclasses.dataclass
class Remote:
    """What a server-backed teacher adds to a run: its sender, and in batch mode the batcher it sends through."""

    teacher: RemoteTeacher
    sender: Sender
    batcher: Batcher | None = None

    @classmethod
    def open(cls, config: GenerateConfig, teacher: RemoteTeacher, ledger: Ledger) -> Remote:
        from lbdata.ratelimit import RateLimiter

        pricer = Pricer(load_price(teacher.info.model, config.prices, config.budget_usd), batch=config.batch)
        batcher = None
        if config.batch:
            from lbdata.teachers.batch import Batcher

            batcher = Batcher(teacher, ledger, config, priced=pricer.priced)
        sender = Sender(teacher, policy=RetryPolicy(config.retries), limiter=RateLimiter(config.rpm, config.tpm),
                        pricer=pricer, cache=ledger if config.use_cache else None, budget_usd=config.budget_usd,
                        spent=float(ledger.counts()["cost_usd"]) if config.budget_usd is not None else 0.0,
                        submit=batcher.submit if batcher is not None else None)
        return cls(teacher, sender, batcher)

    def sync(self, summary: GenerateSummary) -> None:
        """Copy the sender's counts and the servers' and batches' state into the summary."""
        for name, value in dataclasses.asdict(self.sender.counts).items():
            setattr(summary, name, value)
        summary.endpoints = self.teacher.endpoint_counts()
        if self.batcher is not None:
            summary.batches = self.batcher.counts()


class Engine:
    """Runs one invocation of ``generate`` over an open ledger (see the module)."""

    def __init__(self, config: GenerateConfig, source: Source, ledger: Ledger, teacher: Teacher, progress: bool):
        self.planner = planner_for(config, teacher, ledger, record=True)
        check_batch(config, teacher)
        _check_no_held_batches(config, ledger)
        self.config = config
        self.source = source
        self.ledger = ledger
        self.teacher = teacher
        self.progress = progress
        self.summary = GenerateSummary(run_dir=ledger.run_dir)
        self.remote = Remote.open(config, teacher, ledger) if isinstance(teacher, RemoteTeacher) else None
        self.bar = ProgressBar("generate", None, enabled=False)  # the run's own bar once it starts
        self.stopping = False
        self.fatal: BaseException | None = None
        self.budget_stop: BudgetStop | None = None
        self.done_count = 0
        self.n_ok = True  # the server answers n samples in one request (until it shows otherwise)
        self._stored_bases: set[str] = set()

    @property
    def validating(self) -> bool:
        return self.planner.verdicts is not None

    @property
    def batcher(self) -> Batcher | None:
        return self.remote.batcher if self.remote is not None else None

    # ------------------------------------------------------------------ the run
    async def run(self) -> GenerateSummary:
        config = self.config
        total = config.limit * len(config.variants) * config.samples if config.limit else None
        self.bar = ProgressBar("generate", total, enabled=self.progress, unit="traces")
        n_workers = config.concurrency
        if self.batcher is not None:  # every request of a batch round waits at once
            n_workers = min(self.batcher.workers, total or self.batcher.workers)
        queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=n_workers * 2)
        workers = [asyncio.create_task(self._worker(queue)) for _ in range(n_workers)]
        if self.batcher is not None:
            self.batcher.start()
            workers.append(asyncio.create_task(self._tick()))  # the bar moves while batches run
        try:
            await self._produce(queue)
            for _ in range(n_workers):
                await queue.put(None)
            await asyncio.gather(*workers[:n_workers])
        finally:
            for w in workers:
                w.cancel()
            if self.batcher is not None:
                await self.batcher.stop()
            if self.remote is not None:
                self.remote.sync(self.summary)
            self.bar.update(completed=self.done_count, force=True, stats=self._stats)
            self.bar.close()
            await self.teacher.aclose()
        if self.fatal is not None:
            raise self.fatal
        if self.budget_stop is not None:
            raise BudgetExceeded(self._budget_message())
        return self.summary

    async def _produce(self, queue: asyncio.Queue[_Item]) -> None:
        """Every source row: a bad row is recorded, a problem stored and its pending jobs queued."""
        summary = self.summary
        for row in itertools.islice(self.source, self.config.limit):
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
            plan = self.planner.plan(row)
            self._store_bases(plan)
            summary.traces_skipped += plan.skipped
            self.done_count += plan.skipped
            for sample_set in plan.sets:
                for unit in sample_set.units(self.n_ok):
                    await queue.put(unit)

    def _store_bases(self, plan: RowPlan) -> None:
        if self.config.mode != "insert":
            return
        from lbdata.insert import put_base_trace

        for text, bid in plan.bases:
            if bid not in self._stored_bases:
                assert text is not None and bid is not None
                put_base_trace(self.ledger, text)
                self._stored_bases.add(bid)
        if not plan.bases:
            self.summary.no_base_trace += 1

    def _budget_message(self) -> str:
        assert self.config.budget_usd is not None and self.budget_stop is not None and self.remote is not None
        return (
            f"budget reached: ${self.remote.sender.spent:.4f} of ${self.config.budget_usd:.2f} spent on this run, "
            f"and the next request could cost up to ${self.budget_stop.worst_usd:.4f}; requests in flight finished, "
            f"nothing new started ({self.summary.not_started} queued traces not requested). Re-run the same command "
            "with a higher --budget-usd to resume from there"
        )

    async def _worker(self, queue: asyncio.Queue[_Item]) -> None:
        while True:
            item = await queue.get()
            if item is None:
                return
            if isinstance(item, Group):
                await self._group(item.jobs)
            else:
                await self._run(item)

    async def _run(self, job: Job, first: TeacherResponse | None = None, prepaid: Usage | None = None) -> None:
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
            self._stop_at_budget(exc)
        except BaseException as exc:  # a fatal teacher error (or a bug) stops everything cleanly
            self._fail(exc)
        finally:
            self._advance()

    def _stop_at_budget(self, exc: BudgetStop) -> None:
        self.budget_stop = self.budget_stop or exc
        self.stopping = True

    def _fail(self, exc: BaseException) -> None:
        """A fatal teacher error (or a bug): stop everything cleanly; the first error is raised."""
        self.fatal = self.fatal or exc
        self.stopping = True
        if self.remote is not None:
            self.remote.sender.cancel()

    def _advance(self) -> None:
        self.done_count += 1
        self.bar.update(completed=self.done_count, stats=self._stats)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.bar.update(completed=self.done_count, stats=self._stats, force=True)

    def _stats(self) -> str:
        if self.remote is not None:
            self.remote.sync(self.summary)
        return stats_text(self.summary, self.validating, max(self.bar.elapsed_s, 1e-6) / 60)

    async def _group(self, jobs: list[Job]) -> None:
        """The first attempt of several samples as one request with ``n``; each sample then goes on alone
        (a sample whose choice is missing, cut off or empty is requested again by itself)."""
        response, spend = (None, Spend()) if self.stopping else await self._ask_n(jobs)
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

    async def _ask_n(self, jobs: list[Job]) -> tuple[TeacherResponse | None, Spend]:
        """The answer to the samples' shared request (``None``: each sample is asked for alone) and its spend."""
        assert self.remote is not None
        request = dataclasses.replace(self.planner.request(jobs[0], 0, jobs[0].first_id), n=len(jobs))
        spend = Spend()
        try:
            response, _ = await self.remote.sender.send(request, spend)
            return response, spend
        except RequestFailed:
            pass  # each sample is asked for alone, and fails or succeeds on its own
        except TeacherError as exc:  # a server that refuses n: one sample per request from now on
            log.info("the server refused n=%d (%s); asking for one sample per request", len(jobs), exc)
            self.n_ok = False
        except BudgetStop as exc:
            self._stop_at_budget(exc)
        except BaseException as exc:
            self._fail(exc)
        return None, spend

    # ------------------------------------------------------------------ one job
    async def _job(self, job: Job, first: TeacherResponse | None = None, prepaid: Usage | None = None) -> None:
        """Attempt 0, or (validating) the attempts the planner names until one is accepted or none is left."""
        planner = self.planner
        if planner.verdicts is None:
            await self._write(job, 0, job.first_id, first, prepaid)
            return
        attempt, accepted = planner.next_attempt(job, 0, self._count)
        while attempt is not None:
            trace = await self._write(job, attempt, planner.trace_id(job, attempt), first, prepaid)
            first = prepaid = None
            verdict = planner.verdicts.judge(trace, job)
            self._count(verdict)
            if verdict.accepted:
                return
            attempt, accepted = planner.next_attempt(job, attempt + 1, self._count)
        if not accepted:
            self.summary.exhausted += 1

    def _count(self, verdict: Verdict) -> None:
        if verdict.accepted:
            self.summary.accepted += 1
            return
        self.summary.rejected += 1
        for reason in verdict.reasons:
            bump(self.summary.rejected_by_reason, reason)

    async def _write(self, job: Job, attempt: int, tid: str, first: TeacherResponse | None = None,
                     prepaid: Usage | None = None) -> Trace:
        """Request one trace and record it. ``first``: its answer, already received as one choice of an ``n``
        request; ``prepaid``: this sample's share of such a request whose choice was unusable."""
        request = self.planner.request(job, attempt, tid)
        started = datetime.now(UTC)
        spend = Spend()
        if prepaid is not None:
            spend.add(prepaid)
        try:
            response = first or await self._answer(request, spend)
        except RequestFailed as exc:
            with self.ledger.transaction():
                spend.flush(self.ledger)
                self.ledger.put_failure(trace_id=tid, problem_id=job.row.problem.id, variant=job.variant,
                                        mode=self.config.mode, sample=job.sample, attempt=attempt, error=str(exc),
                                        cost_usd=spend.cost_usd)
            raise
        except BaseException:
            spend.flush(self.ledger)  # a paid answer is kept even when the run stops before it becomes a trace
            raise
        trace = Trace(id=tid, problem_id=job.row.problem.id, variant=job.variant, mode=self.config.mode,
                      teacher=self.planner.info, prompt_hash=self.planner.prompt_hashes[job.variant],
                      text=response.text, usage=response.usage, finish_reason=response.finish_reason,
                      sample=job.sample, attempt=attempt, base_trace_id=job.base_id, started_at=started,
                      finished_at=datetime.now(UTC))
        if spend.pending:
            with self.ledger.transaction():  # the raw answer and the trace land together, in one commit
                spend.flush(self.ledger)
                self.ledger.put_trace(trace)
        else:
            self.ledger.put_trace(trace)
        self.planner.done_ids.add(tid)
        bump(self.summary.traces_new, job.variant)
        if self.remote is None:
            self.summary.cost_usd += response.usage.cost_usd
        return trace

    async def _answer(self, request: TraceRequest, spend: Spend) -> TeacherResponse:
        """The teacher's answer; from a server, asked once more with twice the ``max_tokens`` when cut off."""
        if self.remote is None:
            return await self.teacher.generate(request)
        sender, teacher = self.remote.sender, self.remote.teacher
        response, cached = await sender.send(request, spend)
        if response.finish_reason == "length":
            self.summary.truncated += 1
            log.info("truncated answer for %s (%s); asking again with more max_tokens",
                     request.problem.id, request.variant)
            longer = dataclasses.replace(request, max_tokens=teacher.estimate(request).max_completion_tokens * 2)
            response, again_cached = await sender.send(longer, spend)
            cached = cached and again_cached
        return dataclasses.replace(response, usage=spend.usage(cached))


__all__ = ["Engine", "Remote", "check_batch", "planner_for"]
