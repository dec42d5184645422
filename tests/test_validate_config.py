"""ValidationConfig: YAML loading, unknown keys, and the hash that keys verdicts."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lbdata.errors import ConfigError
from lbdata.validate import ValidationConfig


def test_yaml_round_trip(tmp_path):
    path = tmp_path / "validate.yaml"
    path.write_text("min_back_words: 10\nmax_backs: 2\n")
    cfg = ValidationConfig.from_yaml(path)
    assert cfg.min_back_words == 10 and cfg.max_backs == 2 and cfg.min_rethink_words == 5


def test_unknown_key_is_named(tmp_path):
    path = tmp_path / "validate.yaml"
    path.write_text("min_back_word: 10\n")
    with pytest.raises(ConfigError, match="unknown key 'min_back_word'.*min_back_words"):
        ValidationConfig.from_yaml(path)


def test_bad_value_is_named(tmp_path):
    path = tmp_path / "validate.yaml"
    path.write_text("max_copy_share: 2\n")
    with pytest.raises(ConfigError, match="max_copy_share"):
        ValidationConfig.from_yaml(path)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        ValidationConfig.from_yaml(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        ValidationConfig.from_yaml(tmp_path / "bad.yaml")


def test_config_is_frozen_and_documented():
    cfg = ValidationConfig()
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen error type is an implementation detail
        cfg.max_backs = 5  # type: ignore[misc]
    for name, field in ValidationConfig.model_fields.items():
        assert field.description, name


def test_hash_follows_values_and_is_stable_across_processes():
    a, b = ValidationConfig(), ValidationConfig()
    assert a.config_hash == b.config_hash
    assert ValidationConfig(min_back_words=9).config_hash != a.config_hash
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from lbdata.validate import ValidationConfig; print(ValidationConfig().config_hash)",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123", "PATH": ""},
    )
    assert out.stdout.strip() == a.config_hash


# ---------------------------------------------------------------------------- `lbdata validate --config FILE`
# (file content, what the one error line must say); bytes are written as they are
BAD_CONFIGS = [
    ("min_back_word: 10\n", "unknown key 'min_back_word'"),
    ("max_backs: 2\n1: 3\n", "unknown key 1"),
    ("max_backs: 0\n", "'max_backs'"),
    ("max_copy_share: 2\n", "'max_copy_share'"),
    ("answer_timeout_s: 0\n", "'answer_timeout_s'"),
    ("min_back_words: many\n", "'min_back_words'"),
    ("max_backs:\n", "'max_backs'"),
    ("- max_backs\n- 3\n", "must be a mapping"),
    ("max_backs\n", "must be a mapping"),
    ("max_backs: [3\n", "not valid YAML (line 2"),
    (b"\xff\xfe max_backs: 3\n", "not UTF-8"),
    (None, "cannot read"),  # no file
    ("<dir>", "cannot read"),  # a folder
]


@pytest.fixture(scope="module")
def scene_run(tmp_path_factory):
    from lbdata.generate import GenerateConfig, generate

    home = tmp_path_factory.mktemp("home")
    generate(GenerateConfig(limit=2, variants=("semantic_back",)), home / "runs" / "r")
    return home


@pytest.mark.parametrize(("content", "needle"), BAD_CONFIGS, ids=[n for _, n in BAD_CONFIGS])
def test_a_bad_validate_config_is_one_line_naming_the_key_exit_2(content, needle, scene_run, tmp_path, monkeypatch,
                                                                 capsys):
    from lbdata.ledger import Ledger
    from tests.test_cli_options import run_main

    path = tmp_path / "validate.yaml"
    if content == "<dir>":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    code, out, err = run_main(["validate", "r", "--config", str(path), "--home", str(scene_run), "--no-progress"],
                              monkeypatch, capsys)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, (out, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("error: ") and needle in lines[0] and "validate.yaml" in lines[0], lines[0]
    assert out == ""
    with Ledger.open(scene_run / "runs" / "r") as ledger:
        assert ledger.verdict_config_hashes() == []  # nothing was validated


def test_a_refused_threshold_says_the_bound_the_value_and_the_default(tmp_path):
    path = tmp_path / "validate.yaml"
    path.write_text("max_backs: 0\n")
    with pytest.raises(ConfigError) as info:
        ValidationConfig.from_yaml(path)
    assert str(info.value) == (f"bad value for 'max_backs' in {path}: must be greater than or equal to 1 (got 0); "
                               "fix it, or remove the key for the default (3)")


def test_a_bad_config_is_refused_before_the_run_is_looked_up(tmp_path, monkeypatch, capsys):
    from tests.test_cli_options import run_main

    path = tmp_path / "validate.yaml"
    path.write_text("bogus: 1\n")
    code, _, err = run_main(["validate", "no-such-run", "--config", str(path), "--home", str(tmp_path / "h")],
                            monkeypatch, capsys)
    assert code == 2 and "unknown key 'bogus'" in err, err
