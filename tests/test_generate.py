import pytest

from lbdata.errors import UsageError
from lbdata.generate import GenerateConfig, generate
from lbdata.ledger import Ledger
from tests.conftest import EchoTeacher


def test_generate_from_jsonl_records_bad_rows_and_resumes(tmp_path, jsonl_source):
    cfg = GenerateConfig(source=f"jsonl:{jsonl_source}", teacher="echo", variants="semantic,solution", limit=None)
    t1 = EchoTeacher()
    s1 = generate(cfg, tmp_path / "run", teacher=t1)
    assert s1.problems == 3 and s1.bad_rows == 5
    assert s1.traces_new == {"semantic_back": 3, "solution_back": 3}
    assert len(t1.calls) == 6
    # the same command again: nothing is requested twice, nothing duplicated
    t2 = EchoTeacher()
    s2 = generate(cfg, tmp_path / "run", teacher=t2)
    assert t2.calls == [] and s2.traces_skipped == 6 and s2.traces_new == {}
    with Ledger.open(tmp_path / "run") as led:
        c = led.counts()
        assert c["traces"] == 6 and c["problems"] == 3 and c["bad_rows"] == 5
        assert {t.variant for t in led.iter_traces()} == {"semantic_back", "solution_back"}
        seeds = {r.seed for r in t1.calls}
        assert len(seeds) == 6  # every request has its own deterministic seed


def test_failed_requests_are_recorded_and_retried_next_run(tmp_path, jsonl_source):
    cfg = GenerateConfig(source=f"jsonl:{jsonl_source}", teacher="echo", variants="semantic", limit=None)
    s1 = generate(cfg, tmp_path / "run", teacher=EchoTeacher(fail_on={"data:a"}))
    assert s1.failures == 1 and s1.failures_by_reason == {"server_error": 1}
    with Ledger.open(tmp_path / "run") as led:
        assert [f["problem_id"] for f in led.iter_failures()] == ["data:a"]
    t2 = EchoTeacher()
    s2 = generate(cfg, tmp_path / "run", teacher=t2)
    assert [r.problem.id for r in t2.calls] == ["data:a"] and s2.failures == 0
    with Ledger.open(tmp_path / "run") as led:
        assert led.counts()["failed"] == 0 and led.counts()["traces"] == 3


def test_samples_and_limit(tmp_path, jsonl_source):
    cfg = GenerateConfig(source=f"jsonl:{jsonl_source}", teacher="echo", variants="plain", limit=2, samples=2)
    s = generate(cfg, tmp_path / "run", teacher=EchoTeacher())
    # limit counts source rows (bad ones included): rows a, b
    assert s.traces_new == {"plain": 4}


def test_run_with_other_settings_is_refused(tmp_path, jsonl_source):
    generate(GenerateConfig(source=f"jsonl:{jsonl_source}", teacher="echo", variants="plain"), tmp_path / "r",
             teacher=EchoTeacher())
    with pytest.raises(UsageError, match="other settings"):
        generate(GenerateConfig(source=f"jsonl:{jsonl_source}", teacher="echo", variants="semantic"), tmp_path / "r",
                 teacher=EchoTeacher())


def test_default_run_name_ignores_limit():
    a = GenerateConfig(limit=10).default_run_name()
    assert a == GenerateConfig(limit=500, concurrency=3).default_run_name()
    assert a != GenerateConfig(seed=1).default_run_name()
    assert a.startswith("synthetic-scene-")


def test_unknown_variant_and_teacher():
    with pytest.raises(UsageError, match="unknown variant"):
        GenerateConfig(variants="sideways")
    from lbdata.teachers import load_teacher

    with pytest.raises(UsageError, match="valid teachers: .*scene"):
        load_teacher("gpt4o-typo")


def _count_traces(run_dir) -> int:
    import sqlite3

    db = run_dir / "ledger.sqlite"
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM traces WHERE status='done'").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:
        return 0


def test_resume_after_sigkill(tmp_path):
    """A `lbdata generate` killed with SIGKILL mid-run, then re-run: exactly the expected unique traces."""
    import os
    import sqlite3
    import subprocess
    import sys
    import time

    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "lbdata.cli", "generate", "--run", str(run_dir), "--limit", "600", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while _count_traces(run_dir) < 40 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    killed_at = _count_traces(run_dir)
    assert 0 < killed_at < 1200, "the run finished before it could be killed; raise --limit"
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"skipped    {killed_at} traces" in done.stdout
    con = sqlite3.connect(run_dir / "ledger.sqlite")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM traces WHERE status='done'").fetchone() == (1200, 1200)
    assert con.execute("SELECT COUNT(*) FROM problems").fetchone()[0] == 600
    assert con.execute("SELECT COUNT(DISTINCT problem_id || variant) FROM traces").fetchone()[0] == 1200


def test_synthetic_generation_is_deterministic(tmp_path):
    a = generate(GenerateConfig(limit=20), tmp_path / "a")
    b = generate(GenerateConfig(limit=20), tmp_path / "b")
    assert a.traces_new == b.traces_new == {"semantic_back": 20, "solution_back": 20}
    with Ledger.open(tmp_path / "a") as la, Ledger.open(tmp_path / "b") as lb:
        assert [t.id for t in la.iter_traces()] == [t.id for t in lb.iter_traces()]
        assert [t.text for t in la.iter_traces()] == [t.text for t in lb.iter_traces()]
        files_a = sorted(p.name for p in (tmp_path / "a" / "images").iterdir())
        assert files_a == sorted(p.name for p in (tmp_path / "b" / "images").iterdir())
