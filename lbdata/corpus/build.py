"""``build_corpus``: read the runs, plan the rows, hash them into the version id, write the version."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lbdata import __version__
from lbdata.corpus.book import Book
from lbdata.corpus.card import render_card
from lbdata.corpus.config import CARD_FILE, DATA_DIR, MANIFEST_FILE, SPLITS, BuildConfig
from lbdata.corpus.inputs import Inputs, validation_config
from lbdata.corpus.plan import iter_planned, plan_rows
from lbdata.corpus.rows import row_dict
from lbdata.corpus.stats import ConfigStats
from lbdata.corpus.versions import list_versions
from lbdata.corpus.write import ROW_GROUP_SIZE, planned_parts, shard_name, shard_sizes, write_data
from lbdata.errors import CorpusError, UsageError
from lbdata.hashing import canonical_json
from lbdata.workspace import (
    RunLock,
    check_name,
    corpora_dir,
    ensure_writable_dir,
    home_dir,
    make_partial_dir,
    resolve_run,
)


@dataclass
class BuildResult:
    """What ``build_corpus`` did: the version, where it lives, and whether it was new."""

    name: str
    version: str
    path: Path
    created: bool
    manifest: dict[str, Any]


def build_corpus(
    runs: list[str | os.PathLike[str]],
    name: str,
    config: BuildConfig | None = None,
    *,
    validate_config: str | os.PathLike[str] | None = None,
    home: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> BuildResult:
    """Build (or find) the corpus version of ``runs`` under ``config``; see ``lbdata.corpus``."""
    config = config or BuildConfig()
    check_name(name, "corpus name")
    if not runs:
        raise UsageError("no run given; pass one or more run names or directories (`lbdata runs` lists them)")
    run_dirs = [resolve_run(str(r), home) for r in runs]
    validation = validation_config(validate_config)
    made = [p for p in (home_dir(home), corpora_dir(home), corpora_dir(home) / name) if not p.exists()]
    corpus_root = ensure_writable_dir(corpora_dir(home) / name, "corpus folder")
    work = make_partial_dir(corpus_root / "build", "build")  # leftovers of killed builds are removed first
    try:
        with contextlib.closing(Book(work / "book.sqlite")) as book:
            inputs = Inputs(run_dirs, validation, config, book, progress)
            try:
                return _build(inputs, name, corpus_root, work, home)
            finally:
                inputs.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        for path in reversed(made):  # folders this build created stay only if a version landed in them
            with contextlib.suppress(OSError):
                path.rmdir()


def _build_identity(config: BuildConfig) -> dict[str, Any]:
    """The build settings that enter the version id (without a judge: the same as before judges existed)."""
    return config.model_dump(mode="json", exclude={"judge", "require_judged"} if config.judge is None else None)


def _build(inputs: Inputs, name: str, corpus_root: Path, work: Path,
           home: str | os.PathLike[str] | None) -> BuildResult:
    config = inputs.config
    inputs.read()
    n_rows = plan_rows(inputs)
    if not n_rows:
        raise CorpusError(
            f"no accepted trace of variant {', '.join(config.variants)} (or plain) in "
            f"{', '.join(str(d) for d in inputs.run_dirs)}; generate them with `lbdata generate --variant ...`"
        )
    identity = {"build": _build_identity(config), "validator": inputs.config_hash}
    version, stats = _hash_rows(inputs, identity)
    final = corpus_root / version
    if (final / MANIFEST_FILE).exists():
        manifest = json.loads((final / MANIFEST_FILE).read_text())
        return BuildResult(name, version, final, False, manifest)
    previous = list_versions(name, home)
    manifest = _manifest(name, version, previous[-1]["version"] if previous else None, inputs, stats)
    tmp = work / version
    write_data(inputs, n_rows, tmp, progress=inputs.progress)
    (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    (tmp / CARD_FILE).write_text(render_card(manifest))
    # Two builds of one version may finish together: the last step is taken under a lock per corpus name
    # (kept outside the corpus folder), so neither removes or replaces the version the other has published.
    lock_dir = corpus_root.parent / ".locks" / name
    lock_dir.mkdir(parents=True, exist_ok=True)
    with RunLock(lock_dir, wait=True):
        if (final / MANIFEST_FILE).exists():  # built meanwhile by another process
            return BuildResult(name, version, final, False, json.loads((final / MANIFEST_FILE).read_text()))
        shutil.rmtree(final, ignore_errors=True)  # a partial folder without manifest
        os.replace(tmp, final)
    return BuildResult(name, version, final, True, manifest)


def _hash_rows(inputs: Inputs, identity: dict[str, Any]) -> tuple[str, dict[str, ConfigStats]]:
    """The version id (a hash of the build identity and every row without image bytes) and each config's stats."""
    h = hashlib.sha256(canonical_json(identity).encode())
    stats: dict[str, ConfigStats] = {}
    for row in iter_planned(inputs):
        d = row_dict(inputs, row, with_images=False)
        h.update(b"\n")
        h.update(canonical_json([row.config, row.split, d]).encode())
        if row.config not in stats:
            stats[row.config] = ConfigStats(inputs.book, row.config)
        stats[row.config].add(d)
    for s in stats.values():
        s.flush()
    inputs.book.db.execute("CREATE INDEX stats_length ON stats (config, length)")
    inputs.book.db.execute("CREATE INDEX stats_position ON stats (config, position)")
    return h.hexdigest()[:12], stats


def _manifest(
    name: str, version: str, parent: str | None, inputs: Inputs, stats: dict[str, ConfigStats],
) -> dict[str, Any]:
    db, config = inputs.book.db, inputs.config
    counts: dict[str, dict[str, dict[str, int]]] = {}
    files: dict[str, dict[str, list[str]]] = {}
    for c, s, kind, n in db.execute(
        "SELECT config, split, kind, COUNT(*) FROM rows GROUP BY config, split, kind ORDER BY config, split"
    ):
        cfg, split = config.variants[c], SPLITS[s]
        counts_ = counts.setdefault(cfg, {}).setdefault(split, {"rows": 0, "back": 0, "plain": 0, "derived": 0})
        counts_["rows"] += n
        counts_["back" if kind == "back" else "plain"] += n
        counts_["derived"] += n if kind == "derived" else 0
    for part in planned_parts(inputs):
        cfg, split = config.variants[part[0]], SPLITS[part[1]]
        n = len(shard_sizes(inputs, part))
        files.setdefault(cfg, {})[split] = [f"{DATA_DIR}/{cfg}/{shard_name(split, i, n)}" for i in range(n)]
    sources = sorted(s for (s,) in db.execute(
        "SELECT DISTINCT g.source FROM rows r JOIN kept k ON k.kid = r.kid JOIN groups g ON g.gseq = k.gseq"
    ))
    teachers = sorted({t for s in stats.values() for t in s.teachers})
    return {
        "name": name,
        "version": version,
        "parent": parent,
        "created_at": datetime.now(UTC).isoformat(timespec="microseconds"),
        "lbdata_version": __version__,
        "build": _build_identity(config),
        "validator_config_hash": inputs.config_hash,
        "inputs": inputs.inputs,
        "configs": [c for c in config.variants if c in counts],
        "counts": counts,
        "files": files,
        "rejects": {k: v for k, v in sorted(inputs.rejects.items()) if v},
        "dropped": {k: v for k, v in sorted(inputs.dropped.items()) if v},
        "traces_read": inputs.total_traces,
        "traces_accepted": inputs.accepted,
        "teachers": [{"backend": b, "model": m} for b, m in teachers],
        "models": sorted({m for _, m in teachers}),
        "prompt_hashes": sorted({p for s in stats.values() for p in s.prompt_hashes}),
        "sources": sources,
        "stats": {cfg: s.summary() for cfg, s in stats.items()},
        "row_group_size": ROW_GROUP_SIZE,
    }
