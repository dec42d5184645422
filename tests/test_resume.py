"""Where a training run starts when its output folder already holds something (lbdata.train.resume).

The runs that are killed and resumed for real are in tests/test_train.py (slow); these check the decision
on folders laid out as the trainer leaves them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lbdata.errors import ConfigError, UsageError
from lbdata.train.common import LOG_FILE, RUN_FILE, STARTED_FILE
from lbdata.train.resume import (
    LAST,
    last_checkpoint,
    mark_started,
    plan_resume,
    resume_option,
    run_identity,
)

JOB = run_identity("sft", data="/corpora/syn/abc", config="semantic_back", values={"learning_rate": 2e-3, "max_steps": 8})


def _checkpoint(out: Path, step: int, *, whole: bool = True) -> Path:
    path = out / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(b"weights")
    if whole:  # the trainer writes trainer_state.json last
        (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return path


def test_a_new_or_empty_folder_starts_at_step_zero(tmp_path):
    assert plan_resume(tmp_path / "new", JOB) is None
    assert plan_resume(tmp_path, JOB) is None
    with pytest.raises(UsageError, match="--resume: .* holds no complete checkpoint to resume from; run without --resume"):
        plan_resume(tmp_path, JOB, resume=LAST)


def test_an_interrupted_run_of_the_same_job_resumes_from_its_last_whole_checkpoint(tmp_path):
    mark_started(tmp_path, JOB, None)
    for step in (2, 4, 10):
        _checkpoint(tmp_path, step)
    _checkpoint(tmp_path, 12, whole=False)  # killed while saving
    assert last_checkpoint(tmp_path) == tmp_path / "checkpoint-10"  # by step, not by name (10 > 4)
    assert plan_resume(tmp_path, JOB) == tmp_path / "checkpoint-10"
    assert plan_resume(tmp_path, JOB, resume=LAST) == tmp_path / "checkpoint-10"
    assert plan_resume(tmp_path, JOB, resume=str(tmp_path / "checkpoint-2")) == tmp_path / "checkpoint-2"
    assert mark_started(tmp_path, JOB, 10) == [10] and mark_started(tmp_path, JOB, 14) == [10, 14]


def test_a_finished_or_different_run_is_one_error_that_says_how_to_go_on(tmp_path):
    mark_started(tmp_path, JOB, None)
    _checkpoint(tmp_path, 4)
    other = run_identity("sft", data="/corpora/syn/abc", config="semantic_back",
                         values={"learning_rate": 1e-5, "max_steps": 8})
    with pytest.raises(ConfigError, match=r"unfinished sft run of another job \(it differs in learning_rate\); "
                                          r"pass --overwrite to start over in .*, or another --out"):
        plan_resume(tmp_path, other)
    (tmp_path / RUN_FILE).write_text("{}")
    with pytest.raises(ConfigError, match=r"holds a finished sft run \(lbdata_train.json\); pass --overwrite"):
        plan_resume(tmp_path, JOB)
    with pytest.raises(UsageError, match="not a checkpoint folder"):
        plan_resume(tmp_path, JOB, resume=str(tmp_path))


def test_checkpoints_no_run_claims_resume_only_when_asked(tmp_path):
    _checkpoint(tmp_path, 3)
    with pytest.raises(ConfigError, match="checkpoints .checkpoint-3. that no lbdata run claims; pass --resume"):
        plan_resume(tmp_path, JOB)
    assert plan_resume(tmp_path, JOB, resume=LAST) == tmp_path / "checkpoint-3"


def test_overwrite_deletes_the_earlier_run_but_not_other_files(tmp_path):
    mark_started(tmp_path, JOB, None)
    _checkpoint(tmp_path, 4)
    for name in (RUN_FILE, LOG_FILE, "model.safetensors", "notes.txt"):
        (tmp_path / name).write_text("x")
    assert plan_resume(tmp_path, JOB, overwrite=True) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors", "notes.txt"]
    assert not (tmp_path / STARTED_FILE).exists()
    with pytest.raises(UsageError, match="contradict"):
        plan_resume(tmp_path, JOB, resume=LAST, overwrite=True)


def test_resume_flags():
    assert resume_option(False, None) is None and resume_option(True, None) == LAST
    assert resume_option(False, "ckpt/checkpoint-4") == "ckpt/checkpoint-4"
    with pytest.raises(UsageError, match="not both"):
        resume_option(True, "ckpt/checkpoint-4")


def test_the_command_refuses_an_out_with_a_finished_run_in_one_line(tiny_model_dir, tmp_path):
    from tests.test_cli import one_line_error, run

    out = tmp_path / "grpo"
    out.mkdir()
    (out / RUN_FILE).write_text("{}")
    proc = run("train", "grpo", "--data", "synthetic", "--limit", "2", "--model", str(tiny_model_dir),
               "--recipe", "tiny-grpo", "--out", str(out))
    one_line_error(proc, f"{out} holds a finished grpo run (lbdata_train.json); pass --overwrite to start over")
