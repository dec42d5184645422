"""The problems of an evaluation: ``--data`` specs (presets or plain sources) read into ``EvalItem``s."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lbdata.errors import UsageError
from lbdata.eval.presets import PresetSource, load_presets
from lbdata.records import BadRow, Problem
from lbdata.sources import load_source
from lbdata.sources.base import Source

log = logging.getLogger(__name__)

_SOURCE_KINDS = ("synthetic", "hf:", "jsonl:", "parquet:")


@dataclass(frozen=True)
class EvalItem:
    """One problem to evaluate and the dataset it is counted under."""

    dataset: str
    problem: Problem
    images: list[bytes]


@dataclass
class EvalData:
    items: list[EvalItem]
    skipped: dict[str, dict[str, int]] = field(default_factory=dict)  # dataset -> bad-row reason -> count
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)  # dataset -> source description

    @property
    def datasets(self) -> list[str]:
        return list(self.skipped)


def _starts_spec(piece: str) -> bool:
    head = piece.split(":", 1)[0]
    return (
        piece.startswith(_SOURCE_KINDS)
        or head in load_presets()
        or Path(piece.split("@", 1)[0]).is_dir()
    )


def split_data_specs(values: Sequence[str]) -> list[str]:
    """``--data`` values split on commas, keeping ``synthetic:bar_chart,geometry`` in one piece."""
    out: list[str] = []
    for value in values:
        for piece in (p.strip() for p in value.split(",")):
            if not piece:
                continue
            if out and not _starts_spec(piece):
                out[-1] = f"{out[-1]},{piece}"
            else:
                out.append(piece)
    if not out:
        raise UsageError("no data given; pass --data SOURCE, e.g. --data synthetic or --data mathvista")
    return out


def open_eval_source(spec: str, *, seed: int = 0) -> tuple[str, Source]:
    """(dataset name, source) for a ``--data`` spec: a preset, ``PRESET:SOURCE`` or a plain source spec."""
    head, sep, rest = spec.partition(":")
    presets = load_presets()
    if head in presets:
        preset = presets[head]
        source_spec = rest if sep else preset.source
        if not source_spec:
            raise UsageError(f"preset {head!r} has no default source; {preset.source_hint or 'pass ' + head + ':SOURCE'}")
        if source_spec.startswith("synthetic"):
            raise UsageError(f"preset {head!r} maps benchmark columns; use plain --data {source_spec} instead")
        return head, PresetSource(source_spec, preset)
    source = load_source(spec, seed=seed)
    return source.name, source


def load_eval_data(specs: Sequence[str], *, limit: int | None = None, seed: int = 0) -> EvalData:
    """Read the problems of every spec (at most ``limit`` per dataset); bad rows are counted, not lost."""
    data = EvalData(items=[])
    for spec in specs:
        if spec.startswith("synthetic") and limit is None:
            raise UsageError("the synthetic source is endless; pass --limit N")
        name, source = open_eval_source(spec, seed=seed)
        if name in data.skipped:
            name = spec
        skipped: Counter[str] = Counter()
        n = 0
        for row in source:
            if limit is not None and n >= limit:
                break
            if isinstance(row, BadRow):
                skipped[row.reason] += 1
                continue
            data.items.append(EvalItem(name, row.problem, row.images))
            n += 1
        data.skipped[name] = dict(skipped)
        data.sources[name] = source.describe()
        if n == 0:
            log.warning("no usable problems in %s (%s)", spec, dict(skipped) or "empty")
    return data

