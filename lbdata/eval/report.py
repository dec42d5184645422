"""The report: per-dataset metrics, ``results.jsonl`` / ``summary.json`` / ``summary.md``, comparisons."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from lbdata import __version__
from lbdata.errors import UsageError
from lbdata.eval.generators import FAILED
from lbdata.eval.scoring import EvalRow

RESULTS_FILE = "results.jsonl"
SUMMARY_JSON = "summary.json"
SUMMARY_MD = "summary.md"


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarize_rows(rows: Sequence[EvalRow], skipped: dict[str, int] | None = None) -> dict[str, Any]:
    """The metrics of one dataset (or of all rows): rates are fractions in [0, 1]; None when undefined.

    ``n`` counts every problem asked; ``failed`` the requests that got no response (a served model's
    error), which are not wrong answers: every rate is over the ``answered`` rows.
    """
    n = len(rows)
    failed = [r for r in rows if r.finish_reason == FAILED]
    rows = [r for r in rows if r.finish_reason != FAILED]
    positions = [p for r in rows for p in r.back_positions]
    with_back = [r for r in rows if r.has_back]
    without = [r for r in rows if not r.has_back]
    tokens = [r.response_tokens for r in rows if r.response_tokens is not None]
    histogram = [0] * 10
    for p in positions:
        histogram[min(int(p * 10), 9)] += 1
    return {
        "n": n,
        "answered": len(rows),
        "failed": len(failed),
        "skipped": sum((skipped or {}).values()),
        "skipped_by_reason": dict(sorted((skipped or {}).items())),
        "accuracy": _mean([float(r.correct) for r in rows]),
        "trigger_rate": _mean([float(r.has_back) for r in rows]),
        "well_formed_rate": _mean([float(r.well_formed) for r in rows]),
        "mean_backs": _mean([float(r.back_count) for r in rows]),
        "back_position_mean": _mean(positions),
        "back_position_median": statistics.median(positions) if positions else None,
        "back_position_histogram": histogram,
        "accuracy_with_back": _mean([float(r.correct) for r in with_back]),
        "accuracy_without_back": _mean([float(r.correct) for r in without]),
        "mean_response_tokens": _mean(tokens) if len(tokens) == len(rows) else None,
        "mean_response_chars": _mean([float(r.response_chars) for r in rows]),
        "truncated_rate": _mean([float(r.finish_reason == "length") for r in rows]),
    }


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _num(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _length(s: dict[str, Any]) -> str:
    if s.get("mean_response_tokens") is not None:
        return f"{s['mean_response_tokens']:.0f} tok"
    return "–" if s.get("mean_response_chars") is None else f"{s['mean_response_chars']:.0f} ch"


@dataclass
class EvalReport:
    """Every scored response of an evaluation, with its settings; ``summary()`` computes the metrics."""

    model: str
    variant: str
    params: dict[str, Any]
    rows: list[EvalRow]
    skipped: dict[str, dict[str, int]] = field(default_factory=dict)
    datasets: list[str] = field(default_factory=list)

    def by_dataset(self) -> dict[str, list[EvalRow]]:
        names = list(dict.fromkeys([*self.datasets, *(r.dataset for r in self.rows)]))
        return {name: [r for r in self.rows if r.dataset == name] for name in names}

    def summary(self) -> dict[str, Any]:
        groups = self.by_dataset()
        out: dict[str, Any] = {
            "model": self.model,
            "variant": self.variant,
            "params": self.params,
            "lbdata_version": __version__,
            "datasets": {name: summarize_rows(rows, self.skipped.get(name)) for name, rows in groups.items()},
        }
        if len(groups) > 1:
            every_skip: Counter[str] = Counter()
            for s in self.skipped.values():
                every_skip.update(s)
            out["overall"] = summarize_rows(self.rows, dict(every_skip))
        return out

    def to_markdown(self) -> str:
        return summary_markdown(self.summary())

    def write(self, out_dir: str | Path) -> Path:
        """Write ``results.jsonl`` (rows in dataset order), ``summary.json`` and ``summary.md``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        ordered = [r for rows in self.by_dataset().values() for r in rows]
        tmp = out / (RESULTS_FILE + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for row in ordered:
                fh.write(row.model_dump_json() + "\n")
        tmp.replace(out / RESULTS_FILE)
        summary = self.summary()
        from lbdata.workspace import write_text_atomic

        write_text_atomic(out / SUMMARY_JSON, json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
        write_text_atomic(out / SUMMARY_MD, summary_markdown(summary))
        return out


def summary_markdown(summary: dict[str, Any]) -> str:
    """A Markdown table of a ``summary.json`` (percentages for rates)."""
    lines = [
        f"# Evaluation of {summary['model']}",
        "",
        f"Variant `{summary['variant']}`; max new tokens {summary['params'].get('max_new_tokens')}, "
        f"temperature {summary['params'].get('temperature')}.",
        "",
        "| dataset | n | accuracy % | trigger % | well-formed % | backs / response | back position "
        "| acc. with back % | acc. without back % | mean length | truncated % | failed | skipped |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows = list(summary["datasets"].items())
    if "overall" in summary:
        rows.append(("**all**", summary["overall"]))
    for name, s in rows:
        lines.append(
            f"| {name} | {s['n']} | {_pct(s['accuracy'])} | {_pct(s['trigger_rate'])} | {_pct(s['well_formed_rate'])} "
            f"| {_num(s['mean_backs'])} | {_num(s['back_position_mean'])} | {_pct(s['accuracy_with_back'])} "
            f"| {_pct(s['accuracy_without_back'])} | {_length(s)} | {_pct(s['truncated_rate'])} | {s.get('failed', 0)} "
            f"| {s['skipped']} |"
        )
    lines += [
        "",
        "Back position: where a `<back>` starts, as a fraction of the response (0 = start, 1 = end).",
        "Failed: requests that got no response (a served model's error, kept in results.jsonl with the message); "
        "rates are over the answered problems, and re-running the same command asks the failed ones again.",
        "",
    ]
    return "\n".join(lines)


def read_results(path: str | Path) -> list[EvalRow]:
    """The rows of a ``results.jsonl`` (or of the one inside a folder)."""
    p = Path(path)
    if p.is_dir():
        p = p / RESULTS_FILE
    if not p.is_file():
        raise UsageError(f"no {RESULTS_FILE} at {p}; pass an evaluation folder written by `lbdata eval`")
    rows = []
    with p.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    rows.append(EvalRow.model_validate_json(line))
                except ValidationError as exc:
                    raise UsageError(f"{p}:{lineno} is not an evaluation row ({exc.errors()[0]['msg']})") from None
    return rows


def read_summary(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if p.is_dir():
        p = p / SUMMARY_JSON
    if not p.is_file():
        raise UsageError(f"no {SUMMARY_JSON} at {p}; pass an evaluation folder written by `lbdata eval`")
    try:
        summary = json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        summary = None
    if not (isinstance(summary, dict) and isinstance(summary.get("datasets"), dict)):
        raise UsageError(f"{p} is not a {SUMMARY_JSON} of `lbdata eval`; pass an evaluation folder it wrote")
    return summary


def compare_reports(a: str | Path, b: str | Path, *more: str | Path) -> str:
    """Evaluations side by side, per dataset, as Markdown.

    Two: one table, a row per dataset, with B minus A in the Δ columns. Three or more (base, SFT, GRPO):
    a table per dataset, a row per metric and a column per evaluation, with the change from the first
    in brackets.
    """
    if more:
        return compare_many([a, b, *more])
    sa, sb = read_summary(a), read_summary(b)
    names = list(dict.fromkeys([*sa["datasets"], *sb["datasets"]]))
    if "overall" in sa and "overall" in sb:
        names.append("overall")

    def get(s: dict[str, Any], name: str) -> dict[str, Any] | None:
        return s.get("overall") if name == "overall" else s["datasets"].get(name)

    def delta(x: float | None, y: float | None, scale: float = 100.0, digits: int = 1) -> str:
        if x is None or y is None:
            return "–"
        return f"{scale * (y - x):+.{digits}f}"

    lines = [
        f"A: {sa['model']} ({sa['variant']}) — {a}",
        f"B: {sb['model']} ({sb['variant']}) — {b}",
        "",
        "| dataset | n A | n B | accuracy % A | accuracy % B | Δ | trigger % A | trigger % B | Δ "
        "| well-formed % A | well-formed % B | backs / resp. A | backs / resp. B | length A | length B |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    empty: dict[str, Any] = {}
    for name in names:
        x, y = get(sa, name) or empty, get(sb, name) or empty
        label = "**all**" if name == "overall" else name
        lines.append(
            f"| {label} | {x.get('n', '–')} | {y.get('n', '–')} "
            f"| {_pct(x.get('accuracy'))} | {_pct(y.get('accuracy'))} | {delta(x.get('accuracy'), y.get('accuracy'))} "
            f"| {_pct(x.get('trigger_rate'))} | {_pct(y.get('trigger_rate'))} "
            f"| {delta(x.get('trigger_rate'), y.get('trigger_rate'))} "
            f"| {_pct(x.get('well_formed_rate'))} | {_pct(y.get('well_formed_rate'))} "
            f"| {_num(x.get('mean_backs'))} | {_num(y.get('mean_backs'))} | {_length(x) if x else '–'} "
            f"| {_length(y) if y else '–'} |"
        )
    return "\n".join(lines) + "\n"


COMPARED = (
    ("n", "n", None),
    ("failed", "failed requests", None),
    ("accuracy", "accuracy %", "pct"),
    ("trigger_rate", "trigger %", "pct"),
    ("well_formed_rate", "well-formed %", "pct"),
    ("mean_backs", "backs / response", "num"),
    ("truncated_rate", "truncated %", "pct"),
)
"""The metrics of ``compare_many``: summary key, row label, and how a value and its change are shown."""


def _column_name(path: str | Path) -> str:
    p = Path(path)
    return (p.parent if p.suffix == ".json" else p).name or str(p)


def compare_many(paths: Sequence[str | Path]) -> str:
    """Several evaluations, a column each: one table per dataset, change from the first in brackets."""
    summaries = [read_summary(p) for p in paths]
    names = list(dict.fromkeys(name for s in summaries for name in s["datasets"]))
    if all("overall" in s for s in summaries):
        names.append("overall")
    columns = [_column_name(p) for p in paths]
    lines = [f"{col}: {s['model']} ({s['variant']}) — {p}" for col, s, p in zip(columns, summaries, paths, strict=True)]

    def show(value: Any, kind: str | None, base: Any, first: bool) -> str:
        if value is None:
            return "–"
        if kind is None:
            return str(value)
        text = _pct(value) if kind == "pct" else _num(value)
        if first or base is None:
            return text
        change = 100 * (value - base) if kind == "pct" else value - base
        return f"{text} ({change:+.1f})" if kind == "pct" else f"{text} ({change:+.2f})"

    for name in names:
        stats = [(s.get("overall") if name == "overall" else s["datasets"].get(name)) or {} for s in summaries]
        lines += ["", f"| {'all datasets' if name == 'overall' else name} | " + " | ".join(columns) + " |",
                  "|---|" + "---:|" * len(columns)]
        for key, label, kind in COMPARED:
            cells = [show(st.get(key), kind, stats[0].get(key), i == 0) for i, st in enumerate(stats)]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lengths = [_length(st) if st else "–" for st in stats]
        lines.append("| mean length | " + " | ".join(lengths) + " |")
    return "\n".join(lines) + "\n"
