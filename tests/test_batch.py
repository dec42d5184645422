"""generate --batch: the real openai client against the local fake Batch API (files, batches, cancel),
failed and expired lines sent again, regenerate-on-reject as the next round, a killed client that
resumes polling instead of submitting again, `lbdata batches`, and the dry run's batch count."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lbdata import generate as engine
from lbdata.cli import app
from lbdata.generate import GenerateConfig, dry_run, generate, sender
from lbdata.ledger import Ledger
from lbdata.teachers import batch as batch_module
from lbdata.teachers.openai import OpenAITeacher
from tests.fake_openai_server import FakeOpenAI, Fault, write_problems

LBDATA = [sys.executable, "-m", "lbdata.cli"]


@pytest.fixture(autouse=True)
def fast(monkeypatch):
    monkeypatch.setattr(sender, "BACKOFF_INITIAL_S", 0.01)
    monkeypatch.setattr(batch_module, "LINGER_S", 0.2)


def prices(tmp_path: Path) -> str:
    path = tmp_path / "prices.yaml"
    path.write_text("models:\n  fake-teacher: {input: 2.0, output: 8.0, cached_input: 1.0, batch: 0.5}\n")
    return str(path)


def config(src: Path, url: str, tmp_path: Path, **kw) -> GenerateConfig:
    kw.setdefault("variants", "semantic,solution")
    return GenerateConfig(source=f"jsonl:{src}", teacher="openai:fake-teacher", reveal_answer=True, limit=None,
                          teacher_options={"base_url": url, "timeout": 5.0}, poll_interval=0.05,
                          prices=prices(tmp_path), **kw)


def _uploaded_keys(server: FakeOpenAI, batch: dict) -> list[str]:
    return [json.loads(line)["custom_id"] for line in server.files[batch["input_file_id"]].splitlines()]


def test_batch_run_resubmits_only_failed_and_expired_lines(tmp_path):
    src = write_problems(tmp_path / "src", 6)
    faults = [Fault("batch_failed", match="What is 2+1", times=1), Fault("batch_expired", match="What is 4+1", times=1)]
    with FakeOpenAI(faults=faults) as server:
        summary = generate(config(src, server.url, tmp_path, batch=True), tmp_path / "run")
        first, second = server.batches.values()
    assert summary.failures == 0 and summary.traces_new == {"semantic_back": 6, "solution_back": 6}
    assert first["status"] == "expired" and first["request_counts"] == {"total": 12, "completed": 10, "failed": 2}
    assert second["status"] == "completed" and second["request_counts"]["total"] == 2  # only those two again
    assert set(_uploaded_keys(server, second)) < set(_uploaded_keys(server, first))
    assert first["completion_window"] == "24h" and first["endpoint"] == "/v1/chat/completions"
    assert first["metadata"]["lbdata_run"] == "run"
    assert summary.retries_by_reason == {"batch_failed": 1, "batch_expired": 1}
    with Ledger.open(tmp_path / "run") as led:
        rows = led.iter_batches()
        traces = list(led.iter_traces())
        for key in _uploaded_keys(server, first):  # each answer cached under the online request's key
            if key in _uploaded_keys(server, second):
                continue
            assert led.cache_get(key) is not None
    assert [r["batch_id"] for r in rows] == [first["id"], second["id"]] and all(r["collected"] for r in rows)
    assert rows[0]["errors"] == {"batch_failed": 1, "batch_expired": 1} and rows[0]["answered"] == 10
    # priced at the batch rate: half of what the same tokens cost online
    for t in traces:
        online = (t.usage.prompt_tokens * 2.0 + t.usage.completion_tokens * 8.0) / 1e6
        assert t.usage.cost_usd == pytest.approx(online / 2)
    assert summary.cost_usd == pytest.approx(sum(r["cost_usd"] for r in rows))


def test_batch_keys_are_the_online_cache_keys(tmp_path):
    """A batch answer serves the same request online afterwards: nothing is sent again."""
    src = write_problems(tmp_path / "src", 4)
    with FakeOpenAI() as server:
        generate(config(src, server.url, tmp_path, batch=True, variants="semantic"), tmp_path / "run")
        (batch,) = server.batches.values()
        sent = len(server.log)
        teacher = OpenAITeacher("fake-teacher", base_url=server.url)
        with Ledger.open(tmp_path / "run") as led:
            t = next(led.iter_traces())
            assert t.id  # the ledger holds ordinary traces
        online = config(src, server.url, tmp_path, variants="semantic")
        summary = generate(online, tmp_path / "run")  # same run, online: every trace is already there
        assert summary.traces_skipped == 4 and len(server.log) == sent
        assert teacher.info == t.teacher  # batch and online traces have the same teacher identity


def test_rejected_traces_are_asked_again_in_the_next_batch(tmp_path):
    src = write_problems(tmp_path / "src", 5)
    with FakeOpenAI(faults=[Fault("bad_trace", match="What is 3+1", times=1)]) as server:
        summary = generate(config(src, server.url, tmp_path, batch=True, variants="semantic", max_attempts=3),
                           tmp_path / "run")
        rounds = [b["request_counts"]["total"] for b in server.batches.values()]
    assert rounds == [5, 1]
    assert summary.accepted == 5 and summary.rejected == 1 and summary.exhausted == 0
    assert summary.usd_per_1k_accepted == pytest.approx(1000 * summary.run_cost_usd / 5)


def test_dry_run_counts_batches_bytes_and_the_batch_price(tmp_path):
    src = write_problems(tmp_path / "src", 6)
    with FakeOpenAI() as server:
        online = dry_run(config(src, server.url, tmp_path), tmp_path / "run")
        batch = dry_run(config(src, server.url, tmp_path, batch=True, batch_max_requests=5), tmp_path / "run")
        tight = dry_run(config(src, server.url, tmp_path, batch=True, batch_max_bytes=batch.batch_bytes // 2 + 2000),
                        tmp_path / "run")
        assert server.log == [] and server.batches == {}
    assert batch.requests == online.requests == 12
    assert batch.batches == 3 and batch.batch_bytes > 12 * 1000  # images are in the bytes
    assert tight.batches == 2
    assert batch.cost_usd == pytest.approx(online.cost_usd / 2)


def _get(url: str):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def test_a_killed_client_resumes_polling_instead_of_resubmitting(tmp_path):
    src = write_problems(tmp_path / "src", 8)
    server = subprocess.Popen([sys.executable, "-m", "tests.fake_openai_server", "--batch-delay", "2.0"],
                              stdout=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().split()[-1]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "LBDATA_HOME": str(tmp_path / "home")}
        cmd = [*LBDATA, "generate", "--source", f"jsonl:{src}", "--teacher", "openai:fake-teacher",
               "--base-url", url, "--limit", "8", "--variant", "semantic", "--run", "r", "--no-progress",
               "--batch", "--poll-interval", "0.1", "--reveal-answer"]
        client = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 60
        while not _get(url + "/batches")["data"] and time.time() < deadline and client.poll() is None:
            time.sleep(0.05)
        time.sleep(0.2)  # the batch id reaches the ledger right after the create call
        client.send_signal(signal.SIGKILL)
        client.wait()
        (batch,) = _get(url + "/batches")["data"]
        assert batch["status"] in ("validating", "in_progress"), "the batch ended before the client was killed"
        listing = CliRunner().invoke(app, ["batches", "r", "--home", str(tmp_path / "home")])
        assert listing.exit_code == 0 and batch["id"] in listing.output and "no" in listing.output
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert len(_get(url + "/batches")["data"]) == 1  # polled the same batch, submitted nothing new
        assert "1 resumed" in done.stdout and "0 submitted" in done.stdout
        with Ledger.open(tmp_path / "home" / "runs" / "r") as led:
            assert led.counts()["traces"] == 8
    finally:
        server.terminate()
        server.wait(10)


def test_cancel_then_resume_sends_the_unanswered_lines_again(tmp_path):
    src = write_problems(tmp_path / "src", 3)
    home = tmp_path / "home"
    with FakeOpenAI(batch_delay_s=1.0) as server:
        cmd = ["generate", "--source", f"jsonl:{src}", "--teacher", "openai:fake-teacher", "--base-url", server.url,
               "--limit", "3", "--variant", "semantic", "--run", "r", "--no-progress", "--batch",
               "--poll-interval", "0.05", "--reveal-answer", "--home", str(home)]
        cfg = config(src, server.url, tmp_path, batch=True, variants="semantic")
        run_dir = home / "runs" / "r"
        with Ledger.create(run_dir) as led:  # a submission a killed run left behind
            led.write_config({"config": cfg.model_dump(mode="json"), "identity": None})
        import asyncio

        from lbdata.teachers.batch import Batcher

        async def submit_only():
            with Ledger.open(run_dir) as led:
                b = Batcher(OpenAITeacher("fake-teacher", base_url=server.url), led, cfg, priced=lambda u: u)
                b._pile.keys, b._pile.lines = ["k1"], [b"{}\n"]
                await b._create(b._pile)
                await b.teacher.aclose()

        asyncio.run(submit_only())
        cancelled = CliRunner().invoke(app, ["batches", "r", "--cancel", "--home", str(home)])
        assert cancelled.exit_code == 0, cancelled.output
        assert "cancelling" in cancelled.output or "cancelled" in cancelled.output
        (batch,) = server.batches.values()
        assert batch["status"] in ("cancelling", "cancelled")
        result = CliRunner().invoke(app, cmd)
        assert result.exit_code == 0, result.output
        assert len(server.batches) == 2  # the cancelled one was read back (nothing), the run went on in a new one
    with Ledger.open(run_dir) as led:
        assert led.counts()["traces"] == 3
        old, new = led.iter_batches()
    assert old["status"] in ("cancelling", "cancelled") and new["status"] == "completed" and new["requests"] == 3


def test_batch_needs_a_server_teacher(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LBDATA_HOME": str(tmp_path)}
    env.pop("LBDATA_DEBUG", None)
    result = subprocess.run([*LBDATA, "generate", "--batch", "--limit", "2"], capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.returncode == 2 and result.stderr.startswith("error: --batch") and "openai:MODEL" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_batch_created_just_before_a_kill_is_found_by_its_metadata(tmp_path):
    """Killed between the create call and the ledger write: the re-run finds the batch by the submission id
    it carries in its metadata and polls it, instead of paying for the same lines again."""
    import asyncio

    from lbdata.teachers.base import TraceRequest

    src = write_problems(tmp_path / "src", 3)
    with FakeOpenAI(batch_delay_s=0.3) as server:
        cfg = config(src, server.url, tmp_path, batch=True, variants="semantic")
        run_dir = tmp_path / "run"
        generate(cfg.model_copy(update={"limit": 0 + 1, "batch": False}), run_dir)  # makes the run; 1 trace online
        teacher = OpenAITeacher("fake-teacher", base_url=server.url, timeout=5.0)
        from lbdata.sources import load_source

        rows = list(load_source(cfg.source))[1:]
        with Ledger.open(run_dir) as led:
            engine_ids = {}
            for row in rows:
                from lbdata.records import Trace

                tid = Trace.make_id(problem_id=row.problem.id, variant="semantic_back", mode="write",
                                    teacher=teacher.info, prompt_hash=teacher.prompt_hash("semantic_back", "write"),
                                    sample=0)
                engine_ids[row.problem.id] = tid
            requests = [TraceRequest(problem=r.problem, images=r.images, variant="semantic_back", reveal_answer=True,
                                     seed=engine.trace_seed(engine_ids[r.problem.id])) for r in rows]
            keys = [teacher.request_key(q) for q in requests]
            data = b"".join(batch_module.batch_line(k, teacher.chat_body(q)) for k, q in zip(keys, requests, strict=True))
            led.put_batch("sub-killed", status="submitting", info={"keys": keys, "requests": 2, "bytes": len(data)})

            async def create():
                client = teacher.client()
                f = await client.files.create(file=("x.jsonl", data), purpose="batch")
                await client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                            completion_window="24h", metadata={"lbdata_submission": "sub-killed"})
                await teacher.aclose()

            asyncio.run(create())
        summary = generate(cfg.model_copy(update={"limit": 3}), run_dir)
        assert len(server.batches) == 1  # adopted, not submitted again
        assert summary.batches["resumed"] == 1 and summary.batches.get("submitted", 0) == 0
        assert summary.traces_new == {"semantic_back": 2}
    with Ledger.open(run_dir) as led:
        (row,) = led.iter_batches()
        assert row["batch_id"] == "batch_1" and row["collected"]


def test_budget_counts_what_was_submitted(tmp_path):
    from lbdata.errors import BudgetExceeded

    src = write_problems(tmp_path / "src", 6)
    path = tmp_path / "dear.yaml"
    path.write_text("models:\n  fake-teacher: {input: 1000.0, output: 1000.0, batch: 0.5}\n")
    with FakeOpenAI() as server:
        cfg = config(src, server.url, tmp_path, batch=True, variants="semantic").model_copy(
            update={"prices": str(path), "budget_usd": 1.2, "teacher_options": {"base_url": server.url,
                                                                             "max_tokens": 200}})
        with pytest.raises(BudgetExceeded, match="higher --budget-usd"):
            generate(cfg, tmp_path / "run")
        submitted = sum(b["request_counts"]["total"] for b in server.batches.values())
    # each request's worst case (prompt + 200 tokens at half of $1000/M) is about $0.4: three fit in $1.20
    assert 1 <= submitted <= 3
    with Ledger.open(tmp_path / "run") as led:
        assert led.counts()["traces"] == submitted and led.counts()["cost_usd"] <= 1.2


def test_a_provider_hiccup_while_polling_does_not_submit_the_batch_again(tmp_path, monkeypatch):
    """Retrieve answering 500s for longer than one call's retries: the batch is still running at the provider
    (and will be billed), so its requests wait for it instead of going out again in a second batch."""
    monkeypatch.setattr(batch_module, "SUBMIT_TRIES", 2)
    src = write_problems(tmp_path / "src", 3)
    faults = [Fault("api_error", match="GET /v1/batches/batch_1", times=5)]
    with FakeOpenAI(faults=faults, batch_delay_s=0.2) as server:
        summary = generate(config(src, server.url, tmp_path, batch=True, variants="semantic"), tmp_path / "run")
        assert len(server.batches) == 1, "the same requests were submitted (and paid) twice"
    assert summary.traces_new == {"semantic_back": 3} and summary.failures == 0


def test_a_lost_create_answer_does_not_create_a_second_batch(tmp_path):
    """The create call reached the provider but its answer was lost: the retry finds that batch by its
    metadata instead of creating (and paying for) another one."""
    src = write_problems(tmp_path / "src", 3)
    with FakeOpenAI(faults=[Fault("create_lost", match="POST /v1/batches", times=1)]) as server:
        summary = generate(config(src, server.url, tmp_path, batch=True, variants="semantic"), tmp_path / "run")
        assert len(server.batches) == 1, "a second batch was created for the same requests"
    assert summary.traces_new == {"semantic_back": 3} and summary.failures == 0
    with Ledger.open(tmp_path / "run") as led:
        (row,) = led.iter_batches()
    assert row["batch_id"] == "batch_1" and row["collected"]


def test_odd_lines_in_the_output_and_error_files_cost_only_themselves(tmp_path, monkeypatch):
    """A provider's result files with lines of odd shapes (not an object, a string error, a response that is
    not an object, unknown and repeated custom_ids): the good lines are used, nothing is submitted twice."""
    src = write_problems(tmp_path / "src", 3)
    with FakeOpenAI(batch_delay_s=0.1) as server:
        original = server._run_batch

        async def odd(batch, lines):
            await original(batch, lines)
            if batch["id"] != "batch_1":
                return
            out = server.files[batch["output_file_id"]].splitlines()
            first = json.loads(out[0])
            dropped = json.loads(out[1])["custom_id"]
            odd_lines = [b"[1, 2]", b'"text"', b"null", json.dumps(first).encode(),  # the same answer twice
                         json.dumps({"custom_id": "unknown", "response": first["response"]}).encode(),
                         json.dumps({"custom_id": dropped, "response": "oops", "error": None}).encode()]
            server.files[batch["output_file_id"]] = b"\n".join([out[0], *odd_lines, out[2]]) + b"\n"
            file_id = f"file-{len(server.files) + 1}"
            server.files[file_id] = b"\n".join([
                json.dumps({"custom_id": dropped, "response": None, "error": "boom"}).encode(),
                json.dumps({"custom_id": dropped, "response": {"status_code": 500, "body": "x"}, "error": [1]}).encode(),
            ]) + b"\n"
            batch["error_file_id"] = file_id

        server._run_batch = odd
        summary = generate(config(src, server.url, tmp_path, batch=True, variants="semantic"), tmp_path / "run")
        totals = [b["request_counts"]["total"] for b in server.batches.values()]
    assert totals == [3, 1], "only the line without a usable answer goes out again"
    assert summary.traces_new == {"semantic_back": 3} and summary.failures == 0


def test_an_online_run_does_not_pay_again_for_requests_a_batch_holds(tmp_path):
    """Killed while its batch ran, then re-run without --batch: the batch's requests would be paid twice (the
    batch still runs and is billed), so the run refuses in one line and says how to collect them."""
    import asyncio

    from lbdata.errors import UsageError
    from lbdata.teachers.batch import Batcher

    src = write_problems(tmp_path / "src", 2)
    with FakeOpenAI(batch_delay_s=30.0) as server:
        cfg = config(src, server.url, tmp_path, batch=True, variants="semantic")
        run_dir = tmp_path / "run"
        with Ledger.create(run_dir):
            pass

        async def submit_only():
            with Ledger.open(run_dir) as led:
                b = Batcher(OpenAITeacher("fake-teacher", base_url=server.url), led, cfg, priced=lambda u: u)
                b._pile.keys, b._pile.lines = ["k1"], [b"{}\n"]
                await b._create(b._pile)
                await b.teacher.aclose()

        asyncio.run(submit_only())
        with pytest.raises(UsageError, match="1 batch.*--batch") as info:
            generate(cfg.model_copy(update={"batch": False}), run_dir)
        assert "\n" not in str(info.value) and server.completed() == []


@pytest.mark.parametrize("state", ["cancelling", "in_progress"])
def test_a_batch_stuck_past_its_window_is_given_up(tmp_path, state):
    """A provider whose batch stays 'cancelling' for hours, or 'in_progress' long after its 24 h window: the
    run stops waiting, reads what came back and sends the rest again, instead of polling forever."""
    src = write_problems(tmp_path / "src", 2)
    with FakeOpenAI() as server:
        original = server._run_batch

        async def stuck(batch, lines):
            if batch["id"] != "batch_1":
                return await original(batch, lines)
            hours_ago = int(time.time()) - 2 * 3600
            batch.update(status=state, cancelling_at=hours_ago if state == "cancelling" else None,
                         expires_at=hours_ago if state == "in_progress" else int(time.time()) + 80000)

        server._run_batch = stuck
        summary = generate(config(src, server.url, tmp_path, batch=True, variants="semantic"), tmp_path / "run")
        assert len(server.batches) == 2
    assert summary.traces_new == {"semantic_back": 2} and summary.failures == 0
    with Ledger.open(tmp_path / "run") as led:
        assert all(r["collected"] for r in led.iter_batches())


def test_a_dry_run_refuses_batch_with_a_fleet_as_the_run_does(tmp_path):
    from lbdata.errors import UsageError

    src = write_problems(tmp_path / "src", 1)
    cfg = config(src, "http://127.0.0.1:1/v1", tmp_path, batch=True).model_copy(
        update={"teacher_options": {"base_url": ["http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1"]}})
    with pytest.raises(UsageError, match="--batch sends to one server"):
        dry_run(cfg, tmp_path / "run")
    with pytest.raises(UsageError, match="--batch sends to one server"):
        generate(cfg, tmp_path / "run")


def test_a_server_without_the_batch_api_is_named_as_such(tmp_path):
    """A chat server with no Files/Batches endpoints (vLLM's `serve`) answers 404: the run stops in one line that
    says the server has no Batch API, not that the model is unknown."""
    from lbdata.errors import TeacherError

    src = write_problems(tmp_path / "src", 2)
    with FakeOpenAI() as server:
        server._batch_api = lambda method, path, headers, body: (404, {"error": {"message": "Not Found"}}, None)
        with pytest.raises(TeacherError, match="Batch API") as info:
            generate(config(src, server.url, tmp_path, batch=True, variants="semantic"), tmp_path / "run")
    assert "unknown model" not in str(info.value) and "without --batch" in str(info.value)


def test_a_refused_lookup_keeps_the_record_of_a_batch_that_may_exist(tmp_path):
    """A run killed between creating a batch and recording its id, resumed with a wrong API key: the lookup is
    refused (401), and the submission's record must stay, so the next run with the right key finds the batch
    instead of paying for its requests again."""
    from lbdata.errors import TeacherError

    src = write_problems(tmp_path / "src", 2)
    with FakeOpenAI(api_key="sk-right") as server:
        cfg = config(src, server.url, tmp_path, batch=True, variants="semantic")
        run_dir = tmp_path / "run"
        with Ledger.create(run_dir) as led:
            led.put_batch("sub-killed", status="submitting", info={"keys": ["k1"], "requests": 1, "bytes": 10})
        with pytest.raises(TeacherError, match="API key"):
            generate(cfg, run_dir, api_key="sk-wrong")
    with Ledger.open(run_dir) as led:
        assert [r["submission"] for r in led.iter_batches()] == ["sub-killed"]
