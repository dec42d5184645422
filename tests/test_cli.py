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
