"""Server fleets: least-load spreading with a per-server cap, cooldowns, and a server killed mid-run."""

import asyncio
import threading
import time

import pytest
from typer.testing import CliRunner

from lbdata.cli import app
from lbdata.errors import UsageError
from lbdata.generate import GenerateConfig, generate, sender
from lbdata.ledger import Ledger
from lbdata.teachers import fleet as fleet_module
from lbdata.teachers.fleet import Fleet, read_endpoints
from tests.fake_openai_server import FakeOpenAI, Fault, write_problems


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    monkeypatch.setattr(sender, "BACKOFF_INITIAL_S", 0.01)


def test_least_load_with_a_cap_per_server():
    async def go():
        fleet = Fleet(["http://a/v1", "http://b/v1", "http://c/v1"], cap=2)
        held = [await fleet.acquire() for _ in range(6)]
        assert sorted(e.in_flight for e in fleet.endpoints) == [2, 2, 2]  # spread evenly, each at its cap
        waiter = asyncio.ensure_future(fleet.acquire())
        await asyncio.sleep(0.05)
        assert not waiter.done()  # every server is at its cap: the seventh request waits
        fleet.release(held[4], "ok")
        got = await asyncio.wait_for(waiter, 1)
        assert got is held[4] and got.in_flight == 2

    asyncio.run(go())


def test_a_dead_server_cools_down_and_a_probe_brings_it_back(monkeypatch):
    monkeypatch.setattr(fleet_module, "COOLDOWN_S", 0.2)

    async def go():
        fleet = Fleet(["http://a/v1", "http://b/v1"])
        a, b = fleet.endpoints
        for ep in (a, b):
            ep._cool_s = 0.2
        got = await fleet.acquire()
        fleet.release(got, "down")  # connection refused: cooled at once
        assert fleet.counts()[got.label]["state"] == "cooling"
        other = b if got is a else a
        picks = [await fleet.acquire() for _ in range(4)]
        assert all(p is other for p in picks)  # everything goes to the live one
        await asyncio.sleep(0.25)
        probe = await fleet.acquire()
        assert probe is got and fleet.counts()[got.label]["state"] == "probing"
        fleet.release(probe, "ok")
        assert fleet.counts()[got.label]["state"] == "up" and got.cooldowns == 1
        # a streak of server errors cools a server too, a shorter one does not
        for _ in range(fleet_module.STREAK - 1):
            other.in_flight += 1
            fleet.release(other, "error")
        assert fleet.counts()[other.label]["state"] == "up"
        other.in_flight += 1
        fleet.release(other, "error")
        assert fleet.counts()[other.label]["state"] == "cooling"

    asyncio.run(go())


def test_a_fleet_of_one_never_cools():
    async def go():
        fleet = Fleet(["http://a/v1"])
        ep = await fleet.acquire()
        fleet.release(ep, "down")
        assert fleet.counts()[ep.label]["state"] == "up" and (await fleet.acquire()) is ep

    asyncio.run(go())


def test_base_urls_from_flags_and_a_file(tmp_path):
    path = tmp_path / "servers.txt"
    path.write_text("# the fleet\nhttp://10.0.0.5:8000/v1\n\nhttp://10.0.0.6:8000/v1/  # second\n")
    assert read_endpoints(["http://a:1/v1", str(path), "http://a:1/v1"]) == [
        "http://a:1/v1", "http://10.0.0.5:8000/v1", "http://10.0.0.6:8000/v1"]
    path.write_text("10.0.0.5:8000\n")
    with pytest.raises(UsageError, match="servers.txt:1.*one URL a line"):
        read_endpoints([str(path)])
    with pytest.raises(UsageError, match="neither an http"):
        read_endpoints(["no-such-file"])


def _fleet_config(src, urls, **kw) -> GenerateConfig:
    return GenerateConfig(source=f"jsonl:{src}", teacher="openai:fake-teacher", reveal_answer=True, limit=None,
                          variants="semantic", teacher_options={"base_url": urls, "timeout": 2.0, **kw.pop("options", {})},
                          **kw)


def test_three_servers_one_killed_mid_run(tmp_path):
    src = write_problems(tmp_path / "src", 60)
    servers = [FakeOpenAI(latency_s=0.05).start() for _ in range(3)]
    victim = servers[1]
    try:
        def kill_after(n: int) -> None:
            deadline = time.time() + 30
            while len(victim.completed()) < n and time.time() < deadline:
                time.sleep(0.005)
            victim.stop()

        killer = threading.Thread(target=kill_after, args=(8,))
        killer.start()
        config = _fleet_config(src, [s.url for s in servers], concurrency=12, options={"endpoint_concurrency": 4})
        summary = generate(config, tmp_path / "run")
        killer.join()
    finally:
        for s in servers:
            if s is not victim:
                s.stop()
    assert summary.failures == 0 and summary.traces_new == {"semantic_back": 60}
    with Ledger.open(tmp_path / "run") as led:
        assert led.counts()["traces"] == 60
    counts = summary.endpoints
    assert set(counts) == {s.url for s in servers}
    dead = counts[victim.url]
    assert dead["cooldowns"] >= 1 and dead["failed"] >= 1 and dead["state"] != "up"
    alive = [counts[s.url] for s in servers if s is not victim]
    assert all(c["ok"] > dead["ok"] for c in alive)
    assert sum(c["ok"] for c in counts.values()) == 60  # each trace answered once, by some server
    for s in servers:  # never more than the cap in flight on one server
        log = sorted((e.t_recv, e.t_done) for e in s.completed())
        peak = max(sum(1 for a, b in log if a <= t < b) for t, _ in log) if log else 0
        assert peak <= 4


def test_a_server_answering_500s_hands_its_requests_to_the_others(tmp_path):
    src = write_problems(tmp_path / "src", 12)
    with FakeOpenAI(faults=[Fault("server_error", times=-1)]) as bad, FakeOpenAI() as good:
        summary = generate(_fleet_config(src, [bad.url, good.url], concurrency=4), tmp_path / "run")
    assert summary.failures == 0 and summary.traces_new == {"semantic_back": 12}
    assert summary.endpoints[bad.url]["ok"] == 0 and summary.endpoints[bad.url]["cooldowns"] >= 1
    assert summary.endpoints[good.url]["ok"] == 12
    assert summary.retries_by_reason == {}  # moved to the other server at once, not retried with backoff


def test_cli_fleet_summary_shows_every_server(tmp_path):
    src = write_problems(tmp_path / "src", 6)
    with FakeOpenAI() as a, FakeOpenAI() as b:
        urls = tmp_path / "fleet.txt"
        urls.write_text(f"{b.url}\n")
        result = CliRunner().invoke(app, [
            "generate", "--source", f"jsonl:{src}", "--teacher", "openai:fake-teacher", "--base-url", a.url,
            "--base-url", str(urls), "--variant", "semantic", "--limit", "6", "--no-progress",
            "--home", str(tmp_path / "home"), "--endpoint-concurrency", "2"])
    assert result.exit_code == 0, result.output
    lines = [ln for ln in result.output.splitlines() if ln.startswith("server")]
    assert len(lines) == 2 and all("answered" in ln for ln in lines)
    assert sum(int(ln.split(": ", 1)[1].split()[0]) for ln in lines) == 6


def test_a_bad_base_url_is_one_line(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1", "LBDATA_HOME": str(tmp_path)}
    env.pop("LBDATA_DEBUG", None)
    proc = subprocess.run([sys.executable, "-m", "lbdata.cli", "generate", "--teacher", "openai:m", "--base-url",
                           "http://127.0.0.1:9/v1", "--base-url", "127.0.0.1:8000"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "one URL a line" in proc.stderr


def test_progress_stats_show_each_server():
    from lbdata.generate.summary import GenerateSummary, stats_text

    summary = GenerateSummary(run_dir=None, requests=10, endpoints={
        "http://a/v1": {"ok": 7, "state": "up"}, "http://b/v1": {"ok": 3, "state": "cooling"}})
    assert "servers 7 3(cooling)" in stats_text(summary, False, 1.0)


def test_endpoint_labels_in_counts_never_show_credentials():
    fleet = Fleet(["http://user:sk-secret123@127.0.0.1:9/v1", "http://127.0.0.1:10/v1?api_key=sk-other456"])
    shown = repr(fleet.counts())
    assert "sk-secret123" not in shown and "sk-other456" not in shown
    assert "127.0.0.1:9" in shown and "127.0.0.1:10" in shown


def test_a_server_answering_200_with_garbage_hands_its_requests_to_the_others(tmp_path):
    """A 200 whose body is no chat completion says the server is broken: its requests go to the others at once,
    it is cooled down like a server answering 500s, and it is never counted as having answered."""
    src = write_problems(tmp_path / "src", 12)
    with FakeOpenAI(faults=[Fault("malformed", times=-1)]) as bad, FakeOpenAI() as good:
        summary = generate(_fleet_config(src, [bad.url, good.url], concurrency=4), tmp_path / "run")
    assert summary.failures == 0 and summary.traces_new == {"semantic_back": 12}
    assert summary.endpoints[bad.url]["ok"] == 0 and summary.endpoints[bad.url]["cooldowns"] >= 1
    assert summary.endpoints[good.url]["ok"] == 12
    assert summary.retries_by_reason == {}


def test_every_server_down_ends_the_run_with_one_line(tmp_path):
    """No server of the fleet accepts connections: the run stops once a request has used all its retries, with
    one line naming the cause, instead of spending every problem's retries (hours at the real backoff)."""
    import socket

    import pytest as _pytest

    from lbdata.errors import TeacherError

    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    src = write_problems(tmp_path / "src", 40)
    config = _fleet_config(src, [f"http://127.0.0.1:{p}/v1" for p in ports], concurrency=2, retries=2)
    with _pytest.raises(TeacherError, match="cannot reach the 2 servers of --base-url.*re-run") as info:
        generate(config, tmp_path / "run")
    assert "\n" not in str(info.value)
    with Ledger.open(tmp_path / "run") as led:
        assert led.counts()["failed"] <= 2  # the requests in flight when it stopped, not all 40


def test_a_fleet_file_with_a_bom_or_not_text(tmp_path):
    """A URL file saved with a byte-order mark (Windows editors) and CRLF is read; a file that is not text (a
    binary passed by mistake) is one line saying so, not a traceback."""
    path = tmp_path / "servers.txt"
    path.write_bytes(b"\xef\xbb\xbfhttp://10.0.0.5:8000/v1\r\n  # comment\r\n\r\nhttp://10.0.0.5:8000/v1\r\n")
    assert read_endpoints([str(path)]) == ["http://10.0.0.5:8000/v1"]
    path.write_bytes(b"http://10.0.0.5:8000/v1\n\xff\xfe\x00\n")
    with pytest.raises(UsageError, match="servers.txt.*not UTF-8 text"):
        read_endpoints([str(path)])


def test_a_bad_base_url_with_credentials_is_not_echoed(tmp_path):
    """user:password@host without a scheme is no URL to redact: the error must not print it (it goes to terminals
    and CI logs), whether given on the command line or in a file of URLs."""
    path = tmp_path / "servers.txt"
    path.write_text("admin:hunter2@10.0.0.5:8000/v1\n")
    for value in (str(path), "admin:hunter2@10.0.0.5:8000/v1"):
        with pytest.raises(UsageError) as info:
            read_endpoints([value])
        assert "hunter2" not in str(info.value) and "one URL a line" in str(info.value)
    assert "servers.txt:1" in str(info.value) or "--base-url" in str(info.value)


def test_a_misconfigured_server_of_a_fleet_is_named(tmp_path):
    """One replica serves another model (404): the run stops in one line that names that server, not 'the 2
    servers of --base-url'."""
    from lbdata.errors import TeacherError

    src = write_problems(tmp_path / "src", 4)
    with FakeOpenAI(models=("other-model",)) as bad, FakeOpenAI() as good, pytest.raises(TeacherError) as info:
        generate(_fleet_config(src, [bad.url, good.url], concurrency=2), tmp_path / "run")
    assert bad.url in str(info.value) and good.url not in str(info.value)
