"""Build a site for a run, a corpus version, or the difference between two corpus versions."""

from __future__ import annotations

import itertools
import json
import logging
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from lbdata.ledger import Ledger
from lbdata.progress import ProgressBar
from lbdata.secrets import redact
from lbdata.view import pages
from lbdata.view.plots import Stats, write_plots
from lbdata.view.rows import ViewRow, corpus_rows, run_rows
from lbdata.view.site import Facet, SiteWriter, _write_text, site_size
from lbdata.workspace import LEDGER_FILE, home_dir, resolve_run

log = logging.getLogger(__name__)

RUN_FACETS = [
    Facet("variant", "variant", "variant"),
    Facet("status", "verdict", "status"),
    Facet("reason", "reason", "reasons", multi=True),
    Facet("source", "source", "source"),
]
CORPUS_FACETS = [
    Facet("config", "config", "config"),
    Facet("split", "split", "split"),
    Facet("variant", "variant", "variant"),
    Facet("source", "source", "source"),
]
DIFF_FACETS = [Facet("change", "change", "change"), *CORPUS_FACETS]


class ViewConfig(BaseModel):
    """How a site is laid out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    shard_size: int = Field(
        default=1000, ge=1, le=100_000, description="rows per data shard; the browser loads one shard at a time"
    )
    thumb_px: int = Field(default=240, ge=32, le=1024, description="longest side of a thumbnail, in pixels")
    list_limit: int = Field(
        default=200, ge=1, description="most bad rows, failures or diff rows listed on the overview page"
    )


@dataclass
class ViewSummary:
    """What ``build_*_view`` wrote."""

    out_dir: Path
    kind: str
    rows: int
    shards: int
    images: int
    thumbnails_made: int
    missing_images: int
    bytes: int
    elapsed_s: float
    counts: dict[str, Any] = field(default_factory=dict)

    @property
    def index_html(self) -> Path:
        return self.out_dir / "index.html"


def _write_rows(writer: SiteWriter, stats: Stats | None, rows: Iterable[ViewRow], bar) -> None:
    for row in rows:
        writer.add(row)
        if stats is not None:
            stats.add(row)
        bar.update(advance=1)


def _finish(writer: SiteWriter, meta: dict[str, Any], overview: str, t0: float, counts: dict[str, Any]) -> ViewSummary:
    writer.finish(meta)
    work = writer.out
    _write_text(work / "index.html", overview)
    _write_text(work / "samples.html", pages.samples_page(f"lbdata · {meta['title']} · samples", meta["title"],
                                                          f"{writer.stats.rows:,} {meta['unit']}"))
    size = site_size(work)
    out = writer.publish()
    s = writer.stats
    return ViewSummary(out, meta["kind"], s.rows, s.shards, s.images, s.thumbnails_made, s.missing_images,
                       size, time.perf_counter() - t0, counts)


# ---------------------------------------------------------------------------- runs
@dataclass
class JudgeTally:
    """What the run overview shows of the judges, gathered as the rows pass: per judge the traces judged and
    unjudged, claims and refuted claims; and every refuted claim with its row."""

    per_judge: dict[str, dict[str, int]] = field(default_factory=dict)
    refuted: list[tuple[int, str, str, str]] = field(default_factory=list)  # (row n, trace id, judge, claim)

    def noting(self, rows: Iterable[ViewRow]) -> Iterator[ViewRow]:
        for row in rows:
            for j in row.data.get("judgments", ()):
                tally = self.per_judge.setdefault(j["judge"], dict.fromkeys(
                    ("judged", "unjudged", "claims", "refuted"), 0))
                tally[j["status"] if j["status"] == "judged" else "unjudged"] += 1
                tally["claims"] += len(j["claims"])
                for claim, supported in j["claims"]:
                    if supported is False:
                        tally["refuted"] += 1
                        self.refuted.append((row.data["n"], row.data["id"], j["judge"], claim))
            yield row


def build_run_view(
    run_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    *,
    config: ViewConfig | None = None,
    validation=None,
    progress: bool = False,
) -> ViewSummary:
    """Write the site of a run (default folder: ``<run>/view``). Verdicts are those of ``validation``
    (default ``ValidationConfig()``); traces without one are shown as ``unvalidated``."""
    from lbdata.validate.config import ValidationConfig

    t0 = time.perf_counter()
    config = config or ViewConfig()
    validation = validation or ValidationConfig()
    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir is not None else run_dir / "view"
    name = run_dir.resolve().name
    stats = Stats()
    with Ledger.open(run_dir) as ledger, SiteWriter(out, RUN_FACETS, shard_size=config.shard_size,
                                                    thumb_px=config.thumb_px) as writer:
        counts = ledger.counts()
        bar = ProgressBar("view", counts["traces"], enabled=progress, unit="rows", transient=True)
        try:
            judges = JudgeTally()
            _write_rows(writer, stats, judges.noting(run_rows(ledger, validation.config_hash,
                                                              answer_timeout_s=validation.answer_timeout_s)), bar)
        finally:
            bar.close()
        bad_rows = list(itertools.islice(ledger.iter_bad_rows(), config.list_limit))
        failures = list(itertools.islice(ledger.iter_failures(), config.list_limit))
        run_config = redact(ledger.read_config())
        run_config = run_config.get("config", run_config)
        plots = write_plots(stats, writer.out / "plots")
        overview = pages.run_overview(
            name=name, where=f"{stats.rows:,} traces", counts=counts, config=run_config, stats=stats, plots=plots,
            config_hash=validation.config_hash, bad_rows=bad_rows, failures=failures,
            missing_images=writer.stats.missing_images, list_limit=config.list_limit,
            judges=judges.per_judge, refuted=judges.refuted,
        )
        summary_counts = {
            "traces": stats.rows,
            "accepted": stats.statuses["accepted"],
            "rejected": stats.statuses["rejected"],
            "unvalidated": stats.statuses["unvalidated"],
            "reasons": dict(stats.reasons),
        }
        meta = {"kind": "run", "title": f"Run {name}", "unit": "traces", "config_hash": validation.config_hash}
        return _finish(writer, meta, overview, t0, summary_counts)


# ---------------------------------------------------------------------------- corpora
def _manifest(version_dir: Path) -> dict[str, Any]:
    from lbdata.corpus import MANIFEST_FILE

    return json.loads((version_dir / MANIFEST_FILE).read_text())


def _label(manifest: dict[str, Any]) -> str:
    return f"{manifest['name']}@{manifest['version']}"


def view_target(spec: str, home: str | os.PathLike[str] | None = None) -> tuple[str, Path | str]:
    """``("run", run_dir)`` or ``("corpus", spec)``: a run directory or name, else a corpus version.

    ``NAME@VER`` (and a path to a version folder) is a corpus; a plain name is a run if one exists,
    else the latest version of the corpus with that name.
    """
    from lbdata.corpus import MANIFEST_FILE, list_corpora
    from lbdata.errors import LedgerError

    if (Path(spec) / LEDGER_FILE).exists():
        return "run", Path(spec)
    if "@" in spec or (Path(spec) / MANIFEST_FILE).exists():
        return "corpus", spec
    try:
        return "run", resolve_run(spec, home, prefix=False)
    except LedgerError:
        pass
    if spec in list_corpora(home):  # a corpus name wins over a run whose name merely begins with it
        return "corpus", spec
    try:
        return "run", resolve_run(spec, home)
    except LedgerError as exc:
        raise LedgerError(f"{exc}; for a corpus version pass NAME@VER") from None


def default_views_dir(home: str | os.PathLike[str] | None = None) -> Path:
    return home_dir(home) / "views"


def build_corpus_view(
    spec: str,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    home: str | os.PathLike[str] | None = None,
    config: ViewConfig | None = None,
    progress: bool = False,
) -> ViewSummary:
    """Write the site of corpus version ``NAME@VER`` (default folder: ``<home>/views/NAME@VER``)."""
    from lbdata.corpus import resolve_version
    from lbdata.validate.config import ValidationConfig

    t0 = time.perf_counter()
    config = config or ViewConfig()
    version_dir = resolve_version(spec, home)
    manifest = _manifest(version_dir)
    label = _label(manifest)
    out = Path(out_dir) if out_dir is not None else default_views_dir(home) / label
    total = sum(c.get("rows", 0) for per in manifest.get("counts", {}).values() for c in per.values())
    stats = Stats()
    with SiteWriter(out, CORPUS_FACETS, shard_size=config.shard_size, thumb_px=config.thumb_px) as writer:
        bar = ProgressBar("view", total, enabled=progress, unit="rows", transient=True)
        try:
            _write_rows(writer, stats, corpus_rows(version_dir, answer_timeout_s=ValidationConfig().answer_timeout_s),
                        bar)
        finally:
            bar.close()
        plots = write_plots(stats, writer.out / "plots")
        overview = pages.corpus_overview(spec=label, where=f"{stats.rows:,} rows", manifest=manifest, stats=stats,
                                         plots=plots, missing_images=writer.stats.missing_images)
        meta = {"kind": "corpus", "title": f"Corpus {label}", "unit": "rows"}
        return _finish(writer, meta, overview, t0, {"rows": stats.rows, "variants": dict(stats.variants)})


def build_diff_view(
    spec_a: str,
    spec_b: str,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    home: str | os.PathLike[str] | None = None,
    config: ViewConfig | None = None,
    progress: bool = False,
) -> ViewSummary:
    """Write a site of what changed from A to B, in the meaning of ``lbdata diff`` (``corpus.diff_versions``):
    rows are matched by config and problem; the site holds the rows added (B's), removed (A's) and
    changed (B's new row).

    Default folder: ``<home>/views/A..B``. ``counts`` holds ``rows_a, rows_b, added, removed, changed,
    unchanged`` and ``per_part`` (per config and split).
    """
    from lbdata.corpus import diff_versions
    from lbdata.validate.config import ValidationConfig

    t0 = time.perf_counter()
    config = config or ViewConfig()
    d = diff_versions(spec_a, spec_b, home)
    dir_a, dir_b = Path(d["a"]["path"]), Path(d["b"]["path"])
    label_a, label_b = _label(d["a"]), _label(d["b"])
    out = Path(out_dir) if out_dir is not None else default_views_dir(home) / f"{label_a}..{label_b}"
    changes = ("added", "removed", "changed", "unchanged")
    counts: dict[str, Any] = {
        "rows_a": sum(c["rows"] for per in d["a"]["counts"].values() for c in per.values()),
        "rows_b": sum(c["rows"] for per in d["b"]["counts"].values() for c in per.values()),
        **{change: sum(c[change] for c in d["configs"].values()) for change in changes},
        "per_part": d["parts"],
    }

    listed: dict[str, list[dict[str, Any]]] = {"added": [], "removed": [], "changed": []}
    timeout = ValidationConfig().answer_timeout_s
    shown = (("added", dir_b), ("removed", dir_a), ("changed", dir_b))

    def rows() -> Iterable[ViewRow]:
        n = 0
        for change, version_dir in shown:
            only = {r["id"] for r in d["rows"][change]}
            if not only:
                continue
            for row in corpus_rows(version_dir, only=only, extra={"change": change}, start=n,
                                   answer_timeout_s=timeout):
                if len(listed[change]) < config.list_limit:
                    listed[change].append({k: row.data[k] for k in ("n", "id", "config", "split", "variant",
                                                                    "question")})
                n += 1
                yield row

    with SiteWriter(out, DIFF_FACETS, shard_size=config.shard_size, thumb_px=config.thumb_px) as writer:
        bar = ProgressBar("view", sum(len(d["rows"][c]) for c, _ in shown), enabled=progress, unit="rows",
                          transient=True)
        try:
            _write_rows(writer, None, rows(), bar)
        finally:
            bar.close()
        overview = pages.diff_overview(spec_a=label_a, spec_b=label_b, where=f"{writer.stats.rows:,} changed rows",
                                       summary=counts, listed=listed, list_limit=config.list_limit)
        meta = {"kind": "diff", "title": f"{label_a} → {label_b}", "unit": "changed rows"}
        return _finish(writer, meta, overview, t0, counts)
