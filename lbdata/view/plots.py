"""Counts and matplotlib figures of the overview page.

``Stats`` is filled one row at a time while the site is written (memory: a few numbers per row);
``write_plots`` draws PNGs with the Agg canvas (no pyplot, no display, no global state).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from lbdata.view.rows import ViewRow

REFLECTION_BAND = (0.30, 0.50)
"""The reflection rates the Look-Back paper found to work best (shaded on the plot)."""

_COLORS = {"semantic_back": "#4c72b0", "solution_back": "#c2409a", "plain": "#8c8c8c"}
_OK, _BAD = "#2e9950", "#c63d3d"


@dataclass
class Stats:
    """Per-variant and per-source tallies of the rows of a site."""

    rows: int = 0
    variants: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    variant_status: Counter[tuple[str, str]] = field(default_factory=Counter)
    with_back: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)
    source_back: Counter[str] = field(default_factory=Counter)
    source_match: Counter[str] = field(default_factory=Counter)
    source_judged: Counter[str] = field(default_factory=Counter)
    trace_words: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    back_words: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    back_positions: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def add(self, row: ViewRow) -> None:
        d = row.data
        variant, source = d["variant"], d["source"] or "(none)"
        self.rows += 1
        self.variants[variant] += 1
        self.sources[source] += 1
        if "status" in d:
            self.statuses[d["status"]] += 1
            self.variant_status[(variant, d["status"])] += 1
            if d["status"] == "rejected":
                self.reasons.update(d["reasons"])
        if row.back_words:
            self.with_back[variant] += 1
            self.source_back[source] += 1
        if d["match"] is not None:
            self.source_judged[source] += 1
            self.source_match[source] += bool(d["match"])
        self.trace_words[variant].append(row.trace_words)
        self.back_words[variant].extend(row.back_words)
        self.back_positions[variant].extend(row.back_positions)

    @property
    def reflection_rate(self) -> float | None:
        return sum(self.with_back.values()) / self.rows if self.rows else None

    @property
    def match_rate(self) -> float | None:
        judged = sum(self.source_judged.values())
        return sum(self.source_match.values()) / judged if judged else None


@dataclass(frozen=True)
class Plot:
    file: str
    title: str
    caption: str


def write_plots(stats: Stats, out_dir: Path) -> list[Plot]:
    """Draw every figure the data supports into ``out_dir``; returns them in page order."""
    import matplotlib

    out_dir.mkdir(parents=True, exist_ok=True)
    plots: list[Plot] = []
    # Labels are data (source names, reason codes): a '$' in them is text, never mathtext.
    with matplotlib.rc_context({"text.parse_math": False, "text.usetex": False}):
        for draw in (_reasons, _back_positions, _lengths, _reflection, _answer_match):
            plot = draw(stats, out_dir)
            if plot is not None:
                plots.append(plot)
    return plots


def _figure(width: float = 7.0, height: float = 3.6):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> None:
    fig.savefig(path, format="png", metadata={"Software": None})


def _variants(stats: Stats) -> list[str]:
    order = ["semantic_back", "solution_back", "plain"]
    return [v for v in order if stats.variants[v]] + sorted(v for v in stats.variants if v not in order)


def _reasons(stats: Stats, out: Path) -> Plot | None:
    if not stats.statuses["accepted"] and not stats.statuses["rejected"]:
        return None
    labels = ["accepted"] + [r for r, _ in stats.reasons.most_common()]
    values = [stats.statuses["accepted"]] + [n for _, n in stats.reasons.most_common()]
    fig = _figure(7.0, max(2.2, 0.32 * len(labels) + 1.0))
    ax = fig.add_subplot()
    y = list(range(len(labels)))[::-1]
    ax.barh(y, values, color=[_OK] + [_BAD] * (len(labels) - 1))
    ax.set_yticks(y, labels)
    for yi, v in zip(y, values, strict=True):
        ax.annotate(f"{v:,}", (v, yi), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    ax.set_xlabel("traces")
    ax.margins(x=0.12)
    ax.set_title(f"accepted, and rejected traces per reason ({stats.statuses['rejected']:,} rejected)", fontsize=10)
    _save(fig, out / "reasons.png")
    return Plot("plots/reasons.png", "Verdicts",
                "Accepted traces, and rejected traces per reason (a trace can have several reasons).")


def _back_positions(stats: Stats, out: Path) -> Plot | None:
    series = {v: stats.back_positions[v] for v in _variants(stats) if stats.back_positions.get(v)}
    if not series:
        return None
    fig = _figure()
    ax = fig.add_subplot()
    bins = [i / 20 for i in range(21)]
    for v, xs in series.items():
        ax.hist(xs, bins=bins, histtype="step", linewidth=1.8, color=_COLORS.get(v), label=f"{v} ({len(xs):,})")
    ax.set_xlim(0, 1)
    ax.set_xlabel("start of <back>, as a fraction of the trace length")
    ax.set_ylabel("<back> segments")
    ax.legend(fontsize=8)
    ax.set_title("where <back> sits in the trace", fontsize=10)
    _save(fig, out / "back_position.png")
    return Plot("plots/back_position.png", "Back position",
                "Where each <back> starts, as a fraction of its trace's length (characters).")


def _lengths(stats: Stats, out: Path) -> Plot | None:
    variants = _variants(stats)
    if not variants:
        return None
    fig = _figure(8.0, 3.6)
    ax1, ax2 = fig.subplots(1, 2)
    for ax, data, title in (
        (ax1, stats.trace_words, "trace length"),
        (ax2, stats.back_words, "<back> length"),
    ):
        names = [v for v in variants if data.get(v)]
        if not names:
            ax.set_axis_off()
            ax.text(0.5, 0.5, "no <back> segments", ha="center", va="center", transform=ax.transAxes)
            continue
        box = ax.boxplot([data[v] for v in names], patch_artist=True, showfliers=False, widths=0.55)
        ax.set_xticks(range(1, len(names) + 1), [f"{v}\n(n={len(data[v]):,})" for v in names], fontsize=8)
        for patch, v in zip(box["boxes"], names, strict=True):
            patch.set_facecolor(_COLORS.get(v, "#cccccc"))
            patch.set_alpha(0.55)
        ax.set_ylabel("words")
        ax.set_title(title, fontsize=10)
    _save(fig, out / "lengths.png")
    return Plot("plots/lengths.png", "Lengths",
                "Words per trace and per <back> segment, by variant (boxes: quartiles; whiskers: 1.5 IQR).")


def _reflection(stats: Stats, out: Path) -> Plot | None:
    variants = _variants(stats)
    if not variants:
        return None
    labels = [*variants, "all"]
    rates = [stats.with_back[v] / stats.variants[v] for v in variants] + [stats.reflection_rate or 0.0]
    fig = _figure()
    ax = fig.add_subplot()
    ax.axhspan(*REFLECTION_BAND, color="#f2e6a6", alpha=0.6, label="30–50 % (the paper's best range)")
    bars = ax.bar(labels, rates, color=[_COLORS.get(v, "#555555") for v in variants] + ["#333333"], width=0.55)
    for bar, r in zip(bars, rates, strict=True):
        ax.annotate(f"{r:.0%}", (bar.get_x() + bar.get_width() / 2, r), xytext=(0, 3), textcoords="offset points",
                    ha="center", fontsize=8)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("share of traces with a <back>")
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title("reflection rate", fontsize=10)
    _save(fig, out / "reflection.png")
    return Plot("plots/reflection.png", "Reflection rate",
                "Share of traces that contain at least one <back>, per variant and overall.")


def _answer_match(stats: Stats, out: Path) -> Plot | None:
    sources = sorted(s for s in stats.source_judged if stats.source_judged[s])
    if not sources:
        return None
    rates = [stats.source_match[s] / stats.source_judged[s] for s in sources]
    fig = _figure(7.0, max(2.2, 0.34 * len(sources) + 1.2))
    ax = fig.add_subplot()
    y = list(range(len(sources)))[::-1]
    ax.barh(y, rates, color="#4c72b0")
    ax.set_yticks(y, [f"{s} (n={stats.source_judged[s]:,})" for s in sources])
    for yi, r in zip(y, rates, strict=True):
        ax.annotate(f"{r:.1%}", (r, yi), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    ax.set_xlim(0, 1.12)
    ax.set_xlabel("share of traces whose final answer matches the gold")
    ax.set_title("answer match rate per source", fontsize=10)
    _save(fig, out / "answer_match.png")
    return Plot("plots/answer_match.png", "Answer match",
                "Share of traces whose boxed answer matches the gold answer (answers_match), per source.")
