"""The stored judgments of a run, per trace, for the places that show them (``lbdata show``, ``lbdata view``).

``lbdata judge`` stores one record per trace and judge config (``lbdata.judge``); this module reads
them back by the judges' names. Only judgments of the trace text stored now count, as in
``lbdata validate --judge``: a trace edited since it was judged is *unjudged* again. Claims are the
judge's words about a teacher's text, so they are untrusted: every display shows them as text.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from lbdata.ledger import Ledger


@dataclass(frozen=True)
class TraceJudgment:
    """One judge's word on one trace: ``judged`` with its claims, or ``unjudged`` (its answers stayed
    malformed or the request failed; ``error`` says why)."""

    judge: str
    status: str
    claims: tuple[tuple[str, bool | None], ...] = ()
    error: str | None = None

    @property
    def refuted(self) -> int:
        return sum(supported is False for _, supported in self.claims)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"judge": self.judge, "status": self.status,
                               "claims": [[claim, supported] for claim, supported in self.claims]}
        if self.error:
            out["error"] = self.error
        return out


def run_judgments(ledger: Ledger) -> dict[str, dict[str, TraceJudgment]]:
    """trace id -> judge name -> its current judgment, for every judge of the run (empty without judges)."""
    out: dict[str, dict[str, TraceJudgment]] = defaultdict(dict)
    for name in ledger.judge_names():
        known = ledger.get_judge(name)
        if known is None:
            continue
        for trace_id, status, record in ledger.iter_judgments(known[0]):
            claims = tuple((str(c.get("claim", "")), c.get("supported")) for c in record.get("claims", []))
            out[trace_id][name] = TraceJudgment(name, status, claims, record.get("error"))
    return dict(out)


def trace_judgments(judges: list[str], by_judge: dict[str, TraceJudgment] | None) -> list[TraceJudgment]:
    """One entry per judge of the run for a trace with backs: its judgment, or ``unjudged`` when it has none."""
    by_judge = by_judge or {}
    return [by_judge.get(name) or TraceJudgment(name, "unjudged") for name in judges]


__all__ = ["TraceJudgment", "run_judgments", "trace_judgments"]
