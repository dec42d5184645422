"""Which traces a run asks for: the one enumeration of jobs that ``generate`` sends and ``dry_run`` counts.

For every source problem the ``Planner`` lists its base traces (insert mode; a blank one counts as none),
then for every base, variant and sample a ``Job``, leaving out those already in the ledger: with
``max_attempts`` 1, a job whose trace is there; with more, a job one of whose attempts was accepted.
The samples of one problem, variant and base whose first attempt is still to be asked for go out as one
request with ``n`` (a ``Group``) when the teacher is server-backed and the server takes ``n``.

With ``max_attempts`` > 1, ``Planner.next_attempt`` walks a job's attempts in order: a stored attempt
is judged by its verdict (made now when the run has none under the current validator), an accepted one
ends the job, and the first attempt not in the ledger is the one to ask for. The run asks, validates
the answer and walks on; the dry run counts that one request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lbdata.records import TeacherInfo, Trace, Verdict
from lbdata.sources.base import SourceRow
from lbdata.teachers.base import TraceRequest

if TYPE_CHECKING:
    from lbdata.generate.config import GenerateConfig
    from lbdata.ledger import Ledger
    from lbdata.validate import ValidationConfig


def trace_seed(trace_id: str) -> int:
    return int(trace_id[:8], 16)


@dataclass
class Job:
    """One trace to write: a problem, variant, sample and (insert mode) base trace, through its attempts."""

    row: SourceRow
    variant: str
    sample: int
    base_text: str | None
    base_id: str | None
    first_id: str = ""  # trace id of attempt 0


@dataclass
class Group:
    """Samples of one problem, variant and base trace whose first attempt goes out as one request with ``n``."""

    jobs: list[Job]


@dataclass
class SampleSet:
    """The pending jobs of one problem, variant and base trace; ``fresh``: those whose attempt 0 is to be asked."""

    jobs: list[Job]
    fresh: list[Job]

    def units(self, n_ok: bool) -> list[Job | Group]:
        """What goes on the queue: the fresh samples as one ``Group`` (when there are several and the server
        takes ``n``), then the other jobs one by one."""
        if len(self.fresh) > 1 and n_ok:
            return [Group(self.fresh), *(j for j in self.jobs if j not in self.fresh)]
        return list(self.jobs)


@dataclass
class RowPlan:
    """One problem's share of the run: its base traces, its pending jobs, and how many jobs are done."""

    row: SourceRow
    bases: list[tuple[str | None, str | None]]  # (text, id); one (None, None) in write mode; [] without a base
    sets: list[SampleSet] = field(default_factory=list)
    skipped: int = 0


class Verdicts:
    """The verdicts of stored attempts under the run's validator: read from the ledger, or made now (and
    recorded when ``record``; a dry run records nothing)."""

    def __init__(self, ledger: Ledger | None, config: ValidationConfig, *, record: bool):
        self.ledger = ledger
        self.config = config
        self.hash = config.config_hash
        self.record = record

    def accepted_ids(self) -> set[str]:
        if self.ledger is None:
            return set()
        return {v.trace_id for v in self.ledger.iter_verdicts(self.hash) if v.accepted}

    def of_stored(self, trace_id: str, job: Job) -> Verdict:
        assert self.ledger is not None
        return self.ledger.get_verdict(trace_id, self.hash) or self.judge(self.ledger.get_trace(trace_id), job)

    def judge(self, trace: Trace, job: Job) -> Verdict:
        from lbdata.validate import validate_trace

        problem = job.row.problem
        verdict = validate_trace(trace.text, variant=trace.variant, gold=problem.answer, question=problem.question,
                                 choices=problem.choices, config=self.config, trace_id=trace.id,
                                 base_trace=job.base_text)
        if verdict.config_hash != self.hash:
            verdict = verdict.model_copy(update={"config_hash": self.hash})
        if self.record and self.ledger is not None:
            self.ledger.put_verdict(verdict)
        return verdict


class Planner:
    """Enumerates a run's jobs (see the module). ``done_ids``: trace ids in the ledger (the run adds the
    ones it writes); ``verdicts``: with ``max_attempts`` > 1; ``grouping``: samples may share a request."""

    def __init__(self, config: GenerateConfig, info: TeacherInfo, prompt_hashes: dict[str, str], *,
                 done_ids: set[str], verdicts: Verdicts | None, grouping: bool,
                 base_traces: dict[str, list[str]] | None = None):
        self.config = config
        self.info = info
        self.prompt_hashes = prompt_hashes
        self.done_ids = done_ids
        self.verdicts = verdicts
        self.accepted_ids = verdicts.accepted_ids() if verdicts is not None else set()
        self.grouping = grouping
        self.base_traces = base_traces or {}

    def trace_id(self, job: Job, attempt: int) -> str:
        return Trace.make_id(problem_id=job.row.problem.id, variant=job.variant, mode=self.config.mode,
                             teacher=self.info, prompt_hash=self.prompt_hashes[job.variant], sample=job.sample,
                             attempt=attempt, base_trace_id=job.base_id)

    def request(self, job: Job, attempt: int, trace_id: str) -> TraceRequest:
        return TraceRequest(problem=job.row.problem, images=job.row.images, variant=job.variant,
                            mode=self.config.mode, sample=job.sample, attempt=attempt, base_trace=job.base_text,
                            reveal_answer=self.config.reveal_answer, seed=trace_seed(trace_id))

    def bases(self, row: SourceRow) -> list[tuple[str | None, str | None]]:
        """(text, id) of every base trace of a problem, repeats dropped; one (None, None) in write mode."""
        if self.config.mode != "insert":
            return [(None, None)]
        from lbdata.insert import base_trace_id

        texts = [row.base_trace.strip()] if row.base_trace and row.base_trace.strip() else []
        texts += self.base_traces.get(row.problem.id, [])
        return [(text, base_trace_id(text)) for text in dict.fromkeys(texts)]

    def plan(self, row: SourceRow) -> RowPlan:
        """The pending jobs of one problem, by base trace and variant."""
        out = RowPlan(row, self.bases(row))
        for text, bid in out.bases:
            for variant in self.config.variants:
                jobs = []
                for sample in range(self.config.samples):
                    job = Job(row, variant, sample, text, bid)
                    job.first_id = self.trace_id(job, 0)
                    if self._done(job):
                        out.skipped += 1
                    else:
                        jobs.append(job)
                fresh = [j for j in jobs if self.grouping and j.first_id not in self.done_ids]
                out.sets.append(SampleSet(jobs, fresh))
        return out

    def _done(self, job: Job) -> bool:
        if self.verdicts is None:
            return job.first_id in self.done_ids
        return any(self.trace_id(job, a) in self.accepted_ids for a in range(self.config.max_attempts))

    def next_attempt(self, job: Job, start: int = 0,
                     seen: Callable[[Verdict], None] | None = None) -> tuple[int | None, bool]:
        """(the attempt to ask for next, from ``start``: ``None`` when there is none; whether a stored attempt
        was accepted). Every stored attempt's verdict on the way goes to ``seen``."""
        if self.verdicts is None:
            return (None, False) if job.first_id in self.done_ids else (0, False)
        for attempt in range(start, self.config.max_attempts):
            tid = self.trace_id(job, attempt)
            if tid not in self.done_ids:
                return attempt, False
            verdict = self.verdicts.of_stored(tid, job)
            if seen is not None:
                seen(verdict)
            if verdict.accepted:
                return None, True
        return None, False


__all__ = ["Group", "Job", "Planner", "RowPlan", "SampleSet", "Verdicts", "trace_seed"]
