"""``validate_run``: validate every trace of a run once per config, store verdicts, write the report.

Verdicts are keyed in the ledger by (trace id, config hash), so a re-run validates only traces that
have no verdict for the current config — new traces, or all of them after a threshold or rule
change. Rejected traces stay in the ledger with their reasons. The report covers every trace of the
run that has a verdict for this config and lands in ``validation.json`` and ``validation.md``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter, OrderedDict
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import BaseModel, Field

from lbdata.errors import LedgerError
from lbdata.ledger import Ledger
from lbdata.progress import ProgressBar
from lbdata.records import Trace, Verdict
from lbdata.sources.synthetic.facts import SceneFacts, scene_facts
from lbdata.validate.answers import answer_stats
from lbdata.validate.config import ValidationConfig
from lbdata.validate.reasons import REASONS
from lbdata.validate.trace import validate_trace
from lbdata.workspace import write_text_atomic

logger = logging.getLogger(__name__)

CHUNK_SIZE = 500
"""Traces per unit of work: per process-pool task, and per ledger transaction."""


@dataclass(frozen=True)
class _Task:
    trace_id: str
    text: str
    variant: str
    gold: str
    question: str
    choices: tuple[str, ...] | None
    base_trace: str | None
    facts: SceneFacts | None = None


class VariantCounts(BaseModel):
    traces: int = 0
    accepted: int = 0
    rejected: int = 0


class ValidationReport(BaseModel):
    """What ``lbdata validate`` prints and writes to ``validation.json`` / ``validation.md``."""

    run: str = Field(description="the run directory")
    config_hash: str
    config: dict[str, Any]
    traces: int = Field(description="traces of the run with a verdict for this config")
    validated_now: int = Field(description="traces validated by this call (the rest had a verdict already)")
    accepted: int
    rejected: int
    per_variant: dict[str, VariantCounts]
    reasons: dict[str, int] = Field(description="traces carrying each reason code, most frequent first")
    reasons_per_variant: dict[str, dict[str, int]]
    answer_match_rate: float = Field(description="share of traces whose boxed answer matches the gold")
    answer_timeouts: int = Field(description="sympy comparisons that hit the time limit in this call")
    elapsed_s: float
    traces_per_s: float = Field(description="validation speed of this call")

    def to_markdown(self) -> str:
        lines = [
            "# Validation report",
            "",
            f"- run: `{self.run}`",
            f"- config hash: `{self.config_hash}`",
            f"- traces: {self.traces} (validated now: {self.validated_now})",
            f"- accepted: {self.accepted}, rejected: {self.rejected}",
            f"- answer-match rate: {self.answer_match_rate:.1%}",
            f"- answer checks that timed out: {self.answer_timeouts}",
            "",
            "| variant | traces | accepted | rejected | accepted % |",
            "|---|---:|---:|---:|---:|",
        ]
        for v, c in self.per_variant.items():
            share = c.accepted / c.traces if c.traces else 0.0
            lines.append(f"| {v} | {c.traces} | {c.accepted} | {c.rejected} | {share:.1%} |")
        lines += ["", "| reason | traces | meaning |", "|---|---:|---|"]
        for code, n in self.reasons.items():
            meaning = REASONS[code].meaning if code in REASONS else ""
            lines.append(f"| `{code}` | {n} | {meaning} |")
        if not self.reasons:
            lines.append("| (none) | 0 | every trace passed |")
        lines += ["", "Config:", "", "```json", json.dumps(self.config, indent=2, sort_keys=True), "```", ""]
        return "\n".join(lines)


def _validate_chunk(tasks: list[_Task], config: ValidationConfig) -> tuple[list[Verdict], dict[str, int]]:
    before = answer_stats()
    verdicts = [
        validate_trace(
            t.text,
            variant=t.variant,
            gold=t.gold,
            question=t.question,
            choices=t.choices,
            config=config,
            trace_id=t.trace_id,
            base_trace=t.base_trace,
            facts=t.facts,
        )
        for t in tasks
    ]
    after = answer_stats()
    return verdicts, {k: after[k] - before[k] for k in after}


class _Problems:
    """A bounded cache of the run's problems and their scene facts (traces of one problem usually come
    together)."""

    def __init__(self, ledger: Ledger, size: int = 4096):
        self.ledger, self.size = ledger, size
        self._cache: OrderedDict[str, tuple[_ProblemFields, SceneFacts | None]] = OrderedDict()

    def get(self, problem_id: str) -> tuple[_ProblemFields, SceneFacts | None]:
        entry = self._cache.get(problem_id)
        if entry is None:
            problem = self._read(problem_id)
            entry = self._cache[problem_id] = (problem, scene_facts(problem.meta))
            if len(self._cache) > self.size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(problem_id)
        return entry

    def _read(self, problem_id: str) -> _ProblemFields:
        """The fields validation reads, straight from the stored JSON (no ``Problem`` built per problem)."""
        answer, question, choices, meta = self.ledger.problem_fields(problem_id)
        return _ProblemFields(
            answer, question, json.loads(choices) if choices else None, json.loads(meta) if meta else {}
        )


class _ProblemFields(NamedTuple):
    answer: str
    question: str
    choices: list[str] | None
    meta: dict[str, Any]


def _task(
    ledger: Ledger, row: tuple[str, str, str, str, str | None, str], problems: _Problems
) -> _Task:
    """The task of one trace row ``(id, problem_id, variant, mode, base_trace_id, text)``."""
    trace_id, problem_id, variant, mode, base_id, text = row
    problem, facts = problems.get(problem_id)
    base = _base_text(ledger, base_id) if mode == "insert" and base_id else None
    choices = tuple(problem.choices) if problem.choices else None
    return _Task(trace_id, text, variant, problem.answer, problem.question, choices, base, facts)


def _trace_row(trace: Trace) -> tuple[str, str, str, str, str | None, str]:
    return trace.id, trace.problem_id, trace.variant, trace.mode, trace.base_trace_id, trace.text


def _pending_tasks(ledger: Ledger, done: set[str]) -> Iterator[_Task]:
    problems = _Problems(ledger)
    for row in ledger.iter_trace_texts():
        if row[0] not in done:
            yield _task(ledger, row, problems)


# Process-pool workers open the ledger themselves and read their traces by id, so the parent only
# hands out ids and stores verdicts.
_pool_state: dict[str, Any] = {}


def _init_pool_worker(run_dir: str) -> None:
    ledger = Ledger.open(run_dir)
    _pool_state.update(ledger=ledger, problems=_Problems(ledger))


def _validate_ids(ids: list[str], config: ValidationConfig) -> tuple[list[Verdict], dict[str, int]]:
    ledger: Ledger = _pool_state["ledger"]
    tasks = [_task(ledger, _trace_row(ledger.get_trace(tid)), _pool_state["problems"]) for tid in ids]
    return _validate_chunk(tasks, config)


def _base_text(ledger: Ledger, base_id: str) -> str | None:
    """The base reasoning of an insert-mode trace: stored by ``lbdata.insert`` or, failing that, a trace."""
    from lbdata.insert import get_base_trace

    text = get_base_trace(ledger, base_id)
    if text is None:
        try:
            text = ledger.get_trace(base_id).text
        except LedgerError:
            logger.warning(
                "base trace %s is not in the run; insert_changed_reasoning is not checked", base_id
            )
    return text


def _chunks(tasks: Iterator[_Task], size: int) -> Iterator[list[_Task]]:
    chunk: list[_Task] = []
    for t in tasks:
        chunk.append(t)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def validate_run(
    run_dir: str | os.PathLike[str],
    *,
    config: ValidationConfig | None = None,
    workers: int = 1,
    progress: bool = True,
    judge: str | None = None,
) -> ValidationReport:
    """Validate the traces of ``run_dir`` that lack a verdict for ``config``; store them; write the report.

    ``workers > 1`` validates chunks of traces in a process pool. Verdicts are committed chunk by
    chunk, so an interrupted call keeps what it finished and the next call picks up the rest.
    ``judge``: the name of an ``lbdata judge`` of the run; a back it found a refuted claim in is
    ``back_ungrounded`` (those verdicts are stored under a key of both configs, made again every call).
    """
    config = config or ValidationConfig()
    chash = config.config_hash
    run = Path(run_dir)
    start = time.perf_counter()
    totals: Counter[str] = Counter()
    # Two connections: one streams the traces, the other commits verdicts (WAL lets them overlap).
    with Ledger.open(run) as reader, Ledger.open(run) as writer:
        if judge is not None:  # an unknown judge is said before any work
            from lbdata.judge import judge_hash_of

            judge_hash_of(reader, judge)
        done = reader.verdict_trace_ids(chash)
        pending_ids = reader.done_trace_ids() - done

        with ProgressBar("validate", len(pending_ids), enabled=progress, unit="traces", transient=True) as bar:

            def store(result: tuple[list[Verdict], dict[str, int]]) -> None:
                verdicts, stats = result
                writer.put_verdicts(verdicts)
                totals.update(stats)
                totals["validated"] += len(verdicts)
                bar.update(advance=len(verdicts))

            # No sympy worker is started ahead: most runs never need one, and on one core its start would take
            # the validators' time. The first answer that needs it starts it (not counted against its limit).
            if workers <= 1:
                for chunk in _chunks(_pending_tasks(reader, done), CHUNK_SIZE):
                    store(_validate_chunk(chunk, config))
            else:
                ids = sorted(pending_ids)
                with ProcessPoolExecutor(
                    max_workers=workers, initializer=_init_pool_worker, initargs=(str(run),)
                ) as pool:
                    pending: set[Future[tuple[list[Verdict], dict[str, int]]]] = set()
                    for i in range(0, len(ids), CHUNK_SIZE):
                        pending.add(pool.submit(_validate_ids, ids[i : i + CHUNK_SIZE], config))
                        if len(pending) >= 2 * workers:
                            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                            for fut in finished:
                                store(fut.result())
                    for fut in pending:
                        store(fut.result())
        judged_key = None
        if judge is not None:
            from lbdata.judge import judged_verdicts

            judged_key, judged = judged_verdicts(reader, chash, judge)
            writer.put_verdicts(judged)
        elapsed = time.perf_counter() - start
        report = _report(
            reader, config, validated=totals["validated"], timeouts=totals["timeouts"], elapsed=elapsed,
            key=judged_key, judge=judge,
        )
    write_text_atomic(run / "validation.json", report.model_dump_json(indent=2) + "\n")
    write_text_atomic(run / "validation.md", report.to_markdown())
    return report


def _report(
    ledger: Ledger, config: ValidationConfig, *, validated: int, timeouts: int, elapsed: float,
    key: str | None = None, judge: str | None = None,
) -> ValidationReport:
    chash = key or config.config_hash
    per_variant: dict[str, list[int]] = {}  # variant -> [traces, accepted]
    reasons: Counter[str] = Counter()
    per_variant_reasons: dict[str, Counter[str]] = {}
    n = accepted = matched = 0
    for variant, ok, codes, match in ledger.verdict_tally(chash):
        n += 1
        counts = per_variant.setdefault(variant, [0, 0])
        counts[0] += 1
        if ok:
            counts[1] += 1
            accepted += 1
        reasons.update(codes)
        per_variant_reasons.setdefault(variant, Counter()).update(codes)
        matched += match >= 1.0
    return ValidationReport(
        run=str(ledger.run_dir),
        config_hash=chash,
        config=config.model_dump(mode="json") | ({"judge": judge} if judge else {}),
        traces=n,
        validated_now=validated,
        accepted=accepted,
        rejected=n - accepted,
        per_variant={
            v: VariantCounts(traces=t, accepted=a, rejected=t - a) for v, (t, a) in sorted(per_variant.items())
        },
        reasons=dict(reasons.most_common()),
        reasons_per_variant={k: dict(c.most_common()) for k, c in sorted(per_variant_reasons.items())},
        answer_match_rate=matched / n if n else 0.0,
        answer_timeouts=timeouts,
        elapsed_s=round(elapsed, 3),
        traces_per_s=round(validated / elapsed, 1) if elapsed > 0 and validated else 0.0,
    )


