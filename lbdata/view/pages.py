"""The HTML pages of a site, rendered from ``lbdata/view/templates/*.html``. Nothing refers to the network.

The templates go through the ``html`` environment of ``lbdata.templates``, which escapes every value: a
question, trace, run name or error text is always shown as text, never as markup. This module only
gathers what a page shows, as plain strings, into ``Table`` and ``Cell`` records.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from lbdata import __version__
from lbdata.templates import environment
from lbdata.view.plots import Plot, Stats


@dataclass(frozen=True)
class Cell:
    """One table cell: its text, and the link it opens if any."""

    text: str
    href: str | None = None


@dataclass(frozen=True)
class Table:
    head: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    numeric: frozenset[int]  # right-aligned columns
    note: str = ""  # shown under the table ("First 100 of 2,345.")


def render(template: str, **context: Any) -> str:
    """``templates/<template>`` rendered with ``context`` (every value escaped)."""
    return environment("html").get_template(template).render(version=__version__, **context)


def samples_page(title: str, heading: str, where: str) -> str:
    return render("samples.html", title=title, heading=heading, here="samples", where=where,
                  scripts=("assets/view.js", "data/index.js"))


def samples_link(**filters: str) -> str:
    """A link into the sample browser with filters set (``samples.html#reason=back_empty``)."""
    return "samples.html#" + urlencode({k: v for k, v in filters.items() if v})


def table(head: Sequence[str], rows: Iterable[Sequence[Any]], *, numeric: Iterable[int] = (),
          total: int | None = None, limit: int | None = None) -> Table:
    """A table of ``rows`` (``Cell``s, or values shown as text); ``numeric`` columns right-aligned. With
    ``limit``, only the first ``limit`` rows of ``total`` are shown and a note says so."""
    rows = list(rows)
    note = ""
    if limit is not None:
        total = len(rows) if total is None else total
        if total > limit:
            note = f"First {limit:,} of {total:,}."
        rows = rows[:limit]
    cells = tuple(tuple(c if isinstance(c, Cell) else Cell(_fmt(c)) for c in row) for row in rows)
    return Table(tuple(head), cells, frozenset(numeric), note)


def link(href: str, text: str) -> Cell:
    return Cell(text, href)


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.1%}"


def cards(items: Iterable[tuple[str, Any]]) -> list[tuple[str, str]]:
    return [(label, _fmt(value)) for label, value in items]


# ---------------------------------------------------------------------------- run overview
def run_overview(
    *,
    name: str,
    where: str,
    counts: dict[str, Any],
    config: dict[str, Any],
    stats: Stats,
    plots: Sequence[Plot],
    config_hash: str,
    bad_rows: Sequence[Any],
    failures: Sequence[dict[str, Any]],
    missing_images: int,
    list_limit: int = 100,
    judges: dict[str, dict[str, int]] | None = None,
    refuted: Sequence[tuple[int, str, str, str]] = (),
) -> str:
    st = stats.statuses
    validated = st["accepted"] + st["rejected"]
    statuses = [s for s in ("accepted", "rejected", "unvalidated") if st[s]]
    variants = []
    for v in sorted(stats.variants):
        cells: list[Any] = [link(samples_link(variant=v), v), stats.variants[v]]
        cells += [link(samples_link(variant=v, status=s), f"{stats.variant_status[(v, s)]:,}") for s in statuses]
        cells.append(pct(stats.with_back[v] / stats.variants[v]))
        variants.append(cells)
    keys = ("source", "teacher", "variants", "limit", "samples", "mode", "seed")
    reasons = sorted(stats.reasons.items(), key=lambda x: (-x[1], x[0]))
    return render(
        "run.html", title=f"lbdata · {name}", heading=f"Run {name}", here="overview", where=where, scripts=(),
        name=name, config_hash=config_hash, plots=plots,
        cards=cards([
            ("problems", counts["problems"]),
            ("traces", counts["traces"]),
            ("accepted", st["accepted"]),
            ("rejected", st["rejected"]),
            ("acceptance rate", pct(st["accepted"] / validated if validated else None)),
            ("reflection rate", pct(stats.reflection_rate)),
            ("answer match", pct(stats.match_rate)),
            ("failed requests", counts["failed"]),
            ("bad source rows", counts["bad_rows"]),
            ("cost (USD)", f"{counts['cost_usd']:.4f}"),
        ]),
        unvalidated=_fmt(st["unvalidated"]) if st["unvalidated"] else "",
        missing_images=_fmt(missing_images) if missing_images else "",
        settings=table(["setting", "value"], [(k, _setting(config[k])) for k in keys if k in config])
        if config else None,
        variants=table(["variant", "traces", *statuses, "with <back>"], variants, numeric=range(1, len(statuses) + 3)),
        reasons=table(["reason", "traces"], [(link(samples_link(reason=r), r), n) for r, n in reasons], numeric=[1])
        if reasons else None,
        n_bad_rows=_fmt(counts["bad_rows"]),
        bad_by_reason=table(["reason", "rows"], sorted(counts["bad_rows_by_reason"].items()), numeric=[1]),
        bad_rows=table(["source", "key", "reason", "detail"], [(b.source, b.key, b.reason, b.detail) for b in bad_rows],
                       limit=list_limit) if counts["bad_rows"] else None,
        judges=table(["judge", "traces judged", "unjudged", "claims", "refuted"],
                     [(name, t["judged"], t["unjudged"], t["claims"], t["refuted"]) for name, t in sorted(judges.items())],
                     numeric=range(1, 5)) if judges else None,
        refuted=table(["trace", "judge", "refuted claim"],
                      [(link(samples_link(row=str(n)), trace_id), judge, claim) for n, trace_id, judge, claim in refuted],
                      limit=list_limit) if refuted else None,
        n_failed=_fmt(counts["failed"]),
        failures=table(["trace", "problem", "variant", "attempt", "error"],
                       [(f["id"], f["problem_id"], f["variant"], f["attempt"], f["error"]) for f in failures],
                       numeric=[3], limit=list_limit) if failures else None,
    )


def _setting(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


# ---------------------------------------------------------------------------- corpus overview
def corpus_overview(*, spec: str, where: str, manifest: dict[str, Any], stats: Stats, plots: Sequence[Plot],
                    missing_images: int) -> str:
    info = [("name", manifest.get("name")), ("version", manifest.get("version")), ("parent", manifest.get("parent")),
            ("created", manifest.get("created_at")), ("lbdata", manifest.get("lbdata_version")),
            ("validator config", manifest.get("validator_config_hash")),
            ("models", ", ".join(manifest.get("models", [])))]
    parts = []
    for cfg, per in manifest.get("counts", {}).items():
        for split, c in sorted(per.items()):
            parts.append((link(samples_link(config=cfg, split=split), f"{cfg} / {split}"), c.get("rows", 0),
                          c.get("back", 0), c.get("plain", 0), c.get("derived", 0)))
    rejects = manifest.get("rejects") or {}
    return render(
        "corpus.html", title=f"lbdata · {spec}", heading=f"Corpus {spec}", here="overview", where=where, scripts=(),
        plots=plots,
        cards=cards([
            ("rows", stats.rows),
            ("reflection rate", pct(stats.reflection_rate)),
            ("answer match", pct(stats.match_rate)),
            ("sources", len(stats.sources)),
            ("traces read", manifest.get("traces_read", "—")),
            ("traces accepted", manifest.get("traces_accepted", "—")),
        ]),
        missing_images=_fmt(missing_images) if missing_images else "",
        version_info=table(["field", "value"], [(k, v) for k, v in info if v]),
        parts=table(["config / split", "rows", "with <back>", "plain", "derived"], parts, numeric=[1, 2, 3, 4]),
        rejects=table(["reason", "traces"], sorted(rejects.items(), key=lambda x: (-x[1], x[0])), numeric=[1])
        if rejects else None,
    )


# ---------------------------------------------------------------------------- diff overview
def diff_overview(*, spec_a: str, spec_b: str, where: str, summary: dict[str, Any],
                  listed: dict[str, Sequence[dict[str, Any]]], list_limit: int = 200) -> str:
    sections = []
    for title, change in (("Added rows", "added"), ("Removed rows", "removed"), ("Changed rows", "changed")):
        items = listed[change]
        rows = [(link(samples_link(change=change, row=str(it["n"])), it["id"]), f"{it['config']} / {it['split']}",
                 it["variant"], _clip(it["question"])) for it in items]
        sections.append({
            "title": title, "total": _fmt(summary[change]), "href": samples_link(change=change),
            "table": table(["row id", "config / split", "variant", "question"], rows, limit=list_limit)
            if items else None,
        })
    per = summary["per_part"]
    return render(
        "diff.html", title=f"lbdata · {spec_a} → {spec_b}", heading=f"Diff {spec_a} → {spec_b}", here="overview",
        where=where, scripts=(), spec_a=spec_a, spec_b=spec_b, sections=sections,
        cards=cards([
            (f"rows in {spec_a}", summary["rows_a"]),
            (f"rows in {spec_b}", summary["rows_b"]),
            ("added", summary["added"]),
            ("removed", summary["removed"]),
            ("changed", summary["changed"]),
            ("unchanged", summary["unchanged"]),
        ]),
        per_part=table(
            ["config / split", "added", "removed", "changed", "unchanged"],
            [(f"{cfg} / {split}", c["added"], c["removed"], c["changed"], c["unchanged"])
             for (cfg, split), c in sorted(per.items())],
            numeric=[1, 2, 3, 4],
        ),
    )


def _clip(text: str, n: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"
