"""``dry_run``: count and price what ``generate`` would send, from the same plan, sending nothing.

The jobs come from the run's own ``Planner`` (the same base traces, the same skips, the same attempt a
validating run asks for next, the same samples asked for together with ``n``), so the count is what
the run sends when every answer comes back at the first try and usable.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lbdata.generate.config import GenerateConfig
from lbdata.generate.engine import check_batch, planner_for
from lbdata.generate.planner import Group, Job, Planner
from lbdata.generate.run import check_config, check_scene_source, open_source, open_teacher
from lbdata.ledger import Ledger
from lbdata.records import BadRow
from lbdata.teachers.base import RemoteTeacher, Teacher, TraceRequest

if TYPE_CHECKING:
    from lbdata.pricing import ImageBilling, ModelPrice
    from lbdata.teachers.batch import Packer


@dataclass
class DryRunEstimate:
    """What a run would send: requests, tokens and USD, counted without sending anything."""

    model: str
    requests: int = 0  # traces asked for (a validating run: the next attempt of each trace not accepted yet)
    calls: int = 0  # requests to the teacher: the samples asked for together with n are one
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


@dataclass
class _Pricing:
    """What the dry run needs to price a request: the teacher, its image billing, the typical answer length,
    and (batch mode) the packer of batch input files."""

    teacher: RemoteTeacher
    billing: ImageBilling
    typical: int
    packer: Packer | None

    def add(self, out: DryRunEstimate, request: TraceRequest, samples: int) -> None:
        """One request for ``samples`` traces (with ``n`` when more than one): its prompt once, every answer."""
        from lbdata.pricing import images_tokens
        from lbdata.teachers.batch import batch_line

        est = self.teacher.estimate(request)
        if self.packer is not None:
            line = batch_line(self.teacher.request_key(request), self.teacher.chat_body(request))
            out.batches += self.packer.add(len(line))
            out.batch_bytes += len(line)
        img = images_tokens(est.images, self.billing)
        out.image_tokens += img
        out.prompt_tokens += est.text_tokens + img
        out.max_completion_tokens += est.max_completion_tokens * samples
        out.completion_tokens += min(self.typical, est.max_completion_tokens) * samples


def dry_run(
    config: GenerateConfig, run_dir: str | Path, *, teacher: Teacher | None = None, api_key: str | None = None
) -> DryRunEstimate:
    """Count the requests ``generate`` would send (traces already in ``run_dir`` skipped) and price them.

    Sends nothing and writes nothing. Completion tokens are estimated by the run's mean so far, else by
    the price table's ``typical_completion_tokens``; the upper bound assumes every answer hits ``max_tokens``.
    """
    from lbdata.pricing import load_prices
    from lbdata.teachers.openai import MissingApiKey

    check_config(config)
    source = open_source(config)
    check_scene_source(config)
    try:
        teacher = open_teacher(config, teacher, api_key)
    except MissingApiKey:  # nothing is sent, so no key is needed to count
        teacher = open_teacher(config, None, "dry-run-sends-nothing")
    table = load_prices(config.prices)
    price = table.lookup(teacher.info.model)
    out = DryRunEstimate(model=teacher.info.model, max_attempts=config.max_attempts, priced=price is not None,
                         batch=config.batch)
    check_batch(config, teacher)
    if config.batch:
        from lbdata.teachers.batch import check_teacher

        check_teacher(teacher)  # what the run would refuse, the plan refuses too
    run_dir = Path(run_dir)
    ledger = Ledger.open(run_dir) if (run_dir / "ledger.sqlite").exists() else None
    try:
        out.typical_completion_tokens = _typical(ledger, table.typical_completion_tokens, out)
        planner = planner_for(config, teacher, ledger, record=False)
        pricing = _pricing(config, teacher, price, out.typical_completion_tokens)
        _count(out, planner, itertools.islice(source, config.limit), pricing)
    finally:
        if ledger is not None:
            ledger.close()
    if price is not None:
        out.input_per_mtok, out.output_per_mtok = price.input, price.output
        out.cost_usd = price.cost(out.prompt_tokens, out.completion_tokens, batch=config.batch)
        out.max_cost_usd = price.cost(out.prompt_tokens, out.max_completion_tokens, batch=config.batch)
    return out


def _typical(ledger: Ledger | None, default: int, out: DryRunEstimate) -> int:
    """The run's mean completion length so far (else ``default``); sets the run's acceptance on ``out``."""
    if ledger is None:
        return default
    from lbdata.pricing import run_cost

    out.acceptance = run_cost(ledger).acceptance
    lengths = [t.usage.completion_tokens for t in ledger.iter_traces() if t.usage.completion_tokens]
    return round(sum(lengths) / len(lengths)) if lengths else default


def _pricing(config: GenerateConfig, teacher: Teacher, price: ModelPrice | None, typical: int) -> _Pricing | None:
    if not isinstance(teacher, RemoteTeacher):
        return None
    from lbdata.pricing import ImageBilling
    from lbdata.teachers.batch import Packer

    packer = Packer(config.batch_max_requests, config.batch_max_bytes) if config.batch else None
    return _Pricing(teacher, price.image if price else ImageBilling(), typical, packer)


def _count(out: DryRunEstimate, planner: Planner, rows, pricing: _Pricing | None) -> None:
    """Walk the plan as the run would: every unit with something to send is one call to the teacher."""
    for row in rows:
        if isinstance(row, BadRow):
            out.bad_rows += 1
            continue
        out.problems += 1
        plan = planner.plan(row)
        out.skipped += plan.skipped
        if planner.config.mode == "insert" and not plan.bases:
            out.no_base_trace += 1
        for sample_set in plan.sets:
            for unit in sample_set.units(n_ok=True):
                _count_unit(out, planner, unit, pricing)


def _count_unit(out: DryRunEstimate, planner: Planner, unit: Job | Group, pricing: _Pricing | None) -> None:
    if isinstance(unit, Group):
        jobs = unit.jobs
        request = dataclasses.replace(planner.request(jobs[0], 0, jobs[0].first_id), n=len(jobs))
    else:
        attempt, _ = planner.next_attempt(unit)
        if attempt is None:  # accepted or out of attempts: nothing to ask
            out.skipped += 1
            return
        jobs = [unit]
        request = planner.request(unit, attempt, planner.trace_id(unit, attempt))
    out.requests += len(jobs)
    out.calls += 1
    if pricing is not None:
        pricing.add(out, request, len(jobs))


__all__ = ["DryRunEstimate", "dry_run"]
