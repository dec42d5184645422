"""Training checks everything it can before a model loads or any rank starts (lbdata.train.launch)."""

import time

import pytest

from lbdata.errors import ConfigError, UsageError
from lbdata.train.launch import check_corpus_config, check_model_loads
from tests.test_cli import one_line_error, run


@pytest.fixture(scope="module")
def semantic_corpus(tmp_path_factory):
    """A home with corpus ``sem`` built from semantic-back traces only."""
    home = tmp_path_factory.mktemp("home")
    assert run("generate", "--run", "r", "--limit", "8", "--variant", "semantic", "--no-progress",
               home=home).returncode == 0
    built = run("build", "r", "--name", "sem", "--variant", "semantic", "--no-progress", home=home)
    assert built.returncode == 0, built.stderr
    return home


def test_corpus_without_the_config_names_the_ones_it_has(semantic_corpus):
    from lbdata.corpus import resolve_version

    path = resolve_version("sem@latest", semantic_corpus)
    check_corpus_config(path, "semantic")
    with pytest.raises(ConfigError, match="no solution_back train rows.*--config semantic_back.*--variant solution"):
        check_corpus_config(path, "solution")


def test_model_checks(tiny_model_dir, tmp_path, monkeypatch):
    check_model_loads(str(tiny_model_dir))
    with pytest.raises(UsageError, match="no model folder"):
        check_model_loads(str(tmp_path / "nope"))
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text((tiny_model_dir / "config.json").read_text())
    with pytest.raises(UsageError, match="has no weights"):
        check_model_loads(str(tmp_path / "half"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UsageError, match="HF_HUB_OFFLINE"):
        check_model_loads("someone/not-cached")


def test_solution_config_fails_before_the_model_is_looked_at(semantic_corpus, tmp_path):
    proc = run("train", "sft", "--corpus", "sem@latest", "--config", "solution", "--model", str(tmp_path / "nope"),
               "--recipe", "tiny-sft", "--out", str(tmp_path / "out"), home=semantic_corpus)
    one_line_error(proc, "no solution_back train rows", "--config semantic_back")
    assert not (tmp_path / "out").exists()


def test_eight_ranks_are_not_launched_for_a_model_that_cannot_load(semantic_corpus, tiny_model_dir, tmp_path):
    half = tmp_path / "half"
    half.mkdir()
    (half / "config.json").write_text((tiny_model_dir / "config.json").read_text())
    started = time.monotonic()
    proc = run("train", "sft", "--corpus", "sem@latest", "--model", str(half), "--num-processes", "8",
               "--deepspeed", "zero3", "--out", str(tmp_path / "out"), home=semantic_corpus,
               env={"LBDATA_LOG_LEVEL": "INFO"})
    one_line_error_lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert proc.returncode == 2 and len(one_line_error_lines) == 1 and "has no weights" in one_line_error_lines[0]
    assert "launching" not in proc.stderr and not (tmp_path / "out").exists()
    assert time.monotonic() - started < 120
