"""What a generation run did: ``GenerateSummary``, and the one-line stats its progress bar shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class GenerateSummary:
    run_dir: Path
    problems: int = 0
    new_problems: int = 0
    bad_rows: int = 0
    bad_rows_by_reason: dict[str, int] = field(default_factory=dict)
    no_base_trace: int = 0
    traces_new: dict[str, int] = field(default_factory=dict)
    traces_skipped: int = 0
    failures: int = 0
    failures_by_reason: dict[str, int] = field(default_factory=dict)
    accepted: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    exhausted: int = 0
    requests: int = 0
    retries_by_reason: dict[str, int] = field(default_factory=dict)
    truncated: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    not_started: int = 0
    cost_usd: float = 0.0
    elapsed_s: float = 0.0
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    batches: dict[str, int] = field(default_factory=dict)
    run_cost_usd: float = 0.0  # everything the run has paid so far, earlier invocations included
    acceptance: float | None = None  # share of the run's validated traces that were accepted
    usd_per_1k_accepted: float | None = None  # run_cost_usd per 1,000 accepted traces (None before any verdict)

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["run_dir"] = str(self.run_dir)
        return d



def stats_text(summary: GenerateSummary, validating: bool, minutes: float) -> str:
    """done / failed / accepted, request and token rates, spend."""
    parts = [f"failed {summary.failures}"]
    if validating:
        parts.append(f"accepted {summary.accepted}")
    if summary.requests or summary.cost_usd:
        tokens = summary.prompt_tokens + summary.completion_tokens
        parts.append(f"{summary.requests / minutes:,.0f} req/min {tokens / minutes:,.0f} tok/min")
        parts.append(f"${summary.cost_usd:.4f}")
    if summary.batches.get("running"):
        parts.append(f"{summary.batches['running']} batches running")
    if summary.endpoints:  # answered per server, in --base-url order; a server not up says so
        parts.append("servers " + " ".join(f"{c['ok']}{'' if c['state'] == 'up' else '(' + c['state'] + ')'}"
                                           for c in summary.endpoints.values()))
    return "  ".join(parts)


__all__ = ["GenerateSummary", "stats_text"]
