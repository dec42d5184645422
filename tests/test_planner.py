"""The planner: the run and the dry run enumerate the same jobs, so a dry run counts what the run sends.

An HTTP teacher (the local fake server) answers; each test runs ``dry_run`` and then ``generate`` on the
same run and compares the plan with the requests the server received.
"""

import json
from pathlib import Path

import pytest

from lbdata.generate import GenerateConfig, dry_run, generate, sender
from lbdata.ledger import Ledger
from tests.fake_openai_server import FakeOpenAI, write_problems


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    monkeypatch.setattr(sender, "BACKOFF_INITIAL_S", 0.01)


@pytest.fixture()
def server():
    with FakeOpenAI(hang_s=3.0) as srv:
        yield srv


def config(src: Path, server: FakeOpenAI, **kw) -> GenerateConfig:
    kw.setdefault("variants", "semantic")
    return GenerateConfig(source=f"jsonl:{src}", teacher="openai:fake-teacher", reveal_answer=True, limit=None,
                          concurrency=4, teacher_options={"base_url": server.url, "timeout": 2.0}, **kw)


def planned_then_sent(cfg: GenerateConfig, run: Path, server: FakeOpenAI):
    """(the dry run's estimate, the run's summary, the requests the run sent)."""
    estimate = dry_run(cfg, run)
    before = len(server.log)
    summary = generate(cfg, run)
    return estimate, summary, len(server.log) - before


def drift(monkeypatch):
    """The teacher rewrites the base reasoning it should only add backs to: every insert is rejected."""
    from tests import fake_openai_server as fake

    real = fake.insert_backs
    monkeypatch.setattr(fake, "insert_backs", lambda v, base, a: real(v, base, a).replace(
        "First I read the height", "I eyeball the picture and guess quickly, then wander off and read the height"
    ).replace("Then I read the right bar in the same way", "Afterwards some other unrelated words appear here"))


def test_a_whitespace_only_base_trace_is_no_base_trace_in_the_plan_and_in_the_run(tmp_path, server):
    src = write_problems(tmp_path / "src", 3, with_traces=True)
    rows = [json.loads(line) for line in src.read_text().splitlines()]
    rows[1]["rollout"] = "  \n\t "
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = config(src, server, mode="insert", columns={"trace": "rollout"})
    estimate, summary, sent = planned_then_sent(cfg, tmp_path / "run", server)
    assert (estimate.no_base_trace, estimate.requests, estimate.calls) == (1, 2, 2)
    assert summary.no_base_trace == 1 and summary.traces_new == {"semantic_back": 2}
    assert sent == 2 and all("What is 1+1" not in e.text for e in server.log)


def test_after_a_rejected_attempt_the_plan_counts_the_next_attempt_and_after_the_last_nothing(
        tmp_path, server, monkeypatch):
    drift(monkeypatch)
    src = write_problems(tmp_path / "src", 3, with_traces=True)
    run = tmp_path / "run"
    cfg = config(src, server, mode="insert", columns={"trace": "rollout"})
    generate(cfg, run)  # one attempt each, not validated: all three would be rejected
    assert len(server.log) == 3
    again = cfg.model_copy(update={"max_attempts": 2})
    with Ledger.open(run) as led:
        verdicts = len(list(led.iter_verdicts()))
    estimate = dry_run(again, run)
    assert (estimate.requests, estimate.calls, estimate.skipped) == (3, 3, 0)  # attempt 1 of each
    with Ledger.open(run) as led:
        assert len(list(led.iter_verdicts())) == verdicts  # the plan judged attempt 0 and wrote nothing
    summary = generate(again, run)
    assert len(server.log) == 3 + 3 and all(e.seed for e in server.log)
    assert summary.exhausted == 3 and summary.rejected == 6 and summary.traces_new == {"semantic_back": 3}
    spent = dry_run(again, run)  # both attempts of each trace are used up
    assert (spent.requests, spent.calls, spent.skipped) == (0, 0, 3)
    more = dry_run(cfg.model_copy(update={"max_attempts": 3}), run)
    assert (more.requests, more.calls) == (3, 3)


@pytest.mark.parametrize("kw", [
    {"samples": 3},
    {"variants": "semantic,solution"},
    {"variants": "semantic,solution", "samples": 2, "max_attempts": 2},
])
def test_the_dry_run_counts_the_requests_the_run_sends(tmp_path, server, kw):
    src = write_problems(tmp_path / "src", 4)
    estimate, summary, sent = planned_then_sent(config(src, server, **kw), tmp_path / "run", server)
    assert estimate.calls == sent and estimate.requests == sum(summary.traces_new.values())
    samples = kw.get("samples", 1)
    assert estimate.requests == 4 * len(kw.get("variants", "semantic").split(",")) * samples
    assert estimate.calls == estimate.requests // samples  # the samples of a prompt share one request (n)


def test_the_dry_run_of_a_half_done_run_counts_what_the_resumed_run_sends(tmp_path, server):
    src = write_problems(tmp_path / "src", 6)
    run = tmp_path / "run"
    cfg = config(src, server, variants="semantic,solution", samples=2)
    generate(cfg.model_copy(update={"limit": 3}), run)
    first = len(server.log)
    estimate, summary, sent = planned_then_sent(cfg, run, server)
    assert first == 6 and sent == estimate.calls == 6
    assert estimate.skipped == summary.traces_skipped == 12 and estimate.requests == 12
    assert dry_run(cfg, run).requests == 0
