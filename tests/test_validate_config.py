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
