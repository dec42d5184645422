"""The CLI as a user meets it: one-line errors with exit code 2, results on stdout."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

LBDATA = [sys.executable, "-m", "lbdata.cli"]


def run(*args: str, home: Path | None = None, env: dict | None = None, cwd: Path | None = None
        ) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if k != "LBDATA_DEBUG"}
    e.update({"OMP_NUM_THREADS": "1", **(env or {})})
    if home is not None:
        e["LBDATA_HOME"] = str(home)
    return subprocess.run([*LBDATA, *args], capture_output=True, text=True, env=e, timeout=300, cwd=cwd)


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir())


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


def test_schemas_out_that_is_not_a_writable_folder_is_one_line(tmp_path):
    file = tmp_path / "taken"
    file.write_text("x")
    one_line_error(run("schemas", "--out", str(file)), "is a file", "--out")
    one_line_error(run("schemas", "--out", str(file / "below")), "cannot write the schemas", "--out")
    assert file.read_text() == "x"


@pytest.mark.parametrize("bad", ["a b", "x" * 129, "a:b", "a\\b", "run;rm"])
def test_bad_run_name(tmp_path, bad):
    """A run name that is not a path is refused before anything is written, in the home or the working folder."""
    work = tmp_path / "work"
    work.mkdir()
    proc = run("generate", "--run", bad, "--limit", "1", home=tmp_path / "home", cwd=work)
    one_line_error(proc, "invalid run name", repr(bad), "letters, digits")
    assert files_under(tmp_path) == [], "nothing is written anywhere"
    assert not any(work.iterdir())


def test_run_given_as_a_path_is_a_run_directory(tmp_path):
    """`--run ../x` names a directory (relative to the working folder), not a run under the home."""
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run([*LBDATA, "generate", "--run", "../x", "--limit", "1", "--no-progress"], cwd=work,
                          capture_output=True, text=True, env={**os.environ, "LBDATA_HOME": str(tmp_path / "home")},
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "x" / "ledger.sqlite").exists() and not (tmp_path / "home" / "runs").exists()
    written = files_under(tmp_path)
    assert written and all(f.startswith("x/") for f in written), "the run directory holds everything written"
    assert not any(work.iterdir())
    assert run("show", str(tmp_path / "x"), "--n", "1", home=tmp_path / "home").stdout.count("── ") == 1


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


# ---------------------------------------------------------------------------- run names
def _make_run(home: Path, name: str, limit: int = 2) -> None:
    """A scene-teacher run made in this process (no interpreter start-up)."""
    from lbdata.generate import GenerateConfig, generate

    generate(GenerateConfig(limit=limit, variants=("semantic_back",)), home / "runs" / name)


def test_runs_lists_full_names_at_80_columns_and_prefixes_name_runs(tmp_path):
    from lbdata.ledger import Ledger
    from lbdata.show import runs_listing

    long = "synthetic-scene-" + "a" * 60 + "-3f2a9c1d"
    _make_run(tmp_path, long)
    _make_run(tmp_path, "synthetic-scene-b")
    proc = run("runs", home=tmp_path, env={"COLUMNS": "80"})
    assert proc.returncode == 0 and long in proc.stdout.split(), proc.stdout
    plain = run("runs", "--plain", home=tmp_path).stdout.splitlines()
    assert plain[0].split("\t")[0] == "run" and {ln.split("\t")[0] for ln in plain[1:]} == {long, "synthetic-scene-b"}
    with Ledger.open(tmp_path / "runs" / long) as ledger:
        wide = runs_listing({long: ledger.counts()}, style="wide").splitlines()
    assert wide[1].endswith(long) and "semantic_back=2" in wide[1]
    shown = run("show", "synthetic-scene-a", "--n", "1", home=tmp_path)  # a unique prefix
    assert shown.returncode == 0 and shown.stdout.count("── ") == 1
    one_line_error(run("show", "synthetic-scene", home=tmp_path), "ambiguous", long, "synthetic-scene-b")
    one_line_error(run("validate", "synthetic-scene-c", home=tmp_path), "did you mean", "'synthetic-scene-b'")


def test_corpus_names_take_prefixes_and_suggest(tmp_path):
    from lbdata.corpus import BuildConfig, build_corpus, resolve_version
    from lbdata.errors import CorpusError

    _make_run(tmp_path, "r", limit=6)
    built = build_corpus(["r"], "geometry-mix", BuildConfig(variants=("semantic_back",)), home=tmp_path)
    listed = run("versions", "geo", home=tmp_path)
    assert listed.returncode == 0 and built.version in listed.stdout and "(latest)" in listed.stdout
    assert resolve_version(f"geo@{built.version[:4]}", tmp_path) == built.path
    with pytest.raises(CorpusError, match="did you mean 'geometry-mix'"):
        resolve_version("geometry-mx@latest", tmp_path)


# ---------------------------------------------------------------------------- sources, teachers, early failures
def _saved_dataset(path: Path, splits: bool) -> Path:
    import datasets

    from tests.conftest import png_bytes

    features = datasets.Features({"image": datasets.Image(), "question": datasets.Value("string"),
                                  "answer": datasets.Value("string")})

    def part(n: int) -> datasets.Dataset:
        return datasets.Dataset.from_dict({"image": [{"bytes": png_bytes(), "path": None}] * n,
                                           "question": ["What colour?"] * n, "answer": ["red"] * n}, features=features)

    (datasets.DatasetDict({"train": part(3), "test": part(2)}) if splits else part(2)).save_to_disk(str(path))
    return path


def test_saved_dataset_folder_with_split(tmp_path):
    from lbdata.errors import SourceError
    from lbdata.sources import load_source

    folder = _saved_dataset(tmp_path / "saved", splits=True)
    shown = run("sources", "show", f"{folder}@test", "--n", "5", "--out", str(tmp_path / "s"))
    assert shown.returncode == 0, shown.stderr
    assert len((tmp_path / "s" / "listing.jsonl").read_text().splitlines()) == 2  # the test split has two rows
    assert len(list(load_source(str(folder)))) == 3  # no split named: train
    with pytest.raises(SourceError, match=f"no split 'val'.*train, test.*--source {folder}@SPLIT"):
        list(load_source(f"{folder}@val"))
    flat = _saved_dataset(tmp_path / "flat", splits=False)
    assert len(list(load_source(str(flat)))) == 2
    with pytest.raises(SourceError, match="no splits; drop the '@test'"):
        list(load_source(f"{flat}@test"))


def test_scene_teacher_on_a_file_source_fails_first_and_leaves_no_run(tmp_path, jsonl_source):
    one_line_error(run("generate", "--source", f"jsonl:{jsonl_source}", home=tmp_path), "scene teacher",
                   "--teacher gpt-4o")
    assert "no runs" in run("runs", home=tmp_path).stdout


def test_failed_run_before_its_first_trace_is_removed_but_not_a_folder_that_was_there(tmp_path):
    from tests.fake_openai_server import FakeOpenAI, Fault

    with FakeOpenAI(faults=[Fault("unauthorized", times=-1)]) as server:
        args = ("generate", "--teacher", "openai:fake-teacher", "--base-url", server.url, "--limit", "2",
                "--no-progress")
        proc = run(*args, "--run", "doomed", home=tmp_path)
        assert proc.returncode == 2 and "API key" in proc.stderr, proc.stderr
        assert not (tmp_path / "runs" / "doomed").exists() and "no runs" in run("runs", home=tmp_path).stdout
        mine = tmp_path / "mine"
        mine.mkdir()
        (mine / "notes.txt").write_text("keep")
        assert run(*args, "--run", str(mine), home=tmp_path).returncode == 2
        assert (mine / "notes.txt").read_text() == "keep"


def test_wrong_served_model_names_the_served_ones(tmp_path):
    from tests.fake_openai_server import FakeOpenAI

    with FakeOpenAI(models=("look-back-7b", "other")) as server:
        proc = run("eval", "--base-url", server.url, "--served-model", "look-back-8b", "--data", "synthetic",
                   "--limit", "2", "--out", str(tmp_path / "e"))
        one_line_error(proc, "does not serve the model 'look-back-8b'", "'look-back-7b'", "/models",
                       "--served-model look-back-7b")
        assert "--max-tokens" not in proc.stderr and not (tmp_path / "e").exists() and not server.log
        proc = run("generate", "--teacher", "openai:look-back-8b", "--base-url", server.url, "--limit", "2",
                   home=tmp_path)
        one_line_error(proc, "'look-back-7b'", "--teacher openai:look-back-7b")
        assert "no runs" in run("runs", home=tmp_path).stdout and not server.log


def test_hub_source_without_network_fails_at_once(tmp_path):
    import socket
    import time

    with socket.socket() as sock:  # a port nothing listens on: the Hub is unreachable
        sock.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{sock.getsockname()[1]}"
    env = {"HF_ENDPOINT": endpoint, "HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0"}
    started = time.monotonic()
    proc = run("generate", "--source", "hf:someone/some-set@train", "--teacher", "gpt-4o", home=tmp_path, env=env)
    assert time.monotonic() - started < 60
    one_line_error(proc, "cannot reach the Hugging Face Hub", "HF_HUB_OFFLINE=1", "jsonl:PATH")
    assert "Retry" not in proc.stderr and "no runs" in run("runs", home=tmp_path).stdout
    offline = run("generate", "--source", "hf:someone/some-set", "--teacher", "gpt-4o", home=tmp_path,
                  env={"HF_HUB_OFFLINE": "1"})
    one_line_error(offline, "not in the local Hugging Face cache", "HF_HUB_OFFLINE is set", "parquet:PATH")


# ---------------------------------------------------------------------------- show --config
def test_show_finds_verdicts_of_the_config_the_run_was_validated_with(tmp_path):
    _make_run(tmp_path, "r", limit=4)
    strict = tmp_path / "strict.yaml"
    strict.write_text("min_back_words: 400\n")  # every back is now too short: back_empty for all
    assert run("validate", "r", "--config", str(strict), "--no-progress", home=tmp_path).returncode == 0
    hinted = run("show", "r", "--rejected", "--reason", "back_empty", home=tmp_path)
    one_line_error(hinted, "--config FILE")
    found = run("show", "r", "--rejected", "--reason", "back_empty", "--config", str(strict), "--n", "9",
                home=tmp_path)
    assert found.returncode == 0 and found.stdout.count("── ") == 4 and "back_empty" in found.stdout
    one_line_error(run("show", "r", "--reason", "back_emty", "--config", str(strict), home=tmp_path),
                   "did you mean back_empty")


def test_eval_checks_the_model_folder_before_loading_anything(tmp_path):
    half = tmp_path / "half"
    half.mkdir()
    (half / "config.json").write_text('{"model_type": "qwen2_5_vl"}')
    one_line_error(run("eval", "--model", str(half), "--data", "synthetic", "--limit", "2", "--out",
                       str(tmp_path / "e")), "has no weights")
    one_line_error(run("eval", "--model", str(tmp_path / "absent"), "--data", "synthetic"), "no model folder")
    assert not (tmp_path / "e").exists()


def test_a_bad_price_file_is_one_line_and_leaves_no_run(tmp_path):
    from tests.fake_openai_server import FakeOpenAI

    prices = tmp_path / "prices.yaml"
    prices.write_text("bad: [\n")
    with FakeOpenAI() as server:
        proc = run("generate", "--teacher", "openai:fake-teacher", "--base-url", server.url, "--prices", str(prices),
                   "--limit", "2", home=tmp_path)
    one_line_error(proc, "prices.yaml", "fix the file")
    assert "no runs" in run("runs", home=tmp_path).stdout


@pytest.mark.slow
def test_wrong_served_model_against_lbdata_serve(tiny_server, tmp_path):
    base_url, name = tiny_server
    proc = run("eval", "--base-url", base_url, "--served-model", "look-back-7b", "--data", "synthetic", "--limit", "1",
               "--out", str(tmp_path / "e"))
    one_line_error(proc, "does not serve the model 'look-back-7b'", repr(name), "--served-model")
    assert "--max-tokens" not in proc.stderr and "--detail" not in proc.stderr


def test_a_run_path_onto_a_folder_of_other_files_is_refused(tmp_path):
    """`--run ..` or `--run ~/project` would scatter a ledger and images among someone's files."""
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "notes.txt").write_text("mine\n")
    before = files_under(project)
    proc = run("generate", "--run", str(project), "--limit", "1", home=tmp_path / "home")
    one_line_error(proc, "is not a run folder", "notes.txt", "new or empty folder")
    assert files_under(project) == before
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run("generate", "--run", str(empty), "--limit", "1", home=tmp_path / "home").returncode == 0
    again = run("generate", "--run", str(empty), "--limit", "2", home=tmp_path / "home")  # a run: resumes
    assert again.returncode == 0, again.stderr


def test_an_absurd_sample_count_is_refused_before_any_work(tmp_path):
    proc = run("generate", "--dry-run", "--limit", "2", "--samples", "1000000", home=tmp_path / "home")
    one_line_error(proc, "--samples", "1024")
