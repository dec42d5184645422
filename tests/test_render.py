"""lbdata.render: the summaries the commands print are the library's, line for line."""

from __future__ import annotations

import sys
from pathlib import Path

from lbdata import cli
from lbdata.corpus import BuildResult
from lbdata.generate import DryRunEstimate, GenerateConfig, GenerateSummary
from lbdata.render import render_build, render_generate, render_generate_dry_run


def _summary(run_dir: Path) -> GenerateSummary:
    return GenerateSummary(
        run_dir=run_dir, problems=5, new_problems=3, bad_rows=2, bad_rows_by_reason={"image_missing": 2},
        traces_new={"semantic_back": 4}, traces_skipped=1, failures=1, failures_by_reason={"timeout": 1},
        accepted=3, rejected=2, rejected_by_reason={"back_empty": 2}, exhausted=1, requests=6,
        retries_by_reason={"429": 2}, cache_hits=1, prompt_tokens=12_345, cached_tokens=1_000, completion_tokens=678,
        cost_usd=0.0123, elapsed_s=1.5,
    )


def test_generate_summary_lines():
    config = GenerateConfig(variants=("semantic_back",), max_attempts=3)
    text = render_generate(_summary(Path("/runs/r")), config).splitlines()
    assert text[0] == "run        /runs/r"
    assert "bad rows   2 (image_missing=2)" in text and "semantic_back  4 new traces" in text
    assert "failures   1 (timeout=1)" in text
    assert "accepted   3; rejected attempts 2 (back_empty=2); no accepted trace after 3: 1" in text
    assert "requests   6 sent, 1 from the cache; retried 429=2" in text
    assert "tokens     12,345 prompt (1,000 from the prompt cache), 678 completion" in text
    assert text[-1] == "elapsed    1.5s"
    one_try = render_generate(_summary(Path("/runs/r")), GenerateConfig(variants=("semantic_back",)))
    assert "rejected attempts" not in one_try  # only when traces are requested again


def test_dry_run_lines_name_the_price_and_the_batch_limits():
    est = DryRunEstimate(model="gpt-4o", requests=10, priced=True, input_per_mtok=2.5, output_per_mtok=10.0,
                         batch=True, batches=1, batch_bytes=3_000_000, cost_usd=0.5, max_cost_usd=1.0)
    text = render_generate_dry_run(est, GenerateConfig(batch=True, batch_max_requests=100))
    assert "model      gpt-4o ($2.50 / $10.00 per 1M input / output tokens)" in text
    assert "(at most 100 requests and 200 MB each)" in text and "at the batch price" in text
    unpriced = DryRunEstimate(model="local")
    assert "not in the price table" in render_generate_dry_run(unpriced, GenerateConfig())


def _run_cli(argv, monkeypatch, capsys) -> str:
    monkeypatch.setattr(sys, "argv", ["lbdata", *argv])
    cli.main()
    return capsys.readouterr().out


def test_generate_prints_the_rendered_summary(tmp_path, monkeypatch, capsys):
    summary = _summary(tmp_path / "runs" / "r")
    monkeypatch.setattr("lbdata.generate.generate", lambda config, run_dir, **kwargs: summary)
    out = _run_cli(["generate", "--run", "r", "--variant", "semantic", "--max-attempts", "3", "--home",
                    str(tmp_path)], monkeypatch, capsys)
    assert out == render_generate(summary, GenerateConfig(variants=("semantic_back",), max_attempts=3)) + "\n"


def test_build_prints_the_rendered_result(tmp_path, monkeypatch, capsys):
    counts = {"train": {"rows": 10, "back": 4, "plain": 6, "derived": 2}, "test": {"rows": 1, "back": 0, "plain": 1,
                                                                                   "derived": 0}}
    result = BuildResult(name="c", version="abc123", path=tmp_path / "c" / "abc123", created=False,
                         manifest={"configs": ["semantic_back"], "counts": {"semantic_back": counts},
                                   "rejects": {"back_empty": 3}, "dropped": {}})
    monkeypatch.setattr("lbdata.corpus.build_corpus", lambda *args, **kwargs: result)
    out = _run_cli(["build", "r", "--name", "c", "--home", str(tmp_path)], monkeypatch, capsys)
    assert out == render_build(result) + "\n"
    assert "c@abc123 (already built; nothing written)" in out and "rejected   back_empty=3" in out
    assert "semantic_back  train      10 rows       4 back (40.0%)       6 plain (2 derived)" in out
