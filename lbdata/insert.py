"""Base traces for insert mode: a teacher returns them with ``<back>`` segments placed for a variant.

A base trace comes from a source column (``--trace-col``) or from a rollout file (``--base-traces
FILE.jsonl``), one JSON object per line with ``problem_id`` and ``response`` — the layout ``lbdata
eval`` writes to ``results.jsonl``; other keys are ignored, and a problem may have several rollouts.

Each base text is addressed by ``base_trace_id`` (a content hash) and stored once per run in the
ledger's ``cache`` table under ``base_trace:<id>``, so ``lbdata validate`` can check later that an
inserted trace kept the base reasoning (``get_base_trace``).
"""

from __future__ import annotations

import json
from pathlib import Path

from lbdata.errors import UsageError
from lbdata.hashing import sha256_text
from lbdata.ledger import Ledger

_KEY_PREFIX = "base_trace:"


def base_trace_id(text: str) -> str:
    """Content hash of a base trace (16 hex digits; surrounding whitespace ignored)."""
    return sha256_text(text.strip())[:16]


def load_base_traces(path: str | Path) -> dict[str, list[str]]:
    """``{problem_id: [response, …]}`` from a rollout file, in file order, repeats dropped."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--base-traces file {path} does not exist; pass a results.jsonl written by `lbdata eval`")
    out: dict[str, list[str]] = {}
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise UsageError(f"{path}:{lineno} is not JSON; each line must be an object with problem_id and response") from None
            if not isinstance(row, dict) or not isinstance(row.get("problem_id"), str) or not isinstance(
                row.get("response"), str
            ):
                raise UsageError(f"{path}:{lineno} needs string fields problem_id and response (as `lbdata eval` writes)")
            text = row["response"].strip()
            if not text:
                continue
            texts = out.setdefault(row["problem_id"], [])
            if text not in texts:
                texts.append(text)
    return out


def put_base_trace(ledger: Ledger, text: str) -> str:
    """Store a base trace in the run (once) and return its id."""
    bid = base_trace_id(text)
    ledger.cache_put(_KEY_PREFIX + bid, {"text": text.strip()})
    return bid


def get_base_trace(ledger: Ledger, bid: str) -> str | None:
    """The text of a base trace stored by ``put_base_trace`` (``None`` when the run has none)."""
    hit = ledger.cache_get(_KEY_PREFIX + bid)
    return hit["text"] if hit else None
