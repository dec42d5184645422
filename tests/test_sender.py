"""The sender's retry policy, budget and cache, with a scripted in-process teacher (no server)."""

from __future__ import annotations

import asyncio

import pytest

from lbdata.errors import RequestFailed, TeacherError
from lbdata.generate import sender as sender_module
from lbdata.generate.sender import BudgetStop, Pricer, RetriesExhausted, RetryPolicy, Sender, Spend
from lbdata.pricing import ModelPrice
from lbdata.records import Problem, TeacherInfo, Usage
from lbdata.teachers.base import RemoteTeacher, RequestEstimate, TeacherResponse, TraceRequest, TransientError


class Scripted(RemoteTeacher):
    """Answers with the next item of ``script``: an exception is raised, a string is the answer."""

    name = "scripted"

    def __init__(self, *script):
        self.script = list(script)
        self.calls = 0

    @property
    def info(self) -> TeacherInfo:
        return TeacherInfo(backend="scripted", model="m")

    def prompt_hash(self, variant: str, mode: str) -> str:
        return "p"

    def request_key(self, request: TraceRequest) -> str:
        return f"key:{request.problem.id}"

    def estimate(self, request: TraceRequest) -> RequestEstimate:
        return RequestEstimate(text_tokens=1000, images=(), max_completion_tokens=1000)

    async def generate(self, request: TraceRequest) -> TeacherResponse:
        self.calls += 1
        item = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(item, BaseException):
            raise item
        return TeacherResponse(text=item, usage=Usage(prompt_tokens=1000, completion_tokens=100))


REQUEST = TraceRequest(problem=Problem(id="s:1", images=[], question="q", answer="1", source="s"), images=[], variant="semantic_back")
FAST = RetryPolicy(retries=3, initial_s=0.001, max_s=0.002)


def send(s: Sender, request: TraceRequest = REQUEST) -> tuple[TeacherResponse, bool]:
    return asyncio.run(s.send(request, Spend()))


def test_retryable_errors_are_retried_until_an_answer():
    teacher = Scripted(TransientError("rate_limited"), TransientError("server_error"), "ok")
    response, cached = send(Sender(teacher, policy=FAST))
    assert (response.text, cached, teacher.calls) == ("ok", False, 3)
    assert response.usage.requests == 3  # every try is in the usage


def test_retries_are_counted_by_reason_in_the_sender():
    teacher = Scripted(TransientError("rate_limited"), TransientError("rate_limited"), "ok")
    s = Sender(teacher, policy=FAST)
    send(s)
    assert s.counts.requests == 3 and s.counts.retries_by_reason == {"rate_limited": 2}


def test_the_backoff_is_jittered_under_a_doubling_ceiling():
    policy = RetryPolicy(retries=8, initial_s=1.0, max_s=5.0)
    for failures, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (6, 5.0)):
        waits = [policy.backoff(failures) for _ in range(50)]
        assert all(0 <= w <= ceiling for w in waits)
        assert len(set(waits)) > 40  # full jitter: no two clients retry in step
    hinted = [policy.delay(TransientError("rate_limited", retry_after=2.0), 1) for _ in range(20)]
    assert all(2.0 <= w <= 3.0 for w in hinted) and len(set(hinted)) > 1  # Retry-After, plus a little jitter


def test_the_policy_reads_the_module_backoff_when_it_has_none(monkeypatch):
    monkeypatch.setattr(sender_module, "BACKOFF_INITIAL_S", 0.5)
    monkeypatch.setattr(sender_module, "BACKOFF_MAX_S", 0.75)
    assert all(RetryPolicy().backoff(4) <= 0.75 for _ in range(50))


def test_a_retry_after_pauses_every_request():
    teacher = Scripted(TransientError("rate_limited", retry_after=0.05), "ok")
    s = Sender(teacher, policy=FAST)
    send(s)
    assert s.limiter.requests.paused_until > 0


@pytest.mark.parametrize("error", [TeacherError("bad key"), RequestFailed("context_length: too long")])
def test_an_error_that_cannot_pass_is_not_retried(error):
    teacher = Scripted(error, "ok")
    with pytest.raises(type(error)):
        send(Sender(teacher, policy=FAST))
    assert teacher.calls == 1


def test_after_the_last_retry_the_request_failed_with_its_reason():
    teacher = Scripted(TransientError("server_error", "503"))
    with pytest.raises(RetriesExhausted, match=r"server_error: 503 \(gave up after 4 tries\)") as info:
        send(Sender(teacher, policy=FAST))
    assert teacher.calls == 4 and info.value.tries == 4 and isinstance(info.value, RequestFailed)


def test_no_server_taking_the_connection_stops_the_run():
    teacher = Scripted(TransientError("connection_error", "refused"))
    with pytest.raises(TeacherError, match="cannot reach .*refused.*gave up after 2 tries"):
        send(Sender(teacher, policy=RetryPolicy(retries=1, initial_s=0.001)))


def test_a_request_that_could_pass_the_budget_is_not_sent():
    price = ModelPrice(input=10.0, output=10.0)  # worst case of one request: 2,000 tokens = $0.02
    teacher = Scripted("ok")
    s = Sender(teacher, policy=FAST, pricer=Pricer(price), budget_usd=0.05, spent=0.02)
    response, _ = send(s)
    assert response.usage.cost_usd == pytest.approx(0.011) and s.spent == pytest.approx(0.031)
    with pytest.raises(BudgetStop) as info:
        send(s)
    assert info.value.worst_usd == pytest.approx(0.02) and teacher.calls == 1 and s.reserved == 0


def test_a_cached_answer_costs_nothing_and_sends_nothing(tmp_path):
    from lbdata.ledger import Ledger

    teacher = Scripted("ok")
    with Ledger.create(tmp_path / "run") as ledger:
        s = Sender(teacher, policy=FAST, cache=ledger)
        spend = Spend()
        asyncio.run(s.send(REQUEST, spend))
        spend.flush(ledger)
        response, cached = send(s)
    assert (response.text, cached, teacher.calls, s.counts.cache_hits) == ("ok", True, 1, 1)
