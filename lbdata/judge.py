"""``lbdata judge``: a vision-language model checks the visual claims of every ``<back>`` against the image.

A second pass over a run. Each trace with ``<back>`` segments goes, with its image and question, to a
model on any OpenAI-compatible endpoint; the judge prompt (``prompts/judge/claims.jinja``) asks for one
JSON object::

    {"claims": [{"claim": "the tallest bar reaches 40", "supported": true}, ...]}

where ``supported`` is true (the image supports the claim), false (it contradicts it) or null (the image
does not tell). The judged text is untrusted (a teacher wrote the backs, a source the question): before it
enters the prompt, anything that looks like the prompt's own ``[BEGIN BACK n]`` / ``[END BACK n]`` markers
(any case, spacing or bracket) is rewritten in parentheses (``neutralise_markers``), so a back cannot
close its segment early or open a fake one, and the prompt tells the judge that the text between the
markers is data to check, never instructions. Both the template text and that rewriting rule are part of
the judge's prompt hash, so changing either makes a new judge config. The requests go through the teacher request sender (``lbdata.generate.sender``): the run's
request cache, the budget, rate limits, retries with backoff, the price table; a progress bar shows spend.

An answer that is not that JSON shape is asked for again (it counts as a retry, ``malformed_judgment``);
after the retries the trace is recorded as *unjudged* with the error — a judgment is never guessed. A
later ``lbdata judge`` asks again for unjudged traces only.

Judgments are stored in the run ledger per trace and judge config (``judgments``; the name given with
``--name`` maps to one config in ``judges``), with the sha256 of the text judged: a trace whose text is
not the one judged has no judgment. ``lbdata validate --judge NAME`` turns a refuted claim into the
reason ``back_ungrounded``; ``lbdata build --judge NAME --require-judged`` also rejects back traces the
judge has not judged (``back_unjudged``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError

from lbdata.errors import RequestFailed, UsageError
from lbdata.generate.sender import BudgetStop, Pricer, RetryPolicy, Sender, Spend, bump, load_price
from lbdata.hashing import content_hash, sha256_text
from lbdata.ledger import Ledger
from lbdata.records import Trace, Usage, Verdict
from lbdata.teachers.base import TeacherResponse, TraceRequest, TransientError
from lbdata.teachers.openai import OpenAITeacher
from lbdata.templates import environment

JUDGE_TEMPLATE = "judge/claims.jinja"
TYPICAL_JUDGE_COMPLETION_TOKENS = 200
"""Completion tokens a dry run assumes per judgment before the run has any (a short JSON list of claims)."""
UNGROUNDED = "back_ungrounded"
UNJUDGED = "back_unjudged"

_BACK = re.compile(r"<back>(.*?)</back>", re.S)
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S | re.I)
_OPENERS, _CLOSERS = "[［【〚⟦〔", "]］】〛⟧〕"
_GAP = r"[\s\u200b-\u200d\u2060\ufeff_\-]*"  # spaces, zero-width characters, _ or - between the words
_MARKER_LOOKALIKE = re.compile(
    rf"[{re.escape(_OPENERS)}]{_GAP}((?:begin|end){_GAP}back[^{re.escape(_CLOSERS)}\n]{{0,40}}?)"
    rf"{_GAP}(?:[{re.escape(_CLOSERS)}]|(?=\n)|$)",
    re.I,
)
"""A bracketed ``BEGIN BACK``/``END BACK`` in any case, spacing or bracket: what could pass for a segment marker."""


# ---------------------------------------------------------------------------- the answer
class Claim(BaseModel):
    model_config = ConfigDict(extra="ignore")

    claim: StrictStr = Field(min_length=1)
    supported: StrictBool | None


class JudgeAnswer(BaseModel):
    """The fixed shape of a judge's answer."""

    model_config = ConfigDict(extra="ignore")

    claims: list[Claim]

    @property
    def refuted(self) -> list[str]:
        return [c.claim for c in self.claims if c.supported is False]


def parse_judgment(text: str) -> JudgeAnswer:
    """The judge's answer; ``ValueError`` (one line) when it is not ``{"claims": [{"claim", "supported"}]}``."""
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:  # a model that wraps its JSON in a markdown fence still answered in the shape
        body = fenced.group(1)
    try:
        return JudgeAnswer.model_validate(json.loads(body))
    except (ValueError, ValidationError) as exc:
        first = exc.errors()[0] if isinstance(exc, ValidationError) and exc.errors() else None
        why = f"{'.'.join(map(str, first['loc']))}: {first['msg']}" if first else "not JSON"
        raise ValueError(f"the answer is not the judge's JSON shape ({why})") from None


def neutralise_markers(text: str) -> str:
    """``text`` with every look-alike of the judge prompt's segment markers rewritten in parentheses
    (``[END BACK 1]`` -> ``(END BACK 1)``), so untrusted text can neither end its segment nor start another."""
    return _MARKER_LOOKALIKE.sub(lambda m: f"({m.group(1).strip()})", text)


def backs_of(text: str) -> list[str]:
    return [b.strip() for b in _BACK.findall(text) if b.strip()]


# ---------------------------------------------------------------------------- the judge "teacher"
class JudgeTeacher(OpenAITeacher):
    """An ``OpenAITeacher`` whose prompt is the judge template (the trace comes in ``request.base_trace``)
    and whose answer must parse as a ``JudgeAnswer`` (else a retryable ``malformed_judgment``)."""

    def __init__(self, model: str, *, temperature: float = 0.0, max_tokens: int = 1024, **options: Any):
        super().__init__(model, temperature=temperature, max_tokens=max_tokens, **options)
        self._judge_env = environment("prompts")
        self._judge_template = self._judge_env.get_template(JUDGE_TEMPLATE)
        self.wasted: dict[int, Usage] = {}  # usage of malformed answers, by request (they were paid for)

    def prompt_hash(self, variant: str = "", mode: str = "") -> str:
        """The judge template's text and the marker rewriting rule: a change to either is a new judge."""
        from lbdata.prompts import template_hash

        return sha256_text(f"{template_hash(JUDGE_TEMPLATE)}\n{_MARKER_LOOKALIKE.pattern}")[:16]

    def render_text(self, request: TraceRequest) -> str:
        problem = request.problem
        key = ("judge", problem.id, problem.question, tuple(problem.choices or ()), request.base_trace)
        text = self._rendered.get(key)  # type: ignore[arg-type]
        if text is None:
            if len(self._rendered) >= 1024:
                self._rendered.clear()
            choices = ([{"letter": chr(ord("A") + i), "text": neutralise_markers(c)}
                        for i, c in enumerate(problem.choices)] if problem.choices else None)
            backs = [neutralise_markers(b) for b in backs_of(request.base_trace or "")]
            text = self._judge_template.render(question=neutralise_markers(problem.question.strip()),
                                               choices=choices, n_images=len(problem.images), backs=backs).strip()
            self._rendered[key] = text  # type: ignore[index]
        return text

    async def generate(self, request: TraceRequest) -> TeacherResponse:
        response = await super().generate(request)
        try:
            parse_judgment(response.text)
        except ValueError as exc:
            used = self.wasted.get(id(request), Usage())
            self.wasted[id(request)] = Usage(prompt_tokens=used.prompt_tokens + response.usage.prompt_tokens,
                                             completion_tokens=used.completion_tokens + response.usage.completion_tokens,
                                             cached_tokens=used.cached_tokens + response.usage.cached_tokens,
                                             requests=used.requests + 1)
            raise TransientError("malformed_judgment", str(exc)) from None
        return response


# ---------------------------------------------------------------------------- settings
class JudgeConfig(BaseModel):
    """How to judge a run. Public settings only: the API key never enters this model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(default="gpt-4o", description="the judge model (a vision-language model)")
    name: str | None = Field(default=None, description="the judge's name in the run (default: from the model)")
    base_url: tuple[str, ...] = Field(
        default=(), description="OpenAI-compatible server(s); the OpenAI API when none is given"
    )
    detail: str = Field(default="auto", description="image detail sent to the judge")
    temperature: float = Field(default=0.0, ge=0.0, description="judge sampling temperature")
    max_tokens: int = Field(default=1024, ge=1, description="judge completion limit")
    timeout: float = Field(default=300.0, gt=0, description="seconds to wait for one answer")
    concurrency: int = Field(default=8, ge=1, description="cap on judge requests in flight")
    retries: int = Field(default=3, ge=0, description="retries of one request (429, 5xx, timeouts, malformed answers)")
    rpm: float | None = Field(default=None, gt=0, description="requests per minute")
    tpm: float | None = Field(default=None, gt=0, description="tokens per minute")
    budget_usd: float | None = Field(default=None, gt=0, description="stop before this judge's spend on the run "
                                     "would exceed this")
    use_cache: bool = Field(default=True, description="answer a request from the run's cache when answered before")
    prices: str | None = Field(default=None, description="price table (YAML) merged over lbdata/prices.yaml")

    def judge_name(self) -> str:
        if self.name:
            return self.name
        return re.sub(r"[^A-Za-z0-9._-]+", "-", self.model.split("/")[-1]).strip("-").lower() or "judge"

    def teacher(self, api_key: str | None = None) -> JudgeTeacher:
        urls = list(self.base_url)
        return JudgeTeacher(self.model, base_url=(urls[0] if len(urls) == 1 else urls) or None, api_key=api_key,
                            detail=self.detail,  # type: ignore[arg-type]
                            temperature=self.temperature, max_tokens=self.max_tokens, timeout=self.timeout)


def judge_identity(teacher: JudgeTeacher) -> dict[str, Any]:
    """What decides a judgment: model, output-shaping parameters, the judge prompt (not where or how fast)."""
    return {"model": teacher.model, "params": teacher.info.params, "prompt": teacher.prompt_hash()}


@dataclass
class JudgeSummary:
    run_dir: Path
    name: str
    judge_hash: str
    back_traces: int = 0  # traces of the run with <back> segments
    skipped: int = 0  # already judged (the same text)
    judged: int = 0
    unjudged: int = 0
    unjudged_by_reason: dict[str, int] = field(default_factory=dict)
    refuted_traces: int = 0  # judged now with at least one refuted claim
    claims: int = 0
    claims_refuted: int = 0
    claims_unknown: int = 0
    not_started: int = 0
    requests: int = 0
    cache_hits: int = 0
    retries_by_reason: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    elapsed_s: float = 0.0


def _open_for_writing(run_dir: str | Path) -> Ledger:
    Ledger.open(run_dir).close()  # a run must exist: judging never creates one
    return Ledger.create(run_dir)  # adds the judgment tables to a ledger made before them


def _pending(ledger: Ledger, judge_hash: str, summary: JudgeSummary | None = None) -> Iterator[Trace]:
    done = {tid for tid, status, _ in ledger.iter_judgments(judge_hash) if status == "judged"}
    for trace in ledger.iter_traces():
        if trace.variant == "plain" or not backs_of(trace.text):
            continue
        if summary is not None:
            summary.back_traces += 1
        if trace.id in done:
            if summary is not None:
                summary.skipped += 1
            continue
        yield trace


def _register(ledger: Ledger, name: str, teacher: JudgeTeacher) -> str:
    from lbdata.workspace import check_name

    check_name(name, "judge name")
    identity = judge_identity(teacher)
    jhash = content_hash(identity, 16)
    known = ledger.put_judge(name, jhash, identity)
    if known != jhash:
        raise UsageError(f"judge {name!r} of run {ledger.run_dir} was made with other settings (model, "
                         "temperature, max tokens, detail or prompt); pass a new --name or repeat its settings")
    return jhash


def judge_run(run_dir: str | Path, config: JudgeConfig, *, api_key: str | None = None, progress: bool = False,
              teacher: JudgeTeacher | None = None) -> JudgeSummary:
    """Judge every back trace of ``run_dir`` not yet judged under ``config``; store the judgments.

    Raises ``BudgetExceeded`` after a clean stop at the budget and ``TeacherError`` when the judge cannot
    be used at all (bad key, unknown model); every judgment made so far stays in the ledger.
    """
    from lbdata.errors import BudgetExceeded
    from lbdata.workspace import RunLock

    started = time.perf_counter()
    teacher = teacher or config.teacher(api_key)
    with _open_for_writing(run_dir) as ledger, RunLock(ledger.run_dir):
        name = config.judge_name()
        jhash = _register(ledger, name, teacher)
        summary = JudgeSummary(run_dir=ledger.run_dir, name=name, judge_hash=jhash)
        traces = list(_pending(ledger, jhash, summary))
        judging = _Judging(_sender(config, ledger, teacher, jhash), ledger, teacher, jhash, summary)
        asyncio.run(_judge_all(judging, traces, config.concurrency, progress))
        c = judging.sender.counts
        summary.requests, summary.cache_hits = c.requests, c.cache_hits
        summary.retries_by_reason = dict(c.retries_by_reason)
        summary.prompt_tokens, summary.completion_tokens = c.prompt_tokens, c.completion_tokens
        summary.cost_usd = c.cost_usd
        summary.elapsed_s = time.perf_counter() - started
        if judging.fatal is not None:
            raise judging.fatal
        if judging.budget_stop is not None:
            raise BudgetExceeded(
                f"budget reached: ${judging.sender.spent:.4f} of ${config.budget_usd:.2f} spent by judge {name} on this "
                f"run, and the next request could cost up to ${judging.budget_stop.worst_usd:.4f}; "
                f"{summary.not_started} traces not judged. Re-run the same command with a higher --budget-usd to "
                "resume from there")
    return summary


def _sender(config: JudgeConfig, ledger: Ledger, teacher: JudgeTeacher, jhash: str) -> Sender:
    """The judge's requests go the way a teacher's do: the run's request cache, the budget (this judge's spend
    on the run so far counts), rate limits, retries with backoff, the price table."""
    from lbdata.ratelimit import RateLimiter

    price = load_price(teacher.info.model, config.prices, config.budget_usd)
    return Sender(teacher, policy=RetryPolicy(config.retries), limiter=RateLimiter(config.rpm, config.tpm),
                  pricer=Pricer(price), cache=ledger if config.use_cache else None, budget_usd=config.budget_usd,
                  spent=ledger.judgment_cost(jhash) if config.budget_usd is not None else 0.0)


@dataclass
class _Judging:
    """One judge pass in flight: where its requests go, where its judgments land, and how it stops."""

    sender: Sender
    ledger: Ledger
    teacher: JudgeTeacher
    jhash: str
    summary: JudgeSummary
    stopping: bool = False
    fatal: BaseException | None = None
    budget_stop: BudgetStop | None = None

    def stats(self, minutes: float) -> str:
        from lbdata.generate.summary import GenerateSummary, stats_text

        counts = dataclasses.asdict(self.sender.counts)
        return stats_text(GenerateSummary(run_dir=self.ledger.run_dir, failures=self.summary.unjudged, **counts),
                          False, minutes)


async def _judge_all(judging: _Judging, traces: list[Trace], concurrency: int, progress: bool) -> None:
    from lbdata.progress import ProgressBar

    queue: asyncio.Queue[Trace | None] = asyncio.Queue()
    for t in traces:
        queue.put_nowait(t)
    bar = ProgressBar("judge", len(traces), enabled=progress, unit="traces")
    done = 0

    def stats() -> str:
        return judging.stats(max(bar.elapsed_s, 1e-6) / 60)

    async def worker() -> None:
        nonlocal done
        while True:
            try:
                trace = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            if judging.stopping:
                judging.summary.not_started += 1
            else:
                await _judge_one(judging, trace)
            done += 1
            bar.update(completed=done, stats=stats)

    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        bar.update(completed=done, force=True, stats=stats)
        bar.close()
        await judging.teacher.aclose()


async def _ask(judging: _Judging, request: TraceRequest, spend: Spend) -> tuple[JudgeAnswer, bool]:
    """The judge's parsed answer and whether it came from the cache; malformed answers paid for count in
    the spend."""
    sender = judging.sender
    try:
        response, cached = await sender.send(request, spend)
    finally:
        wasted = judging.teacher.wasted.pop(id(request), None)
        if wasted is not None:
            usage = sender.pricer.priced(wasted, 0, 0)
            sender.charge(usage)
            spend.add(usage)
    return parse_judgment(response.text), cached


async def _judge_one(judging: _Judging, trace: Trace) -> None:
    from lbdata.generate import trace_seed

    ledger, summary, jhash = judging.ledger, judging.summary, judging.jhash
    problem = ledger.get_problem(trace.problem_id)
    images = [ledger.image_bytes(ref.filename) for ref in problem.images]
    request = TraceRequest(problem=problem, images=images, variant=trace.variant, mode=trace.mode,
                           base_trace=trace.text, seed=trace_seed(trace.id))
    spend = Spend()
    text_hash = sha256_text(trace.text)
    record: dict[str, Any] = {"trace_id": trace.id}
    try:
        answer, cached = await _ask(judging, request, spend)
    except (RequestFailed, ValueError) as exc:
        reason = str(exc).split(":", 1)[0] if isinstance(exc, RequestFailed) else "malformed_judgment"
        summary.unjudged += 1
        bump(summary.unjudged_by_reason, reason)
        ledger.put_judgment(trace.id, jhash, text_hash, "unjudged", record | {"error": str(exc)}, spend.cost_usd)
        return
    except BudgetStop as exc:
        summary.not_started += 1
        judging.budget_stop = judging.budget_stop or exc
        judging.stopping = True
        return
    except Exception as exc:  # a fatal judge error (bad key, unknown model) stops everything
        judging.fatal = judging.fatal or exc
        judging.stopping = True
        judging.sender.cancel()
        return
    record |= {"claims": [c.model_dump() for c in answer.claims],
               "usage": {"prompt_tokens": spend.prompt_tokens, "completion_tokens": spend.completion_tokens,
                         "cost_usd": spend.cost_usd, "cached": cached}}
    with ledger.transaction():  # the raw answer and the judgment land together
        spend.flush(ledger)
        ledger.put_judgment(trace.id, jhash, text_hash, "judged", record, 0.0 if cached else spend.cost_usd)
    summary.judged += 1
    summary.claims += len(answer.claims)
    summary.claims_refuted += len(answer.refuted)
    summary.claims_unknown += sum(c.supported is None for c in answer.claims)
    summary.refuted_traces += bool(answer.refuted)


# ---------------------------------------------------------------------------- dry run
def judge_dry_run(run_dir: str | Path, config: JudgeConfig, *, api_key: str | None = None):
    """Count and price the requests ``judge_run`` would send; sends nothing and writes nothing."""
    from lbdata.generate import DryRunEstimate
    from lbdata.pricing import ImageBilling, images_tokens, load_prices
    from lbdata.teachers.openai import MissingApiKey

    try:
        teacher = config.teacher(api_key)
    except MissingApiKey:  # nothing is sent, so no key is needed to count
        teacher = config.teacher("dry-run-sends-nothing")
    price = load_prices(config.prices).lookup(config.model)
    out = DryRunEstimate(model=config.model, priced=price is not None)
    billing = price.image if price else ImageBilling()
    with Ledger.open(run_dir) as ledger:
        jhash = content_hash(judge_identity(teacher), 16)
        known = ledger.get_judge(config.judge_name())
        if known is not None and known[0] != jhash:
            raise UsageError(f"judge {config.judge_name()!r} of run {ledger.run_dir} was made with other settings; "
                             "pass a new --name or repeat its settings")
        lengths = [r["usage"]["completion_tokens"] for _, status, r in ledger.iter_judgments(jhash, current=False)
                   if status == "judged" and r.get("usage", {}).get("completion_tokens")]
        typical = round(sum(lengths) / len(lengths)) if lengths else TYPICAL_JUDGE_COMPLETION_TOKENS
        out.typical_completion_tokens = typical
        summary = JudgeSummary(run_dir=ledger.run_dir, name=config.judge_name(), judge_hash=jhash)
        for trace in _pending(ledger, jhash, summary):
            problem = ledger.get_problem(trace.problem_id)
            request = TraceRequest(problem=problem, images=[], variant=trace.variant, base_trace=trace.text)
            est = teacher.estimate(request)
            img = images_tokens(est.images, billing)
            out.requests += 1
            out.problems += 1
            out.image_tokens += img
            out.prompt_tokens += est.text_tokens + img
            out.max_completion_tokens += est.max_completion_tokens
            out.completion_tokens += min(typical, est.max_completion_tokens)
        out.skipped = summary.skipped
    if price is not None:
        out.input_per_mtok, out.output_per_mtok = price.input, price.output
        out.cost_usd = price.cost(out.prompt_tokens, out.completion_tokens)
        out.max_cost_usd = price.cost(out.prompt_tokens, out.max_completion_tokens)
    return out


# ---------------------------------------------------------------------------- verdicts with the judge
def judged_hash(validator_hash: str, judge_hash: str, require: bool = False) -> str:
    """The verdict key of validator + judge (+ whether a back trace must have been judged)."""
    return content_hash({"validator": validator_hash, "judge": judge_hash, "require_judged": require}, 16)


def judge_hash_of(ledger: Ledger, name: str) -> str:
    known = ledger.get_judge(name)
    if known is None:
        names = ", ".join(ledger.judge_names()) or "none"
        raise UsageError(f"run {ledger.run_dir} has no judge {name!r} (judges: {names}); judge it first with "
                         f"`lbdata judge {ledger.run_dir} --model MODEL --name {name}`")
    return known[0]


def judged_verdicts(ledger: Ledger, validator_hash: str, name: str, *,
                    require: bool = False) -> tuple[str, list[Verdict]]:
    """The run's current verdicts under ``validator_hash`` with the judge's word added: a back with a refuted
    claim is ``back_ungrounded``; with ``require``, a back trace the judge has not judged is ``back_unjudged``.
    Returns (their key, the verdicts); a trace without a <back> is left as the validators judged it."""
    jhash = judge_hash_of(ledger, name)
    key = judged_hash(validator_hash, jhash, require)
    judged = {tid: record for tid, status, record in ledger.iter_judgments(jhash) if status == "judged"}
    with_backs = {t.id for t in ledger.iter_traces() if t.variant != "plain" and backs_of(t.text)}
    out = []
    for v in ledger.iter_verdicts(validator_hash, current=True):
        reasons = list(v.reasons)
        scores = dict(v.scores)
        if v.trace_id in with_backs:
            record = judged.get(v.trace_id)
            if record is not None:
                claims = record.get("claims", [])
                refuted = sum(c.get("supported") is False for c in claims)
                scores["claims_refuted"] = float(refuted)
                if refuted and UNGROUNDED not in reasons:
                    reasons.append(UNGROUNDED)
            elif require and UNJUDGED not in reasons:
                reasons.append(UNJUDGED)
        out.append(v.model_copy(update={"reasons": reasons, "accepted": not reasons, "scores": scores,
                                        "config_hash": key}))
    return key, out


__all__ = ["Claim", "JudgeAnswer", "JudgeConfig", "JudgeSummary", "JudgeTeacher", "judge_dry_run", "judge_run",
           "judged_verdicts", "neutralise_markers", "parse_judgment"]
