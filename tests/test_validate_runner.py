"""validate_run and `lbdata validate`: verdicts in the ledger per config hash, incremental re-runs, reports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lbdata.hashing import sha256_bytes
from lbdata.insert import put_base_trace
from lbdata.ledger import Ledger
from lbdata.records import ImageRef, Problem, TeacherInfo, Trace
from lbdata.validate import ValidationConfig, validate_run

Q = "The bar chart shows units sold on Monday and Tuesday. How many more units were sold on Tuesday?"
T1 = "The question asks how many more units were sold on Tuesday than on Monday, so I need both bar heights first."
BACK = "Looking at the chart again, the Tuesday bar ends exactly at the 19 gridline and the Monday bar stops at 12."
T2 = "So Tuesday is 19 and Monday is 12, and the difference is 19 - 12 = 7 units."
GOOD_SEM = f"<think>{T1}</think>\n<back>{BACK}</back>\n<think>{T2}</think>\n\\boxed{{7}}"
FILLER = GOOD_SEM.replace(
    BACK, "Let me look back at the image again to make sure everything I read is correct."
)
WRONG = GOOD_SEM.replace("\\boxed{7}", "\\boxed{8}")
GOOD_SOL = (
    "<think>Monday's bar reaches 12 and Tuesday's reaches 19, so the answer is 19 - 12 = 7.</think>\n"
    "<back>Verifying against the chart: the Monday bar tops out at the 12 gridline and the Tuesday bar at 19."
    "</back>\n<think>Both readings hold, so the difference of 7 units stands.</think>\n\\boxed{7}"
)
PLAIN = f"<think>{T1} {T2}</think> \\boxed{{7}}"
TEACHER = TeacherInfo(backend="test", model="m")


def _trace(
    problem_id: str, variant: str, text: str, sample: int, mode: str = "write", base: str | None = None
) -> Trace:
    tid = Trace.make_id(
        problem_id=problem_id,
        variant=variant,
        mode=mode,
        teacher=TEACHER,
        prompt_hash="p",
        sample=sample,
        base_trace_id=base,
    )
    return Trace(
        id=tid,
        problem_id=problem_id,
        variant=variant,
        mode=mode,
        teacher=TEACHER,
        prompt_hash="p",
        text=text,
        sample=sample,
        base_trace_id=base,
    )


def make_run(run_dir: Path) -> Ledger:
    ledger = Ledger.create(run_dir)
    img = b"not-really-a-png"
    problem = Problem(
        id="t:1",
        images=[ImageRef(sha256=sha256_bytes(img), width=4, height=4)],
        question=Q,
        answer="7",
        source="t",
    )
    ledger.put_problem(problem, [img])
    for i, (variant, text) in enumerate(
        [
            ("semantic_back", GOOD_SEM),
            ("semantic_back", FILLER),
            ("semantic_back", WRONG),
            ("solution_back", GOOD_SOL),
            ("plain", PLAIN),
        ]
    ):
        ledger.put_trace(_trace("t:1", variant, text, i))
    base_id = put_base_trace(ledger, PLAIN)
    ledger.put_trace(_trace("t:1", "semantic_back", GOOD_SEM, 10, mode="insert", base=base_id))
    rewritten = GOOD_SEM.replace(
        T2, "Thus the gap between the two bars comes out as seven units in all, I reckon."
    )
    ledger.put_trace(_trace("t:1", "semantic_back", rewritten, 11, mode="insert", base=base_id))
    return ledger


@pytest.fixture()
def run_dir(tmp_path) -> Path:
    path = tmp_path / "runs" / "r1"
    make_run(path).close()
    return path


def _verdicts(run_dir: Path, config_hash: str) -> dict[str, tuple[bool, list[str]]]:
    with Ledger.open(run_dir) as ledger:
        texts = {t.id: (t.sample, t.variant) for t in ledger.iter_traces()}
        return {texts[v.trace_id]: (v.accepted, v.reasons) for v in ledger.iter_verdicts(config_hash)}


def test_validate_run_stores_verdicts_and_writes_reports(run_dir):
    report = validate_run(run_dir, progress=False)
    chash = ValidationConfig().config_hash
    assert report.config_hash == chash and report.traces == 7 and report.validated_now == 7
    assert report.accepted == 4 and report.rejected == 3
    assert report.per_variant["semantic_back"].traces == 5
    assert report.per_variant["semantic_back"].accepted == 2
    assert report.reasons == {"back_filler": 1, "answer_wrong": 1, "insert_changed_reasoning": 1}
    assert report.answer_match_rate == pytest.approx(6 / 7)
    got = _verdicts(run_dir, chash)
    assert got[(0, "semantic_back")] == (True, [])
    assert got[(1, "semantic_back")] == (False, ["back_filler"])
    assert got[(2, "semantic_back")] == (False, ["answer_wrong"])
    assert got[(10, "semantic_back")] == (True, [])
    assert got[(11, "semantic_back")] == (False, ["insert_changed_reasoning"])
    data = json.loads((run_dir / "validation.json").read_text())
    assert data["reasons"]["back_filler"] == 1 and data["accepted"] == 4
    md = (run_dir / "validation.md").read_text()
    assert "| semantic_back | 5 | 2 | 3 |" in md and "`back_filler`" in md


def test_rerun_validates_only_what_changed(run_dir):
    validate_run(run_dir, progress=False)
    assert validate_run(run_dir, progress=False).validated_now == 0
    with Ledger.open(run_dir) as ledger:
        ledger.put_trace(_trace("t:1", "plain", PLAIN.replace("\\boxed{7}", "\\boxed{5}"), 20))
    again = validate_run(run_dir, progress=False)
    assert again.validated_now == 1 and again.traces == 8 and again.reasons["answer_wrong"] == 2
    strict = ValidationConfig(min_back_words=30)
    report = validate_run(run_dir, config=strict, progress=False)
    assert report.validated_now == 8 and report.reasons.get("back_empty", 0) >= 3
    with Ledger.open(run_dir) as ledger:  # rejected and older verdicts stay
        assert set(ledger.verdict_config_hashes()) == {ValidationConfig().config_hash, strict.config_hash}
        assert len(list(ledger.iter_verdicts(ValidationConfig().config_hash))) == 8


def test_workers_give_the_same_verdicts(run_dir, tmp_path):
    other = tmp_path / "copy"
    shutil.copytree(run_dir, other)
    validate_run(run_dir, progress=False)
    report = validate_run(other, workers=2, progress=False)
    assert report.validated_now == 7
    chash = ValidationConfig().config_hash
    assert _verdicts(run_dir, chash) == _verdicts(other, chash)


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LBDATA_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "lbdata.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        timeout=300,
    )


def test_cli_validate(run_dir, tmp_path):
    home = run_dir.parent.parent
    out = _cli("validate", "r1", "--no-progress", home=home)
    assert out.returncode == 0, out.stderr
    assert "accepted   4   rejected 3" in out.stdout
    assert "back_filler" in out.stdout and "validation.json" in out.stdout
    cfg = tmp_path / "validate.yaml"
    cfg.write_text("min_back_words: 30\n")
    out = _cli("validate", str(run_dir), "--config", str(cfg), "--workers", "2", "--no-progress", home=home)
    assert out.returncode == 0, out.stderr
    assert "validated now: 7" in out.stdout and "back_empty" in out.stdout


def test_cli_errors_are_one_line(run_dir, tmp_path):
    home = run_dir.parent.parent
    bad = tmp_path / "bad.yaml"
    bad.write_text("min_back_word: 3\n")
    out = _cli("validate", "r1", "--config", str(bad), home=home)
    assert (
        out.returncode == 2 and "unknown key 'min_back_word'" in out.stderr and "Traceback" not in out.stderr
    )
    out = _cli("validate", "nope", home=home)
    assert out.returncode == 2 and "no run 'nope'" in out.stderr
