"""Corpus versions on disk: list, resolve (``NAME@VER``), read manifests, load, stream rows, and diff."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lbdata.corpus.config import DATA_DIR, MANIFEST_FILE
from lbdata.errors import CorpusError, UsageError
from lbdata.hashing import content_hash
from lbdata.records import parse_variant
from lbdata.workspace import corpora_dir, match_name


def _manifest_of(path: Path) -> dict[str, Any]:
    return json.loads((path / MANIFEST_FILE).read_text())


def list_corpora(home: str | os.PathLike[str] | None = None) -> list[str]:
    root = corpora_dir(home)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.glob(f"*/{MANIFEST_FILE}")))


def list_versions(name: str, home: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """Manifests of the versions of ``name``, oldest first (by creation time, then id)."""
    root = corpora_dir(home) / name
    if not root.is_dir():
        return []
    manifests = [_manifest_of(p) for p in root.iterdir() if not p.name.startswith(".") and (p / MANIFEST_FILE).exists()]
    return sorted(manifests, key=lambda m: (m.get("created_at", ""), m["version"]))


def resolve_version(spec: str, home: str | os.PathLike[str] | None = None) -> Path:
    """The folder of ``NAME@VER`` (a unique prefix of the id will do), ``NAME@latest`` or ``NAME`` (latest).

    A path to a version folder (one holding ``manifest.json``) is accepted as is.
    """
    if "@" not in spec and (Path(spec) / MANIFEST_FILE).exists():
        return Path(spec)
    name, _, ver = spec.partition("@")
    ver = ver or "latest"
    versions = list_versions(name, home) if name else []
    if not versions:
        try:
            name = match_name(name, list_corpora(home), "corpus", "build one with `lbdata build RUN --name NAME`")
        except UsageError as exc:
            raise CorpusError(f"{exc} (corpora live under {corpora_dir(home)})") from None
        versions = list_versions(name, home)
    ids = [m["version"] for m in versions]
    if ver == "latest":
        return corpora_dir(home) / name / ids[-1]
    matches = [v for v in ids if v == ver] or ([v for v in ids if v.startswith(ver)] if len(ver) >= 4 else [])
    if len(matches) != 1:
        what = "is ambiguous" if matches else "is unknown"
        raise CorpusError(f"version {ver!r} of {name} {what}; known versions: {', '.join(ids)} (or 'latest')")
    return corpora_dir(home) / name / matches[0]


def read_manifest(spec: str, home: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    return _manifest_of(resolve_version(spec, home))


def data_files(path: Path, config: str, split: str) -> list[Path]:
    """The Parquet shards of one config and split of a version folder (sorted)."""
    files = sorted((path / DATA_DIR / config).glob(f"{split}-*.parquet"))
    if not files:
        manifest = _manifest_of(path)
        avail = ", ".join(f"{c}/{s}" for c, per in manifest["counts"].items() for s in per)
        raise CorpusError(f"{path} has no {config}/{split} data; available: {avail}")
    return files


def load_corpus(
    spec: str, *, config: str = "semantic_back", split: str = "train", home: str | os.PathLike[str] | None = None
):
    """One config and split of a corpus version as a ``datasets.Dataset`` (images decode to PIL)."""
    import datasets

    path = resolve_version(spec, home)
    files = data_files(path, parse_variant(config), split)
    return datasets.load_dataset("parquet", data_files={split: [str(f) for f in files]}, split=split)


def iter_rows(path: Path, config: str, split: str, columns: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """Rows of one config and split, streamed row group by row group (images as {bytes, path})."""
    import pyarrow.parquet as pq

    for f in data_files(path, config, split):
        pf = pq.ParquetFile(f)
        for i in range(pf.num_row_groups):
            yield from pf.read_row_group(i, columns=columns).to_pylist()


_DIFF_COLUMNS = ["id", "problem_id", "question", "answer", "choices", "variant", "trace", "source", "teacher",
                 "model", "prompt_hash", "mode", "trace_id"]


def _row_digests(path: Path, manifest: dict[str, Any]) -> dict[tuple[str, str, int], tuple[str, str, str]]:
    """``(config, problem_id, n) -> (split, digest, row id)`` of every row of a version (no image bytes read)."""
    import pyarrow.parquet as pq

    out: dict[tuple[str, str, int], tuple[str, str, str]] = {}
    for cfg, per_split in manifest["counts"].items():
        per_problem: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
        for split in per_split:
            for f in data_files(path, cfg, split):
                pf = pq.ParquetFile(f)
                table = pf.read(columns=_DIFF_COLUMNS)
                images = pf.read(columns=["images.list.element.path"]).column(0).to_pylist()
                for rec, imgs in zip(table.to_pylist(), images, strict=True):
                    rec["images"] = [i["path"] for i in imgs]
                    rid = rec.pop("id")
                    per_problem[rec["problem_id"]].append((rid, split, content_hash(rec, 32)))
        for pid, items in per_problem.items():
            for n, (rid, split, digest) in enumerate(sorted(items)):
                out[(cfg, pid, n)] = (split, digest, rid)
    return out


def diff_versions(spec_a: str, spec_b: str, home: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """What changed from version A to B: the one meaning of "diff" (``lbdata diff`` and ``lbdata view --diff``).

    A row is keyed by its config and its problem (the n-th row of a problem when it has several):
    *added* — the key is only in B; *removed* — only in A; *changed* — in both, but its trace, text,
    answer, images or split differ; *unchanged* — the same. ``configs`` counts them per config;
    ``parts`` per config and split (B's split, A's for removed rows); ``rows`` lists the row ids:
    ``added`` (of B), ``removed`` (of A), ``changed`` (pairs: A's id, B's id), each with config and split.
    """
    pa_, pb_ = resolve_version(spec_a, home), resolve_version(spec_b, home)
    ma, mb = _manifest_of(pa_), _manifest_of(pb_)
    da, db = _row_digests(pa_, ma), _row_digests(pb_, mb)
    per_config: dict[str, dict[str, int]] = {}
    parts: dict[tuple[str, str], dict[str, int]] = defaultdict(
        lambda: {"added": 0, "removed": 0, "changed": 0, "unchanged": 0})
    rows: dict[str, list[dict[str, str]]] = {"added": [], "removed": [], "changed": []}
    for cfg in sorted({k[0] for k in da} | {k[0] for k in db}):
        counts = {"added": 0, "removed": 0, "changed": 0, "unchanged": 0}
        for key in sorted({k for k in da if k[0] == cfg} | {k for k in db if k[0] == cfg}):
            old, new = da.get(key), db.get(key)
            if old is None:
                change, split = "added", new[0]
                rows["added"].append({"config": cfg, "split": split, "id": new[2]})
            elif new is None:
                change, split = "removed", old[0]
                rows["removed"].append({"config": cfg, "split": split, "id": old[2]})
            elif old[:2] != new[:2]:
                change, split = "changed", new[0]
                rows["changed"].append({"config": cfg, "split": split, "id": new[2], "id_a": old[2],
                                        "split_a": old[0]})
            else:
                change, split = "unchanged", new[0]
            counts[change] += 1
            parts[(cfg, split)][change] += 1
        per_config[cfg] = counts
    return {
        "a": {"name": ma["name"], "version": ma["version"], "counts": ma["counts"], "path": str(pa_)},
        "b": {"name": mb["name"], "version": mb["version"], "counts": mb["counts"], "path": str(pb_)},
        "configs": per_config,
        "parts": dict(parts),
        "rows": rows,
    }
