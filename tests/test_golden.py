"""Behaviour pins: the same inputs give the same ledger, verdicts, requests and corpus bytes.

The digests below were computed before a restructuring of the modules that hold the engine, the corpus
builder and the evaluator; a refactor that changes what is asked of a teacher, what lands in the ledger,
what a validator decides or which rows a corpus holds fails here. A deliberate change (a new rules
version, a new prompt) updates the pins in the same commit and says why.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from lbdata.corpus import BuildConfig, build_corpus, iter_rows, read_manifest, resolve_version
from lbdata.generate import GenerateConfig, dry_run, generate
from lbdata.validate.config import RULES_VERSION
from lbdata.validate.runner import validate_run
from tests.fake_openai_server import FakeOpenAI, Fault, base_trace, write_problems

# Fields that carry wall-clock time; everything else in a ledger row is a pure function of the inputs.
_TIMES = {"started_at", "finished_at", "created_at", "elapsed_s", "latency_s"}


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in sorted(value.items()) if k not in _TIMES}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def ledger_digest(run_dir: Path) -> dict[str, str]:
    """One digest per ledger table, rows ordered by key, time fields left out."""
    db = sqlite3.connect(run_dir / "ledger.sqlite")
    try:
        out = {
            "problems": [_strip(json.loads(j)) for (j,) in db.execute("SELECT json FROM problems ORDER BY id")],
            "bad_rows": list(db.execute("SELECT source, key, reason, detail FROM bad_rows ORDER BY source, key")),
            "traces": [
                [status, _strip(json.loads(j))]
                for status, j in db.execute("SELECT status, json FROM traces ORDER BY id")
            ],
            "verdicts": [_strip(json.loads(j)) for (j,) in db.execute(
                "SELECT json FROM verdicts ORDER BY trace_id, config_hash")],
            "cache": [k for (k,) in db.execute("SELECT key FROM cache ORDER BY key")],
        }
    finally:
        db.close()
    return {table: f"{len(rows)}:{_digest(rows)}" for table, rows in out.items()}


def corpus_digest(spec: str, home: Path) -> dict[str, str]:
    """The version id and a digest of every row of every config and split (images by their bytes' hash)."""
    path = resolve_version(spec, home)
    manifest = read_manifest(spec, home)
    out = {"version": manifest["version"]}
    for config, splits in sorted(manifest["counts"].items()):
        for split in sorted(splits):
            rows = []
            for row in iter_rows(path, config, split):
                row = dict(row)
                row["images"] = [hashlib.sha256(im["bytes"]).hexdigest() for im in row.get("images") or []]
                rows.append(row)
            out[f"{config}/{split}"] = f"{len(rows)}:{_digest(rows)}"
    return out


def test_rules_version_of_the_pins():
    # The pins below hold for this rules version; a new version re-pins them.
    assert RULES_VERSION == 4


def test_synthetic_scene_run_ledger_verdicts_and_corpora_are_pinned(tmp_path):
    home = tmp_path / "home"
    run = home / "runs" / "g"
    summary = generate(GenerateConfig(limit=40, seed=0), run)
    assert sum(summary.traces_new.values()) == 80
    validate_run(run, progress=False)
    build_corpus([run], "g", BuildConfig(), home=home)
    build_corpus([run], "h", BuildConfig(reflection_rate=1.0, seed=3, test_size=0.2), home=home)
    assert ledger_digest(run) == GOLDEN_SCENE_LEDGER
    assert corpus_digest("g@latest", home) == GOLDEN_SCENE_CORPUS
    assert corpus_digest("h@latest", home) == GOLDEN_SCENE_CORPUS_H


@pytest.fixture()
def server():
    with FakeOpenAI(hang_s=3.0) as srv:
        yield srv


def test_http_teacher_insert_mode_with_retries_and_attempts_is_pinned(tmp_path, server, monkeypatch):
    from lbdata.generate import sender

    monkeypatch.setattr(sender, "BACKOFF_INITIAL_S", 0.01)
    src = write_problems(tmp_path / "src", 6)
    rollouts = tmp_path / "results.jsonl"
    rows = [{"problem_id": f"problems:p{i}", "response": base_trace(i), "correct": True} for i in range(5)]
    rows.append({"problem_id": "problems:p4", "response": "   ", "correct": True})  # whitespace only
    rollouts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    server.set_faults([Fault("server_error", match="What is 1+1"), Fault("malformed", match="What is 2+1")])
    cfg = GenerateConfig(source=f"jsonl:{src}", teacher="openai:fake-teacher", reveal_answer=True,
                         teacher_options={"base_url": server.url, "timeout": 2.0}, variants="semantic,solution",
                         concurrency=3, limit=None, mode="insert", base_traces=str(rollouts), max_attempts=2,
                         samples=2)
    estimate = dry_run(cfg, tmp_path / "run")
    planned = {"requests": estimate.requests, "no_base_trace": estimate.no_base_trace}
    summary = generate(cfg, tmp_path / "run")
    run = tmp_path / "run"
    got = {
        "planned": planned,
        "summary": {"traces_new": summary.traces_new, "accepted": summary.accepted, "rejected": summary.rejected,
                    "no_base_trace": summary.no_base_trace, "retries": summary.retries_by_reason,
                    "failures": summary.failures},
        "requests": sorted(hashlib.sha256(e.text.encode()).hexdigest()[:12] for e in server.log),
        "ledger": ledger_digest(run),
    }
    assert got == GOLDEN_HTTP


GOLDEN_SCENE_LEDGER = {
    "problems": "40:dd19e469e06f9318", "bad_rows": "0:4f53cda18c2baa0c", "traces": "80:37ec089c8f27e0a2",
    "verdicts": "80:8bc7d7f23dbbb318", "cache": "0:4f53cda18c2baa0c",
}
GOLDEN_SCENE_CORPUS = {
    "version": "88bcbfe8b867", "semantic_back/test": "2:2d3ba7365ceda30d", "semantic_back/train": "38:e475d44f25600e1d",
    "solution_back/test": "2:d2f3303ec4234a56", "solution_back/train": "38:2915a0ef6234bec5",
}
GOLDEN_SCENE_CORPUS_H = {
    "version": "aac1cb3ed2f0", "semantic_back/test": "8:816d7789d3266597", "semantic_back/train": "32:85776e0b9993c7d8",
    "solution_back/test": "8:1a20aa084ba6a856", "solution_back/train": "32:238aaae644eaaa96",
}
GOLDEN_HTTP = {
    "planned": {"requests": 20, "no_base_trace": 1},
    "summary": {"traces_new": {"semantic_back": 10, "solution_back": 10}, "accepted": 20, "rejected": 0,
                "no_base_trace": 1, "retries": {"server_error": 1, "malformed_response": 1}, "failures": 0},
    "requests": ["0b4ead96a588", "500b54781342", "6074c6bd3f28", "6245dbb623a9", "7a631113c332", "beeadc9433cb",
                 "c6d879533249", "de8009c0c589", "de8009c0c589", "df0ce733f3fb", "df0ce733f3fb", "f6d3b3a5986b"],
    "ledger": {"problems": "6:fa59194094bc704b", "bad_rows": "0:4f53cda18c2baa0c", "traces": "20:be3e1fe587668fa2",
               "verdicts": "20:0926bf4c49f751b1", "cache": "15:ae417c29728bed4d"},
}
