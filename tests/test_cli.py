"""The CLI as a user meets it: one-line errors with exit code 2, results on stdout."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

LBDATA = [sys.executable, "-m", "lbdata.cli"]


def run(*args: str, home: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if k != "LBDATA_DEBUG"}
    e.update({"OMP_NUM_THREADS": "1", **(env or {})})
    if home is not None:
        e["LBDATA_HOME"] = str(home)
    return subprocess.run([*LBDATA, *args], capture_output=True, text=True, env=e, timeout=300)


def one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_unknown_source_lists_valid_ones(tmp_path):
    one_line_error(run("generate", "--source", "ftp://x", home=tmp_path), "valid sources", "synthetic", "jsonl:PATH")


def test_unknown_teacher_lists_valid_ones(tmp_path):
    one_line_error(run("generate", "--teacher", "claude", home=tmp_path), "valid teachers", "scene", "gpt-4o")


def test_unwritable_home(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    one_line_error(run("generate", "--home", str(blocker / "sub"), "--limit", "1"), "--home", "LBDATA_HOME")


def test_ledger_that_is_not_sqlite(tmp_path):
    run_dir = tmp_path / "runs" / "bad"
    run_dir.mkdir(parents=True)
    (run_dir / "ledger.sqlite").write_bytes(b"\x00garbage" * 50)
    one_line_error(run("show", "bad", home=tmp_path), "not a usable lbdata ledger")


def test_missing_column(tmp_path, jsonl_source):
    one_line_error(run("generate", "--source", f"jsonl:{jsonl_source}", "--answer-col", "gold", home=tmp_path),
                   "gold", "--answer-col")


def test_unknown_run(tmp_path):
    one_line_error(run("show", "nope", home=tmp_path), "no run 'nope'")


def test_debug_shows_traceback(tmp_path):
    proc = run("show", "nope", home=tmp_path, env={"LBDATA_DEBUG": "1"})
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_runs_empty_and_schemas_check(tmp_path):
    proc = run("runs", home=tmp_path)
    assert proc.returncode == 0 and "no runs" in proc.stdout
    proc = run("schemas", "--check")
    assert proc.returncode == 0 and "up to date" in proc.stdout


def test_schemas_check_fails_on_drift(tmp_path):
    (tmp_path / "Trace.schema.json").write_text("{}")
    one_line_error(run("schemas", "--check", "--out", str(tmp_path)), "lbdata schemas")


@pytest.mark.parametrize("bad", ["../x", "a b"])
def test_bad_run_name(tmp_path, bad):
    proc = run("generate", "--run", bad, "--limit", "1", home=tmp_path)
    if bad == "../x":  # a path is a run directory, which is allowed
        return
    one_line_error(proc, "invalid run name")


def test_sqlite_ledger_of_another_app(tmp_path):
    run_dir = tmp_path / "runs" / "other"
    run_dir.mkdir(parents=True)
    sqlite3.connect(run_dir / "ledger.sqlite").execute("CREATE TABLE t (x)").connection.close()
    one_line_error(run("show", "other", home=tmp_path), "not an lbdata ledger")


def test_generate_runs_show_and_show_rejected(tmp_path):
    from lbdata.ledger import Ledger
    from lbdata.records import TeacherInfo, Trace

    proc = run("generate", "--limit", "6", "--run", "r1", "--no-progress", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "semantic_back  6 new traces" in proc.stdout and "solution_back  6 new traces" in proc.stdout
    listing = run("runs", home=tmp_path)
    assert "r1" in listing.stdout and "12" in listing.stdout
    shown = run("show", "r1", "--n", "2", home=tmp_path)
    assert shown.returncode == 0 and shown.stdout.count("<back>") == 2 and "\\boxed{" in shown.stdout
    # one hand-made trace with an empty back, then validate: show --rejected finds exactly it
    with Ledger.open(tmp_path / "runs" / "r1") as led:
        problem = next(led.iter_problems())
        info = TeacherInfo(backend="hand", model="x")
        tid = Trace.make_id(problem_id=problem.id, variant="semantic_back", mode="write", teacher=info, prompt_hash="h")
        text = ("<think> The chart shows several bars with labels and I need to read two of them carefully first. "
                "</think> <back> ok </back> <think> Then the difference follows from the two values. </think> "
                f"\\boxed{{{problem.answer}}}")
        led.put_trace(Trace(id=tid, problem_id=problem.id, variant="semantic_back", teacher=info, prompt_hash="h",
                            text=text))
    assert run("validate", "r1", home=tmp_path).returncode == 0
    rejected = run("show", "r1", "--rejected", "--reason", "back_empty", "--n", "5", home=tmp_path)
    assert rejected.returncode == 0, rejected.stderr
    assert rejected.stdout.count("── ") == 1 and tid in rejected.stdout and "back_empty" in rejected.stdout
    none = run("show", "r1", "--reason", "back_copy", home=tmp_path)
    assert "no traces match" in none.stdout
