"""The generation engine with an HTTP teacher, against the local fake server: retries, fail-fast, cache,
budget stop and resume, regeneration, insert mode, dry runs, keys, and a SIGKILL mid-run."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from lbdata import generate as engine
from lbdata.errors import BudgetExceeded, TeacherError
from lbdata.generate import GenerateConfig, generate, sender
from lbdata.insert import base_trace_id, get_base_trace
from lbdata.ledger import Ledger
from tests.fake_openai_server import FakeOpenAI, Fault, base_trace, write_problems

KEY = "sk-test-77a1e0c4b2f9d3"
LBDATA = [sys.executable, "-m", "lbdata.cli"]


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    monkeypatch.setattr(sender, "BACKOFF_INITIAL_S", 0.01)


@pytest.fixture()
def server():
    with FakeOpenAI(hang_s=3.0) as srv:
        yield srv


@pytest.fixture()
def problems(tmp_path) -> Path:
    return write_problems(tmp_path / "src", 6)


def config(src: Path, server: FakeOpenAI, **kw) -> GenerateConfig:
    options = {"base_url": server.url, "timeout": 2.0, **kw.pop("options", {})}
    kw.setdefault("variants", "semantic")
    kw.setdefault("concurrency", 4)
    kw.setdefault("limit", None)
    return GenerateConfig(source=f"jsonl:{src}", teacher="openai:fake-teacher", reveal_answer=True,
                          teacher_options=options, **kw)


def prices_file(tmp_path: Path, usd_per_mtok: float) -> str:
    path = tmp_path / "prices.yaml"
    path.write_text(f"models:\n  fake-teacher: {{input: {usd_per_mtok}, output: {usd_per_mtok}}}\n")
    return str(path)


def test_transient_faults_are_retried_and_counted(tmp_path, server, problems):
    server.set_faults([
        Fault("rate_limit", match="What is 0+1", times=2, retry_after=0.05),
        Fault("server_error", match="What is 1+1"),
        Fault("empty", match="What is 2+1"),
        Fault("malformed", match="What is 3+1"),
        Fault("timeout", match="What is 4+1"),
    ])
    s = generate(config(problems, server, options={"timeout": 0.5}), tmp_path / "run")
    assert s.failures == 0 and s.traces_new == {"semantic_back": 6}
    assert s.retries_by_reason == {"rate_limited": 2, "server_error": 1, "empty_response": 1,
                                   "malformed_response": 1, "timeout": 1}
    assert s.requests == 6 + 6 == len(server.log)
    with Ledger.open(tmp_path / "run") as led:
        by_problem = {t.problem_id: t for t in led.iter_traces()}
    assert by_problem["problems:p0"].usage.requests == 3 and by_problem["problems:p5"].usage.requests == 1


def test_a_request_that_keeps_failing_is_recorded_and_retried_next_run(tmp_path, server, problems):
    server.set_faults([Fault("server_error", match="What is 2+1", times=-1)])
    s = generate(config(problems, server, retries=2), tmp_path / "run")
    assert s.failures == 1 and s.failures_by_reason == {"server_error": 1}
    assert sum(e.text.count("What is 2+1") for e in server.log) == 3  # one try and two retries, no more
    with Ledger.open(tmp_path / "run") as led:
        (failure,) = led.iter_failures()
        assert failure["problem_id"] == "problems:p2" and "gave up after 3 tries" in failure["error"]
    server.set_faults([])
    s = generate(config(problems, server, retries=2), tmp_path / "run")
    assert s.traces_new == {"semantic_back": 1} and s.traces_skipped == 5 and s.failures == 0


@pytest.mark.parametrize(("fault", "needle"), [("unauthorized", "API key"), ("unknown_model", "unknown model"),
                                               ("bad_request", "refused the request")])
def test_hopeless_errors_stop_the_run_at_once(tmp_path, server, fault, needle):
    src = write_problems(tmp_path / "src", 40)
    server.set_faults([Fault(fault, times=-1)])
    started = time.monotonic()
    with pytest.raises(TeacherError, match=needle):
        generate(config(src, server), tmp_path / "run")
    assert time.monotonic() - started < 10
    assert len(server.log) <= 4  # at most the requests already in flight; never 40 doomed ones
    with Ledger.open(tmp_path / "run") as led:
        assert led.counts()["traces"] == 0


def test_prompt_too_long_is_one_failure_not_a_stop(tmp_path, server, problems):
    server.set_faults([Fault("context", match="What is 1+1")])
    s = generate(config(problems, server), tmp_path / "run")
    assert s.failures_by_reason == {"context_too_long": 1} and s.traces_new == {"semantic_back": 5}


def test_cache_answers_a_request_already_paid_for(tmp_path, server, problems):
    run = tmp_path / "run"
    generate(config(problems, server), run)
    assert len(server.log) == 6
    with sqlite3.connect(run / "ledger.sqlite") as con:  # a crash between the cache write and the trace write
        con.execute("DELETE FROM traces")
    s = generate(config(problems, server), run)
    assert len(server.log) == 6 and s.cache_hits == 6 and s.requests == 0
    with Ledger.open(run) as led:
        traces = list(led.iter_traces())
    assert len(traces) == 6 and all(t.usage.cached for t in traces)
    with sqlite3.connect(run / "ledger.sqlite") as con:
        con.execute("DELETE FROM traces")
    s = generate(config(problems, server, use_cache=False), run)  # --no-cache: pay again
    assert len(server.log) == 12 and s.requests == 6 and s.cache_hits == 0


def test_truncated_answer_is_asked_again_with_more_tokens(tmp_path, server, problems):
    server.set_faults([Fault("length", match="What is 3+1")])
    s = generate(config(problems, server, options={"max_tokens": 300}), tmp_path / "run")
    assert s.truncated == 1 and s.failures == 0
    asked = [e.max_tokens for e in server.log if "What is 3+1" in e.text]
    assert asked == [300, 600]
    with Ledger.open(tmp_path / "run") as led:
        (trace,) = led.iter_traces(problem_id="problems:p3")
    assert trace.finish_reason == "stop" and trace.usage.requests == 2 and trace.text.endswith("\\boxed{4}")


def test_budget_stops_cleanly_and_the_run_resumes(tmp_path, server):
    src = write_problems(tmp_path / "src", 20)
    prices = prices_file(tmp_path, 1000.0)  # $0.001 per token: one request costs about $0.5-0.6
    cfg = config(src, server, prices=prices, budget_usd=4.0, options={"max_tokens": 200})
    with pytest.raises(BudgetExceeded, match="higher --budget-usd") as info:
        generate(cfg, tmp_path / "run")
    assert info.value.exit_code == 3
    with Ledger.open(tmp_path / "run") as led:
        counts = led.counts()
        traces = list(led.iter_traces())
    assert 0 < counts["traces"] < 20 and counts["cost_usd"] <= 4.0
    assert all(t.usage.cost_usd > 0.3 for t in traces)
    sent = len(server.log)
    assert sent == counts["traces"]
    s = generate(cfg.model_copy(update={"budget_usd": 100.0}), tmp_path / "run")
    assert s.traces_skipped == counts["traces"] and s.traces_new == {"semantic_back": 20 - counts["traces"]}
    keys = Counter(e.key for e in server.log)
    assert max(keys.values()) == 1 and len(server.log) == 20  # nothing paid twice
    with Ledger.open(tmp_path / "run") as led:
        assert led.counts()["cost_usd"] == pytest.approx(sum(t.usage.cost_usd for t in led.iter_traces()))


def test_cli_budget_stop_is_one_line_and_exit_code_3(tmp_path, server, problems):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LBDATA_HOME": str(tmp_path / "home")}
    cmd = [*LBDATA, "generate", "--source", f"jsonl:{problems}", "--teacher", "openai:fake-teacher", "--base-url",
           server.url, "--variant", "semantic", "--prices", prices_file(tmp_path, 1000.0), "--max-tokens", "200",
           "--concurrency", "1", "--run", "b", "--no-progress"]
    proc = subprocess.run([*cmd, "--budget-usd", "2.0"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 3, proc.stderr
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert line.startswith("error: budget reached") and "higher --budget-usd" in line
    done = subprocess.run([*cmd, "--budget-usd", "100"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "skipped    2 traces" in done.stdout and "semantic_back  4 new traces" in done.stdout


def test_secrets_cannot_enter_the_config(problems, server):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="--api-key"):
        config(problems, server, options={"api_key": KEY})


def test_budget_needs_a_price(tmp_path, server, problems):
    from lbdata.errors import UsageError

    with pytest.raises(UsageError, match="--prices"):
        generate(config(problems, server, budget_usd=1.0), tmp_path / "run")


def test_rejected_traces_are_requested_again_up_to_max_attempts(tmp_path, server, problems):
    from lbdata.validate import ValidationConfig

    server.set_faults([Fault("bad_trace", match="What is 1+1"), Fault("bad_trace", match="What is 2+1", times=-1)])
    s = generate(config(problems, server, max_attempts=3), tmp_path / "run")
    assert s.accepted == 5 and s.exhausted == 1 and s.rejected == 1 + 3
    assert s.rejected_by_reason.get("back_empty", 0) >= 4
    vhash = ValidationConfig().config_hash
    with Ledger.open(tmp_path / "run") as led:
        p1 = sorted(led.iter_traces(problem_id="problems:p1"), key=lambda t: t.attempt)
        assert [t.attempt for t in p1] == [0, 1]
        verdicts = [led.get_verdict(t.id, vhash) for t in p1]
        assert [v.accepted for v in verdicts] == [False, True]
        assert len(list(led.iter_traces(problem_id="problems:p2"))) == 3
        assert led.counts()["traces"] == 4 + 2 + 3
    seeds = [e.seed for e in server.log if "What is 1+1" in e.text]
    assert len(set(seeds)) == 2  # a new attempt is a new seed
    sent = len(server.log)
    s = generate(config(problems, server, max_attempts=3), tmp_path / "run")  # resume: nothing to ask
    assert len(server.log) == sent and s.traces_skipped == 5 and s.exhausted == 1


def test_insert_mode_from_a_rollout_file(tmp_path, server):
    src = write_problems(tmp_path / "src", 4)
    rollouts = tmp_path / "results.jsonl"
    rows = [{"problem_id": f"problems:p{i}", "response": base_trace(i), "correct": True} for i in range(3)]
    rollouts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = config(src, server, mode="insert", base_traces=str(rollouts), variants="semantic,solution", max_attempts=2)
    s = generate(cfg, tmp_path / "run")
    assert s.no_base_trace == 1 and s.traces_new == {"semantic_back": 3, "solution_back": 3}
    assert s.accepted == 6 and s.rejected == 0
    assert all("[BEGIN BASE TRACE]" in e.text for e in server.log)
    with Ledger.open(tmp_path / "run") as led:
        for trace in led.iter_traces():
            i = int(trace.problem_id.rsplit("p", 1)[1])
            assert trace.mode == "insert" and trace.base_trace_id == base_trace_id(base_trace(i))
            assert get_base_trace(led, trace.base_trace_id) == base_trace(i).strip()
            assert "<back>" in trace.text


def test_insert_mode_from_a_source_column_and_a_drifting_teacher(tmp_path, server, monkeypatch):
    from tests import fake_openai_server as fake

    src = write_problems(tmp_path / "src", 3, with_traces=True)
    cfg = config(src, server, mode="insert", columns={"trace": "rollout"}, max_attempts=2)
    real = fake.insert_backs
    monkeypatch.setattr(fake, "insert_backs", lambda v, base, a: real(v, base, a).replace(
        "First I read the height", "I eyeball the picture and guess quickly, then wander off and read the height"
    ).replace("Then I read the right bar in the same way", "Afterwards some other unrelated words appear here"))
    s = generate(cfg, tmp_path / "run")
    assert s.rejected_by_reason.get("insert_changed_reasoning") == 6 and s.exhausted == 3


def test_dry_run_spends_nothing(tmp_path, server, problems):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LBDATA_HOME": str(tmp_path / "home")}
    env.pop("OPENAI_API_KEY", None)  # counting needs no key
    args = ["generate", "--source", f"jsonl:{problems}", "--teacher", "gpt-4o", "--limit", "6",
            "--variant", "semantic,solution", "--dry-run", "--max-tokens", "1000"]
    for extra in (["--base-url", server.url], []):
        proc = subprocess.run([*LBDATA, *args, *extra], capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert "requests   12 (0 traces already in the ledger)" in proc.stdout
        assert "$2.50 / $10.00 per 1M" in proc.stdout and "at most 12,000" in proc.stdout
    assert server.log == [] and not (tmp_path / "home").exists()
    # after a partial run, only what is left is counted
    generate(config(problems, server, limit=2, variants="semantic,solution"), tmp_path / "run")
    est = engine.dry_run(config(problems, server, variants="semantic,solution"), tmp_path / "run")
    assert (est.requests, est.skipped) == (8, 4) and len(server.log) == 4


def test_the_key_never_lands_in_any_artifact(tmp_path, problems):
    home = tmp_path / "home"
    with FakeOpenAI(api_key=KEY) as srv:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "LBDATA_HOME": str(home), "OPENAI_API_KEY": KEY,
               "LBDATA_LOG_LEVEL": "DEBUG"}
        base = ["generate", "--source", f"jsonl:{problems}", "--teacher", "openai:fake-teacher",
                "--base-url", srv.url, "--limit", "6", "--max-attempts", "2", "--reveal-answer"]
        ok = subprocess.run([*LBDATA, *base, "--run", "env"], capture_output=True, text=True, env=env, timeout=120)
        assert ok.returncode == 0, ok.stderr
        flag_env = {k: v for k, v in env.items() if k != "OPENAI_API_KEY"}
        ok2 = subprocess.run([*LBDATA, *base, "--run", "flag", "--api-key", KEY], capture_output=True, text=True,
                             env=flag_env, timeout=120)
        assert ok2.returncode == 0, ok2.stderr
        bad = subprocess.run([*LBDATA, *base, "--run", "bad", "--api-key", KEY + "x"], capture_output=True,
                             text=True, env=flag_env, timeout=120)
        assert bad.returncode == 2 and "rejected the API key" in bad.stderr
        assert all(e.authorization_ok for e in srv.log[:24]) and len(srv.log) >= 24
    # the run goes on to verdicts, a corpus version with its manifest and card
    later = [subprocess.run([*LBDATA, *args], capture_output=True, text=True, env=flag_env, timeout=300)
             for args in (["validate", "env"], ["build", "env", "--name", "k", "--variant", "semantic,solution",
                                               "--test-size", "0"])]
    assert all(p.returncode == 0 for p in later), [p.stderr for p in later]
    outputs = ok.stdout + ok.stderr + ok2.stdout + ok2.stderr + bad.stdout + bad.stderr
    outputs += "".join(p.stdout + p.stderr for p in later)
    assert "semantic_back  6 new traces" in ok.stdout and "DEBUG" in ok.stderr
    assert KEY not in outputs
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name == "ledger.sqlite" for p in files) and any(p.name == "config.json" for p in files)
    assert any(p.name == "manifest.json" for p in files) and any(p.suffix == ".parquet" for p in files)
    for path in files:
        assert KEY.encode() not in path.read_bytes(), path


def _completed(log: Path) -> list[dict]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def test_no_completed_request_is_sent_twice_after_sigkill(tmp_path):
    src = write_problems(tmp_path / "src", 60)
    log = tmp_path / "server.jsonl"
    server = subprocess.Popen([sys.executable, "-m", "tests.fake_openai_server", "--latency", "0.15",
                               "--log", str(log)], stdout=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().split()[-1]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "LBDATA_HOME": str(tmp_path / "home")}
        cmd = [*LBDATA, "generate", "--source", f"jsonl:{src}", "--teacher", "openai:fake-teacher",
               "--base-url", url, "--limit", "60", "--variant", "semantic", "--concurrency", "4", "--run", "r",
               "--no-progress"]
        client = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 60
        while len(_completed(log)) < 16 and time.time() < deadline and client.poll() is None:
            time.sleep(0.02)
        client.send_signal(signal.SIGKILL)
        client.wait()
        before = len(_completed(log))
        assert 0 < before < 60, "the run ended before it could be killed"
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        entries = _completed(log)
        keys = Counter(e["key"] for e in entries)
        assert len(keys) == 60  # every request answered once at least
        twice = [k for k, n in keys.items() if n > 1]
        assert len(twice) <= 4, f"{len(twice)} requests paid twice; at most the 4 in flight may be"
        with Ledger.open(tmp_path / "home" / "runs" / "r") as led:
            assert led.counts()["traces"] == 60
    finally:
        server.terminate()
        server.wait(10)


def _span(log) -> float:
    return max(e.t_recv for e in log) - min(e.t_recv for e in log)


def test_rpm_paces_the_requests(tmp_path, server):
    src = write_problems(tmp_path / "src", 12)
    generate(config(src, server, rpm=240), tmp_path / "run")  # 4 per second, 4 at once
    assert len(server.log) == 12 and _span(server.log) > 1.5


def test_the_servers_rate_limit_headers_slow_the_run(tmp_path):
    src = write_problems(tmp_path / "src", 12)
    headers = {"x-ratelimit-limit-requests": "240", "x-ratelimit-remaining-requests": "239"}
    with FakeOpenAI(rate_limit_headers=headers) as srv:
        generate(config(src, srv, concurrency=1), tmp_path / "run")  # one at a time: each answer is seen
        assert _span(srv.log) > 1.5
    with FakeOpenAI() as srv:  # the same run without the headers is not slowed
        generate(config(src, srv, concurrency=1), tmp_path / "run2")
        assert _span(srv.log) < 1.0


@pytest.mark.slow
def test_generate_against_transformers_serve_with_the_tiny_model(tmp_path, tiny_server):
    """`lbdata generate --teacher openai:<served> --base-url …` against a real OpenAI-compatible server."""
    from PIL import Image

    base_url, model = tiny_server
    folder = tmp_path / "src"
    (folder / "img").mkdir(parents=True)
    rows = []
    for i, size in enumerate([(112, 84), (224, 168)]):  # 4 x 3 and 8 x 6 merged image tokens
        Image.new("RGB", size, (200, 40 * i, 90)).save(folder / "img" / f"{i}.png")
        rows.append({"id": f"q{i}", "images": [f"img/{i}.png"], "problem": "How long is AB?", "answer": "5"})
    (folder / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LBDATA_HOME": str(tmp_path / "home")}
    env.pop("OPENAI_API_KEY", None)
    cmd = [*LBDATA, "generate", "--source", f"jsonl:{folder / 'p.jsonl'}", "--teacher", f"openai:{model}",
           "--base-url", base_url, "--variant", "semantic", "--max-tokens", "8", "--run", "served",
           "--concurrency", "2", "--no-progress", "--timeout", "120"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "semantic_back  2 new traces" in proc.stdout and "failures   0" in proc.stdout
    with Ledger.open(tmp_path / "home" / "runs" / "served") as led:
        traces = {t.problem_id: t for t in led.iter_traces()}
    small, large = traces["p:q0"], traces["p:q1"]
    # Same text, different images: each request's prompt differs by exactly the extra image tokens, so
    # the images reached the model (a server that dropped them would count the same prompt twice). The
    # random model runs into max_tokens, so each trace is asked twice (8, then 16 tokens).
    assert small.usage.requests == large.usage.requests
    assert large.usage.prompt_tokens - small.usage.prompt_tokens == large.usage.requests * (8 * 6 - 4 * 3)
    assert (small.usage.image_tokens, large.usage.image_tokens) == (12, 48)  # lbdata's own count agrees
    assert all(t.finish_reason in ("length", "stop") for t in traces.values())


def test_samples_are_asked_for_with_n_in_one_request(tmp_path, server, problems):
    summary = generate(config(problems, server, samples=3, prices=prices_file(tmp_path, 1.0)), tmp_path / "run")
    assert len(server.log) == 6 and summary.traces_new == {"semantic_back": 18}  # one request per problem
    with Ledger.open(tmp_path / "run") as led:
        traces = list(led.iter_traces())
        assert sorted(t.sample for t in traces) == sorted([0, 1, 2] * 6)
        assert sum(t.usage.cost_usd for t in traces) == pytest.approx(summary.cost_usd)
    again = generate(config(problems, server, samples=3), tmp_path / "run")
    assert again.traces_skipped == 18 and len(server.log) == 6


def test_a_server_without_n_gets_one_request_per_sample(tmp_path, problems):
    with FakeOpenAI(supports_n=False) as server:
        summary = generate(config(problems, server, samples=3, concurrency=1), tmp_path / "run")
        assert summary.traces_new == {"semantic_back": 18} and summary.failures == 0
        assert len(server.log) == 18  # the first choice of each n request is kept; the rest are asked alone
        assert len({e.key for e in server.log}) == 18


def test_cached_prompt_tokens_are_priced_at_the_cached_rate(tmp_path):
    src = write_problems(tmp_path / "src", 3, size=(1008, 756), vary=False)
    path = tmp_path / "prices.yaml"
    path.write_text("models:\n  fake-teacher: {input: 2.0, output: 8.0, cached_input: 0.5, "
                    "image: {scheme: tiles, base: 85, tile: 170}}\n")
    with FakeOpenAI(provider_usage=True) as server:
        summary = generate(config(src, server, variants="semantic,solution", concurrency=1, prices=str(path),
                                  options={"detail": "high"}), tmp_path / "run")
    assert summary.cached_tokens >= 3 * 1024  # the second variant of every problem hits the prompt cache
    with Ledger.open(tmp_path / "run") as led:
        traces = list(led.iter_traces())
    hits = [t for t in traces if t.usage.cached_tokens]
    assert len(hits) == 3 and all(t.variant == "solution_back" for t in hits)
    for t in traces:
        u = t.usage
        expected = ((u.prompt_tokens - u.cached_tokens) * 2.0 + u.cached_tokens * 0.5 + u.completion_tokens * 8.0) / 1e6
        assert u.cost_usd == pytest.approx(expected)


@pytest.mark.parametrize(("usage", "expect"), [
    ({"prompt_tokens": 100, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 500}}, (100, 7, 100)),
    ({"prompt_tokens": 100, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": -3}}, (100, 7, 0)),
    ({"prompt_tokens": -5, "completion_tokens": -1}, (0, 0, 0)),
])
def test_a_server_reporting_impossible_token_counts_keeps_its_answer(usage, expect):
    """A buggy server's usage (more cached tokens than prompt tokens, negative counts) neither throws the answer
    away (it was paid for; retrying pays again) nor lands in the ledger as it came: the counts are clamped."""
    from lbdata.teachers.openai import read_response

    body = {"choices": [{"index": 0, "message": {"content": "\\boxed{1}"}, "finish_reason": "stop"}], "usage": usage}
    got = read_response(json.dumps(body).encode())
    assert got.text == "\\boxed{1}"
    assert (got.usage.prompt_tokens, got.usage.completion_tokens, got.usage.cached_tokens) == expect


def test_cost_per_accepted_when_nothing_is_accepted(tmp_path, server):
    """Every trace rejected: the summary, the dry run and `lbdata runs` say no trace was accepted (no division by
    zero, and the dry run does not ask to validate a run that has been validated)."""
    import math

    from typer.testing import CliRunner

    from lbdata.cli import app
    from lbdata.generate import dry_run

    src = write_problems(tmp_path / "src", 4)
    server.set_faults([Fault("bad_trace", times=-1)])
    cfg = config(src, server, limit=2, max_attempts=2, prices=prices_file(tmp_path, 1.0))
    home = tmp_path / "home"
    summary = generate(cfg, home / "runs" / "r")
    assert summary.accepted == 0 and summary.acceptance == 0 and math.isinf(summary.usd_per_1k_accepted)
    est = dry_run(cfg.model_copy(update={"limit": 4}), home / "runs" / "r")
    assert est.acceptance == 0 and est.requests == 2 and math.isinf(est.usd_per_1k_accepted)
    listing = CliRunner().invoke(app, ["runs", "--home", str(home)], env={"COLUMNS": "200"})
    assert listing.exit_code == 0 and "no accepted" in listing.output
    plan = CliRunner().invoke(app, ["generate", "--source", cfg.source, "--teacher", cfg.teacher, "--base-url",
                                    server.url, "--variant", "semantic", "--limit", "4", "--max-attempts", "2",
                                    "--reveal-answer", "--prices", cfg.prices, "--run", "r", "--home", str(home),
                                    "--dry-run"])
    assert plan.exit_code == 0, plan.output
    assert "no trace accepted so far" in plan.output and "validate a first part" not in plan.output
