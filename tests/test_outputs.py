"""Outputs appear whole or not at all, and secrets never reach them (what README calls "What lbdata guarantees")."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_corpus import make_run

from lbdata import cli
from lbdata.corpus import BuildConfig, build_corpus
from lbdata.errors import UsageError
from lbdata.export import EXPORT_FILE, export_corpus
from lbdata.hub import check_repo_id, push_corpus
from lbdata.secrets import redact, redact_text, redact_url
from lbdata.view import build_run_view
from lbdata.workspace import make_partial_dir, partial_prefix, staged_dir, sweep_partials

SECRET = "sk-proj-Secret0123456789abcdef"


# ---------------------------------------------------------------------------- whole or not at all
def test_a_failed_write_leaves_nothing_and_an_old_output_stays(tmp_path):
    final = tmp_path / "out"
    with pytest.raises(RuntimeError), staged_dir(final) as work:
        (work / "half").write_text("x")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    with staged_dir(final) as work:
        (work / "v1").write_text("1")
    with pytest.raises(RuntimeError), staged_dir(final) as work:
        (work / "v2").write_text("2")
        raise RuntimeError("killed")
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and [p.name for p in final.iterdir()] == ["v1"]


def test_leftovers_of_a_dead_process_are_swept_but_not_those_of_a_live_one(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    mine = make_partial_dir(tmp_path / "site")
    theirs = tmp_path / partial_prefix("site").replace(f"~{os.getpid()}~", f"~{pid}~")
    theirs = tmp_path / f"{theirs.name}abc"
    theirs.mkdir()
    (theirs / "half.js").write_text("x")
    legacy = tmp_path / f".build-{pid}-x1y2"  # what a build killed before this change left behind
    legacy.mkdir()
    assert sorted(sweep_partials(tmp_path, legacy_builds=True)) == sorted([theirs, legacy])
    assert mine.exists() and not theirs.exists() and not legacy.exists()


KILL_BETWEEN_RENAMES = """
import os, signal, sys
from pathlib import Path
from lbdata import workspace
real, calls = os.replace, []
def replace(src, dst):
    calls.append(dst)
    if len(calls) == 2:  # the old output is moved aside, the new one not yet in place
        os.kill(os.getpid(), signal.SIGKILL)
    real(src, dst)
workspace.os.replace = replace
final = Path(sys.argv[1])
with workspace.staged_dir(final) as work:
    (work / "v2").write_text("2")
"""


def test_a_kill_between_the_renames_of_a_replace_loses_no_output(tmp_path):
    final = tmp_path / "out"
    with staged_dir(final) as work:
        (work / "v1").write_text("1")
    proc = subprocess.run([sys.executable, "-c", KILL_BETWEEN_RENAMES, str(final)], timeout=60,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.returncode == -9 and not final.exists()  # killed with the old output set aside
    sweep_partials(tmp_path)  # what the next writer into this folder does first
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and (final / "v1").read_text() == "1"


def test_a_sweep_in_a_user_folder_leaves_build_like_names_alone(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    theirs = tmp_path / f".build-{int(dead.stdout)}-cache"  # not lbdata's: another tool's folder
    theirs.mkdir()
    make_partial_dir(tmp_path / "export")
    assert theirs.exists()


def test_out_dot_is_refused_in_one_line_and_leaves_nothing(home, tmp_path, monkeypatch):
    """An output folder is replaced whole, so the folder a shell is in cannot be one: ``--out .`` failed
    with a traceback renaming '.', and left a work folder behind."""
    run = make_run(tmp_path / "run", 4)
    (tmp_path / "site").mkdir()
    monkeypatch.chdir(tmp_path / "site")
    for out in (Path("."), tmp_path / "site", tmp_path):
        with pytest.raises(UsageError, match="current folder"), staged_dir(out):
            pass
    for out in (Path("."), tmp_path / "site"):
        with pytest.raises(UsageError, match="current folder"):
            build_run_view(run, out)
    assert list((tmp_path / "site").iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["run", "site"]
    build_run_view(run, Path("../site2"))
    assert (tmp_path / "site2" / "index.html").is_file()


def test_an_output_with_a_name_near_the_length_limit_is_written(tmp_path):
    """The work folder's name adds a suffix to the output's: a 240-character --out failed with 'File name too
    long' although the folder itself can exist."""
    final = tmp_path / ("é" * 120)  # 240 bytes
    with staged_dir(final) as work:
        (work / "v1").write_text("1")
    assert (final / "v1").read_text() == "1" and [p.name for p in tmp_path.iterdir()] == [final.name]
    with staged_dir(final) as work:  # replaced: the old one is set aside under a work name too
        (work / "v2").write_text("2")
    assert [p.name for p in final.iterdir()] == ["v2"] and [p.name for p in tmp_path.iterdir()] == [final.name]


def test_an_output_that_is_a_link_is_written_where_it_points(home, tmp_path):
    """``--out site`` with site -> /srv/www/site: the link used to be replaced by a folder, so the
    folder it pointed to (the one being served) was never updated again."""
    run = make_run(tmp_path / "run", 4)
    served = tmp_path / "srv" / "site"
    served.mkdir(parents=True)
    (tmp_path / "site").symlink_to(served)
    build_run_view(run, tmp_path / "site")
    build_run_view(run, tmp_path / "site")
    assert (tmp_path / "site").is_symlink() and (served / "index.html").is_file()
    (tmp_path / "exp").mkdir()
    (tmp_path / "out").symlink_to(tmp_path / "exp")
    with staged_dir(tmp_path / "out") as work:
        (work / "v1").write_text("1")
    assert (tmp_path / "out").is_symlink() and (tmp_path / "exp" / "v1").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp", "out", "run", "site", "srv"]


def test_the_write_probe_of_two_processes_at_once_is_no_error(tmp_path, monkeypatch):
    """Two commands starting together probe the same folder; one removing the probe between the other's
    write and remove used to fail the second with "cannot write to the run directory"."""
    from lbdata.workspace import ensure_writable_dir

    real = Path.write_text

    def write_then_other_removes(self, *args, **kwargs):
        n = real(self, *args, **kwargs)
        if self.name.startswith(".lbdata-write-probe"):
            os.unlink(self)  # the other process's unlink lands here
        return n

    monkeypatch.setattr(Path, "write_text", write_then_other_removes)
    assert ensure_writable_dir(tmp_path / "run", "run directory") == tmp_path / "run"


def test_a_view_that_fails_leaves_nothing_that_blocks_the_next(home, tmp_path, monkeypatch):
    """A killed or failed view used to leave a half site without its marker, and every later view refused."""
    run = make_run(tmp_path / "run", 6)
    out = tmp_path / "site"

    def boom(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m, pytest.raises(OSError):
        m.setattr("lbdata.view.build.write_plots", boom)
        build_run_view(run, out)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if "~" in p.name]
    assert build_run_view(run, out).rows > 0 and (out / "index.html").exists()


def test_a_source_named_like_mathtext_draws(home, tmp_path):
    import sqlite3

    run = make_run(tmp_path / "run", 4)
    con = sqlite3.connect(run / "ledger.sqlite")
    for pid, js in con.execute("SELECT id, json FROM problems").fetchall():
        row = json.loads(js)
        row["source"] = "bad$\\frac{$"
        con.execute("UPDATE problems SET json=? WHERE id=?", (json.dumps(row), pid))
    con.commit()
    con.close()
    summary = build_run_view(run, tmp_path / "site")
    assert (tmp_path / "site" / "plots").is_dir() and summary.rows == 8


def test_export_that_fails_leaves_no_folder(home, tmp_path, monkeypatch):
    run = make_run(tmp_path / "run", 8)
    res = build_corpus([run], "ex", BuildConfig(test_size=0.0), home=home)
    out = tmp_path / "export"

    def boom(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m, pytest.raises(OSError):
        m.setattr("lbdata.export._export_parquet", boom)
        export_corpus(f"ex@{res.version}", "trl-sft", out)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if "~" in p.name]
    done = export_corpus(f"ex@{res.version}", "trl-sft", out)
    assert done.out == out and (out / EXPORT_FILE).exists()


def test_disk_full_is_one_line_exit_2(monkeypatch, capsys):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/corpora/x")

    monkeypatch.setattr("lbdata.corpus.build_corpus", full)
    monkeypatch.setattr(sys, "argv", ["lbdata", "build", "r", "--name", "x", "--no-progress"])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1 and "disk is full" in err[0] and "/data/corpora/x" in err[0]


@pytest.mark.parametrize("args", [["view", "r", "--out", "LONG"],
                                  ["generate", "--source", "JSONL", "--image-root", "LONG", "--limit", "1"]])
def test_a_path_over_the_system_limit_is_one_line_exit_2(args, monkeypatch, capsys, tmp_path):
    long = str(tmp_path / ("a" * 5000))
    make_run(tmp_path / "home" / "runs" / "r", 2)
    (tmp_path / "d.jsonl").write_text('{"question": "Q?", "answer": "1", "image": "a.png"}\n')
    swap = {"LONG": long, "JSONL": f"jsonl:{tmp_path / 'd.jsonl'}"}
    monkeypatch.setattr(sys, "argv", ["lbdata", *[swap.get(a, a) for a in args], "--no-progress",
                                      "--home", str(tmp_path / "home")])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1 and "too long" in err[0] and len(err[0]) < 400, err


def test_rpm_zero_is_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(sys, "argv", ["lbdata", "generate", "--rpm", "0", "--home", str(tmp_path)])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1 and err[0].startswith("error: --rpm: ")


# ---------------------------------------------------------------------------- secrets
@pytest.mark.parametrize(("url", "clean"), [
    (f"http://user:{SECRET}@127.0.0.1:8000/v1", "http://***@127.0.0.1:8000/v1"),
    (f"https://{SECRET}@api.example.com/v1", "https://***@api.example.com/v1"),
    (f"http://h/v1?api-key={SECRET}&api-version=2024-06-01", "http://h/v1?api-key=***&api-version=2024-06-01"),
    (f"http://h/v1?token={SECRET}", "http://h/v1?token=***"),
    ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
    (f"https://gw.example.com/v1/keys/{SECRET}/openai", "https://gw.example.com/v1/keys/***/openai"),
    (f"http://h/v1#api_key={SECRET}", "http://h/v1#api_key=***"),
    (f"http://h/v1#{SECRET}", "http://h/v1#***"),
])
def test_redact_url(url, clean):
    assert redact_url(url) == clean and SECRET not in redact_text(f"failed at {url}: 500")


def test_redact_masks_secret_fields_and_urls_but_not_file_names():
    assert SECRET not in json.dumps(redact({"base_url": f"https://gw.example.com/k/{SECRET}/v1#token={SECRET}"}))
    out = redact({"teacher_options": {"base_url": f"http://u:{SECRET}@h/v1", "api_key": SECRET},
                  "source": "jsonl:/data/sk-learn-examples.jsonl", "n": 3})
    assert SECRET not in json.dumps(out) and out["n"] == 3
    assert out["source"] == "jsonl:/data/sk-learn-examples.jsonl"
    assert SECRET not in redact_text(f"401 from server: Bearer {SECRET}")


def _generate(url: str, home: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "LBDATA_LOG_LEVEL": "INFO"}
    return subprocess.run([sys.executable, "-m", "lbdata.cli", "generate", "--teacher", "openai:fake-teacher",
                           "--base-url", url, "--run", "s", "--no-progress", "--home", str(home), *extra],
                          capture_output=True, text=True, timeout=120, env=env)


def _no_secret_under(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file() and path.suffix != ".png":
            assert SECRET.encode() not in path.read_bytes(), path


def test_base_url_credentials_reach_no_message_when_the_server_is_down(tmp_path):
    home = tmp_path / "home"
    url = f"http://user:{SECRET}@127.0.0.1:9/v1?api-key={SECRET}"  # nothing listens on port 9
    proc = _generate(url, home, "--limit", "2", "--retries", "0")
    assert proc.returncode == 2 and "cannot reach http://***@127.0.0.1:9/v1" in proc.stderr  # one line, masked
    assert SECRET not in proc.stdout + proc.stderr
    _no_secret_under(home)


def test_base_url_credentials_reach_no_file_and_no_message(tmp_path):
    """A run with traces and a failed request (its error names the server): no file, message or view page
    shows the credentials of --base-url."""
    from fake_openai_server import FakeOpenAI, Fault

    home = tmp_path / "home"
    with FakeOpenAI(faults=[Fault("malformed")]) as server:
        url = server.url.replace("http://", f"http://user:{SECRET}@") + f"?api-key={SECRET}"  # sent as a query
        proc = _generate(url, home, "--limit", "3", "--retries", "0")
    assert proc.returncode == 0, proc.stderr
    assert SECRET not in proc.stdout + proc.stderr
    run = home / "runs" / "s"
    from lbdata.ledger import Ledger

    with Ledger.open(run) as ledger:
        assert list(ledger.iter_failures()) and list(ledger.iter_traces())  # what the checks below read exists
    assert f"***@127.0.0.1:{server.url.split(':')[2].split('/')[0]}" in (run / "config.json").read_text()
    _no_secret_under(run)
    build = build_run_view(run, tmp_path / "site")
    _no_secret_under(build.out_dir)


@pytest.mark.parametrize("repo", ["../x", "org/../x", "org/x..y", "org/-x", "org/x.git", "org/a b", "o/" + "a" * 97])
def test_repo_is_checked_like_the_hub(repo):
    with pytest.raises(UsageError, match="--repo"):
        check_repo_id(repo)


def test_push_dry_run_refuses_a_bad_repo_before_staging(home, tmp_path):
    run = make_run(tmp_path / "run", 6)
    build_corpus([run], "hubby", BuildConfig(test_size=0.0), home=home)
    with pytest.raises(UsageError, match="not a valid Hub dataset id"):
        push_corpus("hubby", "../x", dry_run=True)
    assert not (home / "staging").exists()
    assert check_repo_id("org/hubby") == "org/hubby"
