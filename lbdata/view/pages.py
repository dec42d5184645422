"""The HTML pages of a site. Every value is escaped; nothing refers to the network.

Pages are short and mostly tables, written with a few helpers rather than a template engine:
``page()`` wraps a body in the shared frame (top bar, stylesheet), ``table()`` renders rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any
from urllib.parse import urlencode

from lbdata import __version__
from lbdata.view.plots import Plot, Stats

KEYS_HELP = (
    "<kbd>j</kbd>/<kbd>k</kbd> or arrows: next/previous · <kbd>/</kbd>: search · <kbd>o</kbd>: full image · "
    "<kbd>g</kbd>/<kbd>G</kbd>: first/last · <kbd>Esc</kbd>: close"
)


def page(title: str, heading: str, body: str, *, here: str, where: str = "", scripts: Sequence[str] = ()) -> str:
    nav = "".join(
        f'<a href="{href}"{" class=here" if name == here else ""}>{label}</a>'
        for name, href, label in (("overview", "index.html", "Overview"), ("samples", "samples.html", "Samples"))
    )
    tags = "".join(f'<script src="{escape(s)}" charset="utf-8"></script>\n' for s in scripts)
    return (
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<meta name=\"referrer\" content=\"no-referrer\">\n"
        f"<title>{escape(title)}</title>\n<link rel=\"stylesheet\" href=\"assets/view.css\">\n</head>\n"
        f"<body class=\"{here}\">\n<div class=\"topbar\"><h1>{escape(heading)}</h1><nav>{nav}</nav>"
        f"<span class=\"where\">{escape(where)}</span></div>\n{body}\n{tags}</body>\n</html>\n"
    )


def samples_page(title: str, heading: str, where: str) -> str:
    body = (
        '<div class="filterbar"><div id="filters"></div>'
        '<span id="count" data-state="loading">loading…</span></div>\n'
        '<div class="browser"><nav id="list"></nav>'
        '<article id="sample" data-state="loading"><p class="empty">loading…</p></article></div>\n'
        '<div id="lightbox" hidden><img alt="full-size image"></div>\n'
        '<noscript><p class="warn">The sample browser needs JavaScript.</p></noscript>\n'
        f'<div class="keys">{KEYS_HELP}</div>'
    )
    return page(title, heading, body, here="samples", where=where, scripts=("assets/view.js", "data/index.js"))


def samples_link(**filters: str) -> str:
    """A link into the sample browser with filters set (``samples.html#reason=back_empty``)."""
    return "samples.html#" + urlencode({k: v for k, v in filters.items() if v})


def table(head: Sequence[str], rows: Iterable[Sequence[Any]], *, numeric: Sequence[int] = ()) -> str:
    """An HTML table; cells are escaped unless wrapped in ``Raw``; columns in ``numeric`` right-aligned."""
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = []
    for row in rows:
        cells = "".join(
            f'<td{" class=n" if i in numeric else ""}>{cell if isinstance(cell, Raw) else escape(_fmt(cell))}</td>'
            for i, cell in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f'<table class="grid"><thead><tr>{th}</tr></thead><tbody>{"".join(body)}</tbody></table>'


class Raw(str):
    """HTML that ``table`` must not escape (already escaped by the caller)."""


def link(href: str, text: str) -> Raw:
    return Raw(f'<a href="{escape(href)}">{escape(text)}</a>')


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


def cards(items: Iterable[tuple[str, Any]]) -> str:
    out = "".join(
        f'<div class="card"><div class="num">{escape(_fmt(v))}</div><div class="lbl">{escape(k)}</div></div>'
        for k, v in items
    )
    return f'<div class="cards">{out}</div>'


def plots_html(plots: Sequence[Plot]) -> str:
    if not plots:
        return '<p class="note">No plots: the data has no rows to draw.</p>'
    figs = "".join(
        f'<figure><img src="{escape(p.file)}" alt="{escape(p.title)}" loading="lazy">'
        f"<figcaption>{escape(p.caption)}</figcaption></figure>"
        for p in plots
    )
    return f'<div class="plots">{figs}</div>'


def footer(extra: str = "") -> str:
    return f'<p class="note">Built by lbdata {escape(__version__)}{escape(extra)}. Static files; no network.</p>'


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
) -> str:
    st = stats.statuses
    validated = st["accepted"] + st["rejected"]
    parts = [
        '<div class="page">',
        cards([
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
    ]
    if st["unvalidated"]:
        parts.append(
            f'<p class="warn">{st["unvalidated"]:,} traces have no verdict under the current validator settings '
            f"(config {escape(config_hash)}). Run <code>lbdata validate {escape(name)}</code>, then "
            "<code>lbdata view</code> again.</p>"
        )
    if missing_images:
        parts.append(f'<p class="warn">{missing_images:,} images could not be read from the run folder.</p>')
    if config:
        keys = ("source", "teacher", "variants", "limit", "samples", "mode", "seed")
        parts.append("<h2>Run settings</h2>")
        parts.append(table(["setting", "value"], [(k, _setting(config[k])) for k in keys if k in config]))

    parts.append("<h2>Traces by variant</h2>")
    statuses = [s for s in ("accepted", "rejected", "unvalidated") if st[s]]
    rows = []
    for v in sorted(stats.variants):
        cells: list[Any] = [link(samples_link(variant=v), v), stats.variants[v]]
        cells += [link(samples_link(variant=v, status=s), f"{stats.variant_status[(v, s)]:,}") for s in statuses]
        cells.append(pct(stats.with_back[v] / stats.variants[v]))
        rows.append(cells)
    parts.append(table(["variant", "traces", *statuses, "with <back>"], rows,
                       numeric=range(1, len(statuses) + 3)))

    if stats.reasons:
        parts.append("<h2>Rejection reasons</h2>")
        parts.append(table(
            ["reason", "traces"],
            [(link(samples_link(reason=r), r), n) for r, n in sorted(stats.reasons.items(), key=lambda x: (-x[1], x[0]))],
            numeric=[1],
        ))
    parts.append("<h2>Plots</h2>")
    parts.append(plots_html(plots))

    parts.append(f"<h2>Bad source rows ({counts['bad_rows']:,})</h2>")
    if counts["bad_rows"]:
        parts.append(table(["reason", "rows"], sorted(counts["bad_rows_by_reason"].items()), numeric=[1]))
        parts.append(_limited(table(["source", "key", "reason", "detail"],
                                    [(b.source, b.key, b.reason, b.detail) for b in bad_rows[:list_limit]]),
                              len(bad_rows), list_limit))
    else:
        parts.append('<p class="note">None.</p>')
    parts.append(f"<h2>Failed requests ({counts['failed']:,})</h2>")
    if failures:
        parts.append(_limited(table(
            ["trace", "problem", "variant", "attempt", "error"],
            [(f["id"], f["problem_id"], f["variant"], f["attempt"], f["error"]) for f in failures[:list_limit]],
            numeric=[3],
        ), len(failures), list_limit))
    else:
        parts.append('<p class="note">None.</p>')
    parts.append(footer(f" · validator config {config_hash}"))
    parts.append("</div>")
    return page(f"lbdata · {name}", f"Run {name}", "\n".join(parts), here="overview", where=where)


def _setting(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def _limited(html: str, total: int, limit: int) -> str:
    if total > limit:
        return html + f'<p class="note">First {limit:,} of {total:,}.</p>'
    return html


# ---------------------------------------------------------------------------- corpus overview
def corpus_overview(*, spec: str, where: str, manifest: dict[str, Any], stats: Stats, plots: Sequence[Plot],
                    missing_images: int) -> str:
    parts = [
        '<div class="page">',
        cards([
            ("rows", stats.rows),
            ("reflection rate", pct(stats.reflection_rate)),
            ("answer match", pct(stats.match_rate)),
            ("sources", len(stats.sources)),
            ("traces read", manifest.get("traces_read", "—")),
            ("traces accepted", manifest.get("traces_accepted", "—")),
        ]),
    ]
    if missing_images:
        parts.append(f'<p class="warn">{missing_images:,} embedded images could not be read.</p>')
    parts.append("<h2>Version</h2>")
    info = [("name", manifest.get("name")), ("version", manifest.get("version")), ("parent", manifest.get("parent")),
            ("created", manifest.get("created_at")), ("lbdata", manifest.get("lbdata_version")),
            ("validator config", manifest.get("validator_config_hash")),
            ("models", ", ".join(manifest.get("models", [])))]
    parts.append(table(["field", "value"], [(k, v) for k, v in info if v]))
    parts.append("<h2>Rows per config and split</h2>")
    rows = []
    for cfg, per in manifest.get("counts", {}).items():
        for split, c in sorted(per.items()):
            rows.append((link(samples_link(config=cfg, split=split), f"{cfg} / {split}"), c.get("rows", 0),
                         c.get("back", 0), c.get("plain", 0), c.get("derived", 0)))
    parts.append(table(["config / split", "rows", "with <back>", "plain", "derived"], rows, numeric=[1, 2, 3, 4]))
    rejects = manifest.get("rejects") or {}
    if rejects:
        parts.append("<h2>Traces rejected when the version was built</h2>")
        parts.append(table(["reason", "traces"], sorted(rejects.items(), key=lambda x: (-x[1], x[0])), numeric=[1]))
    parts.append("<h2>Plots</h2>")
    parts.append(plots_html(plots))
    parts.append(footer())
    parts.append("</div>")
    return page(f"lbdata · {spec}", f"Corpus {spec}", "\n".join(parts), here="overview", where=where)


# ---------------------------------------------------------------------------- diff overview
def diff_overview(*, spec_a: str, spec_b: str, where: str, summary: dict[str, Any],
                  listed: dict[str, Sequence[dict[str, Any]]], list_limit: int = 200) -> str:
    parts = [
        '<div class="page">',
        cards([
            (f"rows in {spec_a}", summary["rows_a"]),
            (f"rows in {spec_b}", summary["rows_b"]),
            ("added", summary["added"]),
            ("removed", summary["removed"]),
            ("changed", summary["changed"]),
            ("unchanged", summary["unchanged"]),
        ]),
        f'<p class="note">Rows are matched by config and problem, as <code>lbdata diff</code> does. Added: a '
        f"problem's row only in {escape(spec_b)}; removed: only in {escape(spec_a)}; changed: in both, with "
        f"another trace, text, answer, images or split (the {escape(spec_b)} row is shown).</p>",
        "<h2>Per config and split</h2>",
    ]
    per = summary["per_part"]
    parts.append(table(
        ["config / split", "added", "removed", "changed", "unchanged"],
        [(f"{cfg} / {split}", c["added"], c["removed"], c["changed"], c["unchanged"])
         for (cfg, split), c in sorted(per.items())],
        numeric=[1, 2, 3, 4],
    ))
    for title, change in (("Added rows", "added"), ("Removed rows", "removed"), ("Changed rows", "changed")):
        items, total = listed[change], summary[change]
        parts.append(f"<h2>{title} ({total:,}) · {link(samples_link(change=change), 'browse')}</h2>")
        if not items:
            parts.append('<p class="note">None.</p>')
            continue
        parts.append(_limited(table(
            ["row id", "config / split", "variant", "question"],
            [(link(samples_link(change=change, row=str(it["n"])), it["id"]), f"{it['config']} / {it['split']}",
              it["variant"], _clip(it["question"])) for it in items[:list_limit]],
        ), len(items), list_limit))
    parts.append(footer())
    parts.append("</div>")
    return page(f"lbdata · {spec_a} → {spec_b}", f"Diff {spec_a} → {spec_b}", "\n".join(parts),
                here="overview", where=where)


def _clip(text: str, n: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"
