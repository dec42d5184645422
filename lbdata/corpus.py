"""Corpus versions: build, list, resolve, diff and load them.

``build_corpus(runs, name, config)`` turns the traces the validators accepted into a corpus version
``corpora/<name>/<version>/``: one Hugging Face config per back variant (``semantic_back``,
``solution_back``), splits ``train`` and ``test``, images embedded (``datasets.Image``), plus
``manifest.json`` and the dataset card ``README.md``. The version id is a hash of the canonical rows
and the build configuration, so the same inputs give the same id on any machine and building twice
makes no new version.

How rows are chosen, per config:

1. Dedup. Problems with the same images (sha256) and normalised question are one problem; traces
   with the same text for the same problem are one trace. At most ``per_problem`` traces per problem.
2. Units. A problem contributes up to ``per_problem`` units; unit ``j`` can be a back row (the j-th
   accepted back trace) or a plain row (the j-th accepted plain teacher trace, else the j-th back
   trace with its ``<back>`` segments removed and its thinks joined: mode ``derived``, which must
   itself validate as ``plain``).
3. Split. Problems sharing an image are grouped; whole groups go to ``test`` in seeded hash order
   until ``test_size`` of the problems are there, so no image is in both splits (the same split in
   every config).
4. Mix. Per config and split, the most rows whose back count is exactly
   ``round_half_up(reflection_rate × rows)``; which units become back rows is seeded hash order.

Plain rows keep the config's model-facing instruction in the user turn: the model trained on a config
sees one prompt and learns that not every answer needs a look back (the paper's reflection rate).
Memory stays flat as the corpus grows: the bookkeeping (one entry per verdict, problem, accepted trace,
unit and row) lives in a temporary SQLite database in the build's work folder and is read back in
index order, and rows are streamed to Parquet in fixed row groups.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import os
import re
import shutil
import sqlite3
import statistics
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lbdata import __version__
from lbdata.errors import CorpusError, UsageError
from lbdata.hashing import canonical_json, content_hash
from lbdata.ledger import Ledger
from lbdata.prompts import user_prompt
from lbdata.records import BACK_VARIANTS, Trace, parse_variant
from lbdata.workspace import (
    check_name,
    corpora_dir,
    ensure_writable_dir,
    home_dir,
    make_partial_dir,
    match_name,
    resolve_run,
)

log = logging.getLogger(__name__)

CONFIGS: tuple[str, ...] = BACK_VARIANTS
SPLITS: tuple[str, ...] = ("train", "test")
MANIFEST_FILE = "manifest.json"
CARD_FILE = "README.md"
DATA_DIR = "data"
ROW_GROUP_SIZE = 100
"""Rows per Parquet row group (fixed, so files are byte-identical; small, as rows carry images)."""
MAX_SHARD_BYTES = 500 * 1024 * 1024
"""A split is cut into shards of about this many bytes (image bytes plus trace text)..."""
MAX_SHARD_ROWS = 10_000
"""... and of at most this many rows (a Parquet writer holds metadata for every row group of its file)."""
DEFAULT_REFLECTION_RATE = 0.4
"""Share of rows with ``<back>``: the middle of the 30–50 % band the Look-Back paper found best."""


class BuildConfig(BaseModel):
    """How a corpus is built from runs. Every field enters the version id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    variants: tuple[str, ...] = Field(
        default=CONFIGS, description="back variants to build; each becomes one Hugging Face config"
    )
    reflection_rate: float = Field(
        default=DEFAULT_REFLECTION_RATE, ge=0.0, le=1.0,
        description="share of rows that contain <back>; the other rows are plain traces",
    )
    test_size: float = Field(default=0.05, ge=0.0, lt=1.0, description="share of problems in the test split")
    seed: int = Field(default=0, description="seed of the split, the mix and the row order")
    per_problem: int = Field(default=1, ge=1, description="rows per problem and config (K traces per problem)")
    license: str = Field(default="unknown", description="license id written into the card (e.g. cc-by-4.0)")
    judge: str | None = Field(default=None, description="name of an `lbdata judge` of every run: a back with a "
                              "refuted claim is rejected (back_ungrounded)")
    require_judged: bool = Field(default=False, description="with judge: reject back traces the judge has not "
                                 "judged (back_unjudged)")

    @field_validator("variants", mode="before")
    @classmethod
    def _variants(cls, value: Any) -> tuple[str, ...]:
        items = value.split(",") if isinstance(value, str) else list(value)
        out: list[str] = []
        for item in items:
            name = parse_variant(item)
            if name not in CONFIGS:
                raise ValueError(f"{item!r} is not a back variant; a corpus config is one of: semantic, solution")
            if name not in out:
                out.append(name)
        if not out:
            raise ValueError("at least one variant is required, e.g. semantic,solution")
        return tuple(out)


@dataclass
class BuildResult:
    """What ``build_corpus`` did: the version, where it lives, and whether it was new."""

    name: str
    version: str
    path: Path
    created: bool
    manifest: dict[str, Any]


# ---------------------------------------------------------------------------- trace text helpers
_BACK_RE = re.compile(r"\s*<back>.*?</back>\s*", re.S)
_THINK_JOIN_RE = re.compile(r"\s*</think>\s*<think>\s*")


def derive_plain_text(text: str) -> str:
    """A back trace without its ``<back>`` segments, the thinks around them joined into one."""
    return _THINK_JOIN_RE.sub(" ", _BACK_RE.sub(" ", text)).strip()


def back_count(text: str) -> int:
    return text.count("<back>")


def normalise_question(question: str) -> str:
    """The dedup form of a question: NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", question).casefold().split())


def _norm_answer(answer: str) -> str:
    return " ".join(answer.split()).casefold()


def _rank(seed: int, *parts: str) -> bytes:
    """Seeded hash order: 8 bytes that sort (in Python and in SQLite) like a 64-bit unsigned integer."""
    return hashlib.sha256("\x00".join((str(seed), *parts)).encode()).digest()[:8]


def _round_half_up(x: Decimal) -> int:
    return int(x.to_integral_value(rounding=ROUND_HALF_UP))


def mix_counts(back_only: int, both: int, plain_only: int, rate: float) -> tuple[int, int]:
    """``(back rows, plain rows)``: the most rows whose back count is exactly round_half_up(rate × rows).

    ``back_only`` units can only be back rows, ``plain_only`` only plain rows, ``both`` either.
    """
    r = Decimal(str(rate))
    for total in range(back_only + both + plain_only, 0, -1):
        k = _round_half_up(r * total)
        m = total - k
        if k <= back_only + both and m <= plain_only + both - max(0, k - back_only):
            return k, m
    return 0, 0


# ---------------------------------------------------------------------------- validation seam
def _validation_config(path: str | os.PathLike[str] | None):
    from lbdata.validate import ValidationConfig

    return ValidationConfig.from_yaml(path) if path is not None else ValidationConfig()


def _validate_plain(text: str, group: _Group, config) -> tuple[bool, list[str]]:
    from lbdata.validate import validate_trace

    verdict = validate_trace(text, variant="plain", gold=group.answer, question=group.question,
                             choices=group.choices, config=config)
    return verdict.accepted, list(verdict.reasons)


def _validate_run(run_dir: Path, config, progress: bool) -> None:
    from lbdata.validate import validate_run

    validate_run(run_dir, config=config, progress=progress)


# ---------------------------------------------------------------------------- bookkeeping
_BOOK_SCHEMA = """
CREATE TABLE verdicts (
    run INTEGER NOT NULL, trace_id TEXT NOT NULL, accepted INTEGER NOT NULL, reasons TEXT NOT NULL,
    PRIMARY KEY (run, trace_id)
) WITHOUT ROWID;
CREATE TABLE groups (
    gseq INTEGER PRIMARY KEY,          -- first-seen order
    gkey BLOB NOT NULL UNIQUE,         -- sha of the image hashes and the normalised question
    problem_id TEXT NOT NULL,          -- the canonical problem: smallest id, then first run
    run INTEGER NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    gold TEXT NOT NULL,                -- normalised answer
    choices TEXT,                      -- JSON list or NULL
    source TEXT NOT NULL,
    images TEXT NOT NULL,              -- JSON list of file names "<sha256>.<ext>"
    image_order BLOB NOT NULL,         -- the file names joined by NUL: sorts like the tuple of names
    n_images INTEGER NOT NULL,
    first_node TEXT NOT NULL,          -- sha of the first image, or noimage:<problem id>
    image_bytes INTEGER NOT NULL,
    dup INTEGER NOT NULL DEFAULT 0,    -- 1 once another problem joined: members decide answer conflicts
    gorder INTEGER,                    -- position in (problem_id, images) order; NULL when no trace is kept
    root TEXT,                         -- the image component (its smallest node)
    split INTEGER NOT NULL DEFAULT 0   -- index in SPLITS
);
CREATE TABLE members (
    gseq INTEGER NOT NULL, problem_id TEXT NOT NULL, answer TEXT NOT NULL, PRIMARY KEY (gseq, problem_id)
) WITHOUT ROWID;
CREATE TABLE seen (
    run INTEGER NOT NULL, problem_id TEXT NOT NULL, gseq INTEGER NOT NULL, PRIMARY KEY (run, problem_id)
) WITHOUT ROWID;
CREATE TABLE cands (
    gseq INTEGER NOT NULL, variant TEXT NOT NULL, trace_id TEXT NOT NULL, run INTEGER NOT NULL,
    problem_id TEXT NOT NULL, text_sha BLOB NOT NULL, text_len INTEGER NOT NULL
);
CREATE TABLE kept (
    kid INTEGER PRIMARY KEY,           -- (group, variant, trace id, run) order
    gseq INTEGER NOT NULL, variant TEXT NOT NULL, trace_id TEXT NOT NULL, run INTEGER NOT NULL,
    text_len INTEGER NOT NULL
);
CREATE INDEX kept_group ON kept (gseq);
CREATE TABLE links (node TEXT PRIMARY KEY, parent TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE units (
    uid INTEGER PRIMARY KEY,
    split INTEGER NOT NULL,
    kind INTEGER NOT NULL,             -- 0 back only, 1 both, 2 plain only
    rank BLOB NOT NULL, gorder INTEGER NOT NULL, j INTEGER NOT NULL,
    gseq INTEGER NOT NULL,
    back INTEGER,                      -- kept id of the back trace
    plain INTEGER,                     -- kept id of the plain trace, or (derived) of the back trace
    derived INTEGER NOT NULL,
    checked INTEGER NOT NULL DEFAULT 0 -- a derived plain form is validated once the mix picks it
);
CREATE INDEX units_order ON units (split, kind, rank, gorder, j);
CREATE TABLE rows (
    pos INTEGER PRIMARY KEY,           -- planning order: breaks ties of ord
    config INTEGER NOT NULL, split INTEGER NOT NULL, ord BLOB NOT NULL, kind TEXT NOT NULL, kid INTEGER NOT NULL
);
CREATE TABLE stats (config TEXT NOT NULL, length INTEGER NOT NULL, position REAL);
"""
_BATCH = 1000
_BACK_ONLY, _BOTH, _PLAIN_ONLY = 0, 1, 2


class _Book:
    """The build's bookkeeping in a temporary SQLite database, so memory stays flat as the corpus grows.

    One row per verdict, deduplicated problem, accepted trace, unit of the mix and planned row; each
    pass reads them back in index order. The file lives in the build's work folder and goes with it.
    """

    def __init__(self, path: Path):
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.executescript(_BOOK_SCHEMA)
        self.db.create_function("lb_rank", -1, _rank, deterministic=True)
        self.db.execute("BEGIN")

    def commit(self) -> None:
        self.db.execute("COMMIT")
        self.db.execute("BEGIN")

    def close(self) -> None:
        self.db.close()


@dataclass(slots=True)
class _Group:
    """One deduplicated problem (same images and normalised question), as rows and validators see it."""

    problem_id: str
    run: int
    question: str
    answer: str
    choices: list[str] | None
    source: str
    images: tuple[str, ...]  # file names "<sha256>.<ext>"
    image_bytes: int


_GROUP_COLUMNS = "g.problem_id, g.run, g.question, g.answer, g.choices, g.source, g.images, g.image_bytes"


def _group_of(values: tuple | list) -> _Group:
    pid, run, question, answer, choices, source, images, image_bytes = values
    return _Group(pid, run, question, answer, json.loads(choices) if choices is not None else None, source,
                  tuple(json.loads(images)), image_bytes)


@dataclass(slots=True)
class _Row:
    """One planned row: which trace, how it is used, where it goes."""

    config: str
    split: str
    kind: str  # back | plain | derived
    trace_id: str
    run: int
    text_len: int
    group: _Group


# ---------------------------------------------------------------------------- pass 1: candidates
class _Inputs:
    """The runs of a build, opened, validated, and read into deduplicated problem groups (in the book)."""

    def __init__(self, run_dirs: list[Path], validation, config: BuildConfig, book: _Book, progress: bool = False):
        self.progress = progress
        self.run_dirs = run_dirs
        self.validation = validation
        self.config = config
        self.config_hash: str = validation.config_hash
        self.book = book
        self.ledgers: list[Ledger] = []
        self.rejects: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.inputs: list[dict[str, Any]] = []
        self.total_traces = 0
        self.accepted = 0
        self._variants = (*config.variants, "plain")

    def close(self) -> None:
        for ledger in self.ledgers:
            ledger.close()

    def read(self) -> None:
        db = self.book.db
        for run_dir in self.run_dirs:
            self.ledgers.append(Ledger.open(run_dir))
        self._image_dirs = [os.fspath(ledger.images_dir) for ledger in self.ledgers]
        for idx, ledger in enumerate(self.ledgers):
            counts = ledger.counts()
            if counts["traces"] == 0:
                raise CorpusError(
                    f"run {ledger.run_dir} has no completed traces; generate some with "
                    f"`lbdata generate --run {ledger.run_dir}` or leave it out"
                )
            stale = ledger.stale_verdicts(self.config_hash)
            if stale:
                log.warning("%d verdicts in %s judged a text other than the trace's; validating those traces again",
                            stale, ledger.run_dir)
            if self._load_verdicts(idx, ledger) < counts["traces"]:
                log.info("validating the traces of %s that lack a verdict under config %s", ledger.run_dir,
                         self.config_hash)
                _validate_run(ledger.run_dir, self.validation, self.progress)
                self._load_verdicts(idx, ledger)
            if self.config.judge is not None:
                self._load_judged_verdicts(idx, ledger)
            accepted = 0
            for trace in ledger.iter_traces():
                self.total_traces += 1
                verdict = db.execute("SELECT accepted, reasons FROM verdicts WHERE run=? AND trace_id=?",
                                     (idx, trace.id)).fetchone()
                if verdict is None or not verdict[0]:
                    reasons = None if verdict is None else json.loads(verdict[1])
                    self.rejects.update(["unvalidated"] if reasons is None else reasons or ["rejected"])
                    continue
                accepted += 1
                if trace.variant not in self._variants:
                    continue
                seen = db.execute("SELECT gseq FROM seen WHERE run=? AND problem_id=?",
                                  (idx, trace.problem_id)).fetchone()
                gseq = seen[0] if seen is not None else self._group_for(ledger, idx, trace.problem_id)
                db.execute("INSERT INTO cands VALUES (?, ?, ?, ?, ?, ?, ?)", (
                    gseq, trace.variant, trace.id, idx, trace.problem_id,
                    hashlib.sha256(trace.text.encode()).digest()[:16], len(trace.text),
                ))
            self.accepted += accepted
            config = ledger.read_config()
            self.inputs.append(
                {
                    "run": ledger.run_dir.name,
                    "ledger_digest": ledger.digest(),
                    "problems": counts["problems"],
                    "traces": counts["traces"],
                    "accepted": accepted,
                    "cost_usd": round(counts["cost_usd"], 6),
                    "source": _source_info(config),
                    "teacher": (config.get("config") or {}).get("teacher"),
                }
            )
        if self.accepted == 0:
            top = ", ".join(f"{r}={n}" for r, n in self.rejects.most_common(3)) or "none"
            raise CorpusError(
                f"no trace in {', '.join(str(d) for d in self.run_dirs)} was accepted by the validators "
                f"(config {self.config_hash}; top reasons: {top}); inspect them with `lbdata show RUN --rejected`"
            )
        self._resolve_duplicates()
        self.book.commit()

    def _load_verdicts(self, idx: int, ledger: Ledger) -> int:
        """Copy the run's verdicts under the build's config into the book; returns how many there are."""
        db = self.book.db
        db.execute("DELETE FROM verdicts WHERE run=?", (idx,))
        db.executemany("INSERT INTO verdicts VALUES (?, ?, ?, ?)", (
            (idx, v.trace_id, int(v.accepted), json.dumps(v.reasons))
            for v in ledger.iter_verdicts(self.config_hash, current=True)  # a verdict on other text is not used
        ))
        return db.execute("SELECT COUNT(*) FROM verdicts WHERE run=?", (idx,)).fetchone()[0]

    def _load_judged_verdicts(self, idx: int, ledger: Ledger) -> None:
        """Replace the run's verdicts in the book by those with the judge's word added (``lbdata.judge``)."""
        from lbdata.judge import judged_verdicts

        assert self.config.judge is not None
        _, verdicts = judged_verdicts(ledger, self.config_hash, self.config.judge, require=self.config.require_judged)
        db = self.book.db
        db.execute("DELETE FROM verdicts WHERE run=?", (idx,))
        db.executemany("INSERT INTO verdicts VALUES (?, ?, ?, ?)",
                       ((idx, v.trace_id, int(v.accepted), json.dumps(v.reasons)) for v in verdicts))

    def _group_for(self, ledger: Ledger, idx: int, problem_id: str) -> int:
        """The dedup group of a problem (the canonical problem: smallest id, then first run)."""
        db = self.book.db
        problem = ledger.get_problem(problem_id)
        files = [ref.filename for ref in problem.images]
        key = hashlib.sha256(
            canonical_json([[ref.sha256 for ref in problem.images], normalise_question(problem.question)]).encode()
        ).digest()[:16]
        canonical = {
            "problem_id": problem.id, "run": idx, "question": problem.question, "answer": problem.answer,
            "gold": _norm_answer(problem.answer),
            "choices": json.dumps(list(problem.choices)) if problem.choices is not None else None,
            "source": problem.source, "images": json.dumps(files),
            "image_order": b"\x00".join(fn.encode() for fn in files), "n_images": len(files),
            "first_node": _sha_of(files[0]) if files else f"noimage:{problem.id}",
        }
        found = db.execute("SELECT gseq, problem_id, run FROM groups WHERE gkey=?", (key,)).fetchone()
        if found is None or (problem_id, idx) < (found[1], found[2]):
            canonical["image_bytes"] = sum(os.path.getsize(self._image_file(idx, fn)) for fn in files)
        if found is None:
            gseq = db.execute(
                f"INSERT INTO groups (gkey, {', '.join(canonical)}) VALUES (?{', ?' * len(canonical)})",
                (key, *canonical.values()),
            ).lastrowid
        else:  # the same images and question seen before: a duplicate
            gseq = found[0]
            if (problem_id, idx) < (found[1], found[2]):
                db.execute(f"UPDATE groups SET dup=1, {', '.join(f'{k}=?' for k in canonical)} WHERE gseq=?",
                           (*canonical.values(), gseq))
            else:
                db.execute("UPDATE groups SET dup=1 WHERE gseq=?", (gseq,))
        db.execute("INSERT OR REPLACE INTO members VALUES (?, ?, ?)", (gseq, problem_id, _norm_answer(problem.answer)))
        db.execute("INSERT INTO seen VALUES (?, ?, ?)", (idx, problem_id, gseq))
        return gseq

    def _resolve_duplicates(self) -> None:
        """Drop traces of duplicate problems whose answer disagrees; keep one trace per distinct text."""
        db = self.book.db
        db.execute("CREATE INDEX cands_order ON cands (gseq, variant, trace_id, run)")
        cur = db.execute(
            "SELECT c.gseq, c.variant, c.trace_id, c.run, c.text_len, c.text_sha, g.dup AND m.answer IS NOT g.gold "
            "FROM cands c JOIN groups g ON g.gseq = c.gseq "
            "LEFT JOIN members m ON m.gseq = c.gseq AND m.problem_id = c.problem_id "
            "ORDER BY c.gseq, c.variant, c.trace_id, c.run"
        )
        part: tuple[int, str] | None = None
        texts: set[bytes] = set()
        batch: list[tuple] = []
        for gseq, variant, trace_id, run, text_len, text_sha, conflict in cur:
            if (gseq, variant) != part:
                part, texts = (gseq, variant), set()
            if conflict:
                self.dropped["answer_conflict"] += 1
            elif text_sha in texts:
                self.dropped["duplicate_trace"] += 1
            else:
                texts.add(text_sha)
                batch.append((gseq, variant, trace_id, run, text_len))
                if len(batch) >= _BATCH:
                    db.executemany("INSERT INTO kept (gseq, variant, trace_id, run, text_len) VALUES (?, ?, ?, ?, ?)",
                                   batch)
                    batch.clear()
        db.executemany("INSERT INTO kept (gseq, variant, trace_id, run, text_len) VALUES (?, ?, ?, ?, ?)", batch)

    def trace(self, run: int, trace_id: str) -> Trace:
        return self.ledgers[run].get_trace(trace_id)

    def image(self, group: _Group, filename: str) -> bytes:
        with open(self._image_file(group.run, filename), "rb") as f:
            return f.read()

    def _image_file(self, run: int, filename: str) -> str:
        # a plain string path: a pathlib.Path per image interns every file name, and on a large
        # corpus that churn alone doubles CPython's table of interned strings (a few MB)
        return os.path.join(self._image_dirs[run], filename)


def _source_info(run_config: dict[str, Any]) -> dict[str, Any]:
    src = run_config.get("source")
    if isinstance(src, dict):
        return {"spec": src.get("spec") or src.get("kind"), "revision": src.get("revision")}
    spec = (run_config.get("config") or {}).get("source")
    return {"spec": spec, "revision": None}


# ---------------------------------------------------------------------------- split and mix
def _sha_of(filename: str) -> str:
    return filename.partition(".")[0]


class _UnionFind:
    """Union-find over image nodes, its links in the book (a node without a link is a root)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def find(self, x: str) -> str:
        path = []
        while (up := self.db.execute("SELECT parent FROM links WHERE node=?", (x,)).fetchone()) is not None:
            path.append(x)
            x = up[0]
        if len(path) > 1:
            self.db.executemany("UPDATE links SET parent=? WHERE node=?", [(x, p) for p in path[:-1]])
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:  # the smaller node is the root, so a component's root is its smallest node
            self.db.execute("INSERT INTO links VALUES (?, ?)", (max(ra, rb), min(ra, rb)))


def _assign_splits(book: _Book, seed: int, test_size: float) -> None:
    """Group problems that share an image; whole image groups go to test until test_size is reached."""
    db = book.db
    uf = _UnionFind(db)
    for (images,) in db.execute("SELECT images FROM groups WHERE gorder IS NOT NULL AND n_images > 1"):
        shas = [_sha_of(fn) for fn in json.loads(images)]
        for s in shas[1:]:
            uf.union(shas[0], s)
    db.execute("UPDATE groups SET root = first_node WHERE gorder IS NOT NULL")
    last = 0
    while chunk := db.execute(
        "SELECT gseq, first_node FROM groups WHERE gseq > ? AND gorder IS NOT NULL "
        "AND first_node IN (SELECT node FROM links) ORDER BY gseq LIMIT ?", (last, _BATCH),
    ).fetchall():
        db.executemany("UPDATE groups SET root=? WHERE gseq=?", [(uf.find(node), gseq) for gseq, node in chunk])
        last = chunk[-1][0]
    db.execute("CREATE INDEX groups_root ON groups (root)")
    db.execute(
        "CREATE TABLE comps AS SELECT root, lb_rank(?, 'split', root) AS rank, COUNT(*) AS n, MIN(gorder) AS first "
        "FROM groups WHERE gorder IS NOT NULL GROUP BY root", (seed,),
    )
    db.execute("CREATE INDEX comps_order ON comps (rank, first)")
    n_groups = db.execute("SELECT COUNT(*) FROM groups WHERE gorder IS NOT NULL").fetchone()[0]
    n_comps = db.execute("SELECT COUNT(*) FROM comps").fetchone()[0]
    target = _round_half_up(Decimal(str(test_size)) * n_groups)
    if test_size > 0 and n_comps >= 2:
        target = max(target, 1)
    n_test = test_comps = 0
    cur = db.execute("SELECT n FROM comps ORDER BY rank, first")
    for i, (n,) in enumerate(cur):
        if n_test >= target or i == n_comps - 1:
            break
        n_test += n
        test_comps += 1
    cur.close()
    db.execute("UPDATE groups SET split=? WHERE root IN (SELECT root FROM comps ORDER BY rank, first LIMIT ?)",
               (SPLITS.index("test"), test_comps))


def _plan_rows(inputs: _Inputs) -> int:
    """Choose the rows of every config and split into the book (deterministic; derived traces validated here).

    Returns the number of rows.
    """
    config, book = inputs.config, inputs.book
    db = book.db
    db.execute("CREATE TABLE gorders (gseq INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
    db.execute(
        "INSERT INTO gorders SELECT gseq, ROW_NUMBER() OVER (ORDER BY problem_id, image_order, gseq) "
        "FROM groups WHERE gseq IN (SELECT gseq FROM kept)"
    )
    db.execute("UPDATE groups SET gorder = (SELECT n FROM gorders WHERE gorders.gseq = groups.gseq)")
    db.execute("CREATE INDEX groups_order ON groups (gorder)")
    _assign_splits(book, config.seed, config.test_size)
    for c, variant in enumerate(config.variants):
        _plan_units(inputs, variant)
        for s in range(len(SPLITS)):
            _mix(inputs, c, s)
    db.execute("CREATE INDEX rows_order ON rows (config, split, ord, pos)")
    book.commit()
    return db.execute("SELECT COUNT(*) FROM rows").fetchone()[0]


def _plan_units(inputs: _Inputs, variant: str) -> None:
    """Slots of every problem in one config: unit j is a back row, a plain row, or either."""
    db, k, seed = inputs.book.db, inputs.config.per_problem, inputs.config.seed
    db.execute("DELETE FROM units")
    cur = db.execute(
        "SELECT g.gseq, g.gorder, g.split, g.problem_id, k.kid, k.variant, k.trace_id "
        "FROM groups g JOIN kept k ON k.gseq = g.gseq "
        "WHERE g.gorder IS NOT NULL AND k.variant IN (?, 'plain') ORDER BY g.gorder", (variant,),
    )
    batch: list[tuple] = []
    for (gseq, gorder, split, problem_id), cands in itertools.groupby(cur, key=lambda r: r[:4]):
        backs: list[tuple[bytes, int]] = []
        plains: list[tuple[bytes, int]] = []
        for *_, kid, v, trace_id in cands:
            (backs if v == variant else plains).append((_rank(seed, "pick", trace_id), kid))
        backs.sort()
        plains.sort()
        inputs.dropped["per_problem_limit"] += max(0, len(backs) - k)
        for j in range(min(k, max(len(backs), len(plains)))):
            back = backs[j][1] if j < len(backs) else None
            plain, derived = (plains[j][1], False) if j < len(plains) else (back, back is not None)
            kind = _BOTH if back is not None and plain is not None else (_BACK_ONLY if back is not None else _PLAIN_ONLY)
            batch.append((split, kind, _rank(seed, "mix", variant, problem_id, str(j)), gorder, j, gseq, back, plain,
                          int(derived)))
        if len(batch) >= _BATCH:
            db.executemany("INSERT INTO units (split, kind, rank, gorder, j, gseq, back, plain, derived) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", batch)
            batch.clear()
    db.executemany("INSERT INTO units (split, kind, rank, gorder, j, gseq, back, plain, derived) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", batch)


_UNIT_ORDER = " ORDER BY u.rank, u.gorder, u.j"


def _mix(inputs: _Inputs, c: int, s: int) -> None:
    """Back rows and plain rows of one config and split, the back count exactly round_half_up(rate × rows).

    Back rows come from back-only units first, plain rows from plain-only units first, each in rank
    order. A derived plain form is validated when it is picked; one that fails turns its unit back-only
    and the mix is redone (each round only validates newly picked units).
    """
    db, rate = inputs.book.db, inputs.config.reflection_rate
    while True:
        n = dict(db.execute("SELECT kind, COUNT(*) FROM units WHERE split=? GROUP BY kind", (s,)).fetchall())
        back_only, both, plain_only = n.get(_BACK_ONLY, 0), n.get(_BOTH, 0), n.get(_PLAIN_ONLY, 0)
        n_back, n_plain = mix_counts(back_only, both, plain_only, rate)
        used = max(0, n_back - back_only)  # 'both' units that are back rows; the next `take` are plain rows
        take = max(0, n_plain - plain_only)
        if take == 0 or not _check_derived(inputs, s, used, take):
            break
    inputs.dropped["mix_surplus"] += back_only + both + plain_only - n_back - n_plain
    variant, seed = inputs.config.variants[c], inputs.config.seed
    picks = (  # (kind of unit, limit, offset, trace column, as plain)
        (_BACK_ONLY, n_back, 0, "back", False), (_BOTH, used, 0, "back", False),
        (_PLAIN_ONLY, n_plain, 0, "plain", True), (_BOTH, take, used, "plain", True),
    )
    for kind, limit, offset, column, as_plain in picks:
        if limit <= 0:
            continue
        cur = db.execute(
            f"SELECT u.{column}, u.derived, k.trace_id FROM units u JOIN kept k ON k.kid = u.{column} "
            f"WHERE u.split=? AND u.kind=?{_UNIT_ORDER} LIMIT ? OFFSET ?", (s, kind, limit, offset),
        )
        while chunk := cur.fetchmany(_BATCH):
            out = []
            for kid, derived, trace_id in chunk:
                if as_plain:
                    row_kind = "derived" if derived else "plain"
                    out.append((c, s, _rank(seed, "order", variant, row_kind, trace_id), row_kind, kid))
                else:
                    out.append((c, s, _rank(seed, "order", variant, trace_id), "back", kid))
            db.executemany("INSERT INTO rows (config, split, ord, kind, kid) VALUES (?, ?, ?, ?, ?)", out)


def _check_derived(inputs: _Inputs, s: int, used: int, take: int) -> bool:
    """Validate the derived plain forms among the 'both' units [used, used + take) not yet checked.

    Returns whether one failed (its unit is then back-only).
    """
    db = inputs.book.db
    key = "SELECT u.rank, u.gorder, u.j FROM units u WHERE u.split=? AND u.kind=?" + _UNIT_ORDER + " LIMIT 1 OFFSET ?"
    first = db.execute(key, (s, _BOTH, used)).fetchone()
    last = db.execute(key, (s, _BOTH, used + take - 1)).fetchone()
    failed = False
    while chunk := db.execute(
        f"SELECT u.uid, k.trace_id, k.run, {_GROUP_COLUMNS} FROM units u JOIN kept k ON k.kid = u.plain "
        "JOIN groups g ON g.gseq = u.gseq WHERE u.split=? AND u.kind=? AND u.derived=1 AND u.checked=0 "
        f"AND (u.rank, u.gorder, u.j) BETWEEN (?, ?, ?) AND (?, ?, ?){_UNIT_ORDER} LIMIT ?",
        (s, _BOTH, *first, *last, _BATCH),
    ).fetchall():
        good, bad = [], []
        for uid, trace_id, run, *group in chunk:
            (good if _derivable(inputs, _group_of(group), run, trace_id) else bad).append(uid)
        db.executemany("UPDATE units SET checked=1 WHERE uid=?", [(uid,) for uid in good])
        db.executemany("UPDATE units SET checked=1, kind=?, plain=NULL, derived=0 WHERE uid=?",
                       [(_BACK_ONLY, uid) for uid in bad])
        failed = failed or bool(bad)
    return failed


def _derivable(inputs: _Inputs, group: _Group, run: int, trace_id: str) -> bool:
    text = derive_plain_text(inputs.trace(run, trace_id).text)
    ok, reasons = _validate_plain(text, group, inputs.validation)
    if not ok:
        inputs.dropped["derived_invalid"] += 1
        log.debug("derived plain trace of %s rejected: %s", trace_id, reasons)
    return ok


_ROWS_SQL = (
    f"SELECT r.config, r.split, r.kind, k.trace_id, k.run, k.text_len, {_GROUP_COLUMNS} "
    "FROM rows r JOIN kept k ON k.kid = r.kid JOIN groups g ON g.gseq = k.gseq"
)


def _iter_planned(inputs: _Inputs, part: tuple[int, int] | None = None) -> Iterator[_Row]:
    """The planned rows in corpus order (of one config and split when ``part`` is given)."""
    where, args = (" WHERE r.config=? AND r.split=?", part) if part is not None else ("", ())
    cur = inputs.book.db.execute(_ROWS_SQL + where + " ORDER BY r.config, r.split, r.ord, r.pos", args)
    variants = inputs.config.variants
    for c, s, kind, trace_id, run, text_len, *group in cur:
        yield _Row(variants[c], SPLITS[s], kind, trace_id, run, text_len, _group_of(group))


# ---------------------------------------------------------------------------- rows
def derived_trace_id(base: Trace) -> str:
    return Trace.make_id(
        problem_id=base.problem_id, variant="plain", mode="derived", teacher=base.teacher,
        prompt_hash=base.prompt_hash, sample=base.sample, attempt=base.attempt, base_trace_id=base.id,
    )


def build_messages(question: str, variant: str, n_images: int, trace: str) -> list[dict[str, Any]]:
    """TRL conversational form: user = one image block per image + question and instruction; assistant = trace."""
    user = [{"type": "image", "text": None} for _ in range(n_images)]
    user.append({"type": "text", "text": user_prompt(question, variant)})
    return [
        {"role": "user", "content": user},
        {"role": "assistant", "content": [{"type": "text", "text": trace}]},
    ]


def _row_dict(inputs: _Inputs, row: _Row, *, with_images: bool) -> dict[str, Any]:
    trace = inputs.trace(row.run, row.trace_id)
    g = row.group
    if row.kind == "derived":
        text, trace_id, mode, base_id, variant = (
            derive_plain_text(trace.text), derived_trace_id(trace), "derived", trace.id, "plain"
        )
    else:
        text, trace_id, mode, base_id = trace.text, trace.id, trace.mode, trace.base_trace_id
        variant = trace.variant
    if with_images:
        images = [{"bytes": inputs.image(g, fn), "path": fn} for fn in g.images]
    else:
        images = [{"sha256": _sha_of(fn), "path": fn} for fn in g.images]
    n_back = back_count(text)
    return {
        "id": content_hash({"config": row.config, "trace_id": trace_id}),
        "problem_id": g.problem_id,
        "images": images,
        "question": g.question,
        "answer": g.answer,
        "choices": g.choices,
        "variant": variant,
        "trace": text,
        "messages": build_messages(g.question, row.config, len(g.images), text),
        "source": g.source,
        "teacher": trace.teacher.backend,
        "model": trace.teacher.model,
        "prompt_hash": trace.prompt_hash,
        "has_back": n_back > 0,
        "back_count": n_back,
        "mode": mode,
        "trace_id": trace_id,
        "base_trace_id": base_id,
    }


def corpus_features():
    """The ``datasets.Features`` of every corpus config (images as ``List(Image())``)."""
    from datasets import Features, Image, List, Value

    text_block = {"type": Value("string"), "text": Value("string")}
    return Features(
        {
            "id": Value("string"),
            "problem_id": Value("string"),
            "images": List(Image()),
            "question": Value("string"),
            "answer": Value("string"),
            "choices": List(Value("string")),
            "variant": Value("string"),
            "trace": Value("string"),
            "messages": List({"role": Value("string"), "content": List(text_block)}),
            "source": Value("string"),
            "teacher": Value("string"),
            "model": Value("string"),
            "prompt_hash": Value("string"),
            "has_back": Value("bool"),
            "back_count": Value("int32"),
            "mode": Value("string"),
            "trace_id": Value("string"),
            "base_trace_id": Value("string"),
        }
    )


# ---------------------------------------------------------------------------- statistics
class _Stats:
    """Per-config summary statistics for the card, accumulated while streaming (lengths kept in the book)."""

    def __init__(self, book: _Book, config: str) -> None:
        self._db = book.db
        self._config = config
        self._pending: list[tuple[str, int, float | None]] = []
        self.back_counts: Counter[int] = Counter()
        self.modes: Counter[str] = Counter()
        self.teachers: set[tuple[str, str]] = set()
        self.prompt_hashes: set[str] = set()
        self.rows = 0
        self.back_rows = 0

    def add(self, row: dict[str, Any]) -> None:
        text = row["trace"]
        self.rows += 1
        self.modes[row["mode"]] += 1
        self.teachers.add((row["teacher"], row["model"]))
        self.prompt_hashes.add(row["prompt_hash"])
        position = None
        if row["has_back"]:
            self.back_rows += 1
            self.back_counts[row["back_count"]] += 1
            position = round(text.index("<back>") / max(1, len(text)), 4)
        self._pending.append((self._config, len(text), position))
        if len(self._pending) >= _BATCH:
            self.flush()

    def flush(self) -> None:
        self._db.executemany("INSERT INTO stats VALUES (?, ?, ?)", self._pending)
        self._pending.clear()

    def _values(self, column: str) -> Iterator[Any]:
        cur = self._db.execute(f"SELECT {column} FROM stats WHERE config=? AND {column} IS NOT NULL", (self._config,))
        return (v for (v,) in cur)

    def _nth(self, column: str, i: int) -> Any:
        return self._db.execute(
            f"SELECT {column} FROM stats WHERE config=? AND {column} IS NOT NULL ORDER BY {column} LIMIT 1 OFFSET ?",
            (self._config, i),
        ).fetchone()[0]

    def _median(self, column: str, n: int) -> Any:
        """``statistics.median`` of the column's ``n`` values, read from the book."""
        if n % 2 == 1:
            return self._nth(column, n // 2)
        return (self._nth(column, n // 2 - 1) + self._nth(column, n // 2)) / 2

    def summary(self) -> dict[str, Any]:
        self.flush()
        n, n_pos = self.rows, self.back_rows
        return {
            "rows": self.rows,
            "back_rows": self.back_rows,
            "reflection_rate": round(self.back_rows / self.rows, 4) if self.rows else 0.0,
            "backs_per_back_row": {str(k): v for k, v in sorted(self.back_counts.items())},
            "first_back_position": {
                "mean": round(statistics.fmean(self._values("position")), 3) if n_pos else None,
                "median": round(self._median("position", n_pos), 3) if n_pos else None,
            },
            "trace_chars": {
                "mean": round(statistics.fmean(self._values("length")), 1) if n else None,
                "median": self._median("length", n) if n else None,
                "p95": self._nth("length", min(n - 1, int(0.95 * n))) if n else None,
                "max": self._nth("length", n - 1) if n else None,
            },
            "modes": dict(sorted(self.modes.items())),
        }


# ---------------------------------------------------------------------------- build
def _shard_sizes(inputs: _Inputs, part: tuple[int, int]) -> list[int]:
    """Rows per shard of one config and split: about MAX_SHARD_BYTES each, at most MAX_SHARD_ROWS."""
    sizes = [0]
    size = 0
    for image_bytes, text_len in inputs.book.db.execute(
        "SELECT g.image_bytes, k.text_len FROM rows r JOIN kept k ON k.kid = r.kid JOIN groups g ON g.gseq = k.gseq "
        "WHERE r.config=? AND r.split=? ORDER BY r.ord, r.pos", part,
    ):
        est = image_bytes + text_len * 2
        if sizes[-1] and (size + est > MAX_SHARD_BYTES or sizes[-1] >= MAX_SHARD_ROWS):
            sizes.append(0)
            size = 0
        sizes[-1] += 1
        size += est
    return sizes


def _parts(inputs: _Inputs) -> list[tuple[int, int]]:
    """(config index, split index) of every config and split that has rows, in corpus order."""
    return [tuple(p) for p in inputs.book.db.execute("SELECT DISTINCT config, split FROM rows ORDER BY config, split")]


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:05d}-of-{count:05d}.parquet"


def build_corpus(
    runs: list[str | os.PathLike[str]],
    name: str,
    config: BuildConfig | None = None,
    *,
    validate_config: str | os.PathLike[str] | None = None,
    home: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> BuildResult:
    """Build (or find) the corpus version of ``runs`` under ``config``; see the module docstring."""
    config = config or BuildConfig()
    check_name(name, "corpus name")
    if not runs:
        raise UsageError("no run given; pass one or more run names or directories (`lbdata runs` lists them)")
    run_dirs = [resolve_run(str(r), home) for r in runs]
    validation = _validation_config(validate_config)
    made = [p for p in (home_dir(home), corpora_dir(home), corpora_dir(home) / name) if not p.exists()]
    corpus_root = ensure_writable_dir(corpora_dir(home) / name, "corpus folder")
    work = make_partial_dir(corpus_root / "build", "build")  # leftovers of killed builds are removed first
    try:
        with contextlib.closing(_Book(work / "book.sqlite")) as book:
            inputs = _Inputs(run_dirs, validation, config, book, progress)
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


def _build(inputs: _Inputs, name: str, corpus_root: Path, work: Path,
           home: str | os.PathLike[str] | None) -> BuildResult:
    config = inputs.config
    inputs.read()
    n_rows = _plan_rows(inputs)
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
    _write_data(inputs, n_rows, tmp, progress=inputs.progress)
    (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    (tmp / CARD_FILE).write_text(render_card(manifest))
    if (final / MANIFEST_FILE).exists():  # built meanwhile by another process
        return BuildResult(name, version, final, False, json.loads((final / MANIFEST_FILE).read_text()))
    shutil.rmtree(final, ignore_errors=True)  # a partial folder without manifest
    os.replace(tmp, final)
    return BuildResult(name, version, final, True, manifest)


def _hash_rows(inputs: _Inputs, identity: dict[str, Any]) -> tuple[str, dict[str, _Stats]]:
    h = hashlib.sha256(canonical_json(identity).encode())
    stats: dict[str, _Stats] = {}
    for row in _iter_planned(inputs):
        d = _row_dict(inputs, row, with_images=False)
        h.update(b"\n")
        h.update(canonical_json([row.config, row.split, d]).encode())
        if row.config not in stats:
            stats[row.config] = _Stats(inputs.book, row.config)
        stats[row.config].add(d)
    for s in stats.values():
        s.flush()
    inputs.book.db.execute("CREATE INDEX stats_length ON stats (config, length)")
    inputs.book.db.execute("CREATE INDEX stats_position ON stats (config, position)")
    return h.hexdigest()[:12], stats


def _write_data(inputs: _Inputs, n_rows: int, root: Path, *, progress: bool) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = corpus_features().arrow_schema
    bar = _progress(progress, n_rows)
    for part in _parts(inputs):
        cfg, split = inputs.config.variants[part[0]], SPLITS[part[1]]
        folder = root / DATA_DIR / cfg
        folder.mkdir(parents=True, exist_ok=True)
        sizes = _shard_sizes(inputs, part)
        rows = _iter_planned(inputs, part)
        for i, size in enumerate(sizes):
            with pq.ParquetWriter(folder / shard_name(split, i, len(sizes)), schema, compression="snappy") as w:
                for start in range(0, size, ROW_GROUP_SIZE):
                    batch = [_row_dict(inputs, r, with_images=True)
                             for r in itertools.islice(rows, min(ROW_GROUP_SIZE, size - start))]
                    w.write_table(pa.Table.from_pylist(batch, schema=schema), row_group_size=ROW_GROUP_SIZE)
                    if bar is not None:
                        bar.advance(len(batch))
    if bar is not None:
        bar.close()


class _Bar:
    def __init__(self, total: int):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._p = Progress(TextColumn("writing rows"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                           transient=True)
        self._p.start()
        self._task = self._p.add_task("rows", total=total)

    def advance(self, n: int) -> None:
        self._p.advance(self._task, n)

    def close(self) -> None:
        self._p.stop()


def _progress(enabled: bool, total: int) -> _Bar | None:
    return _Bar(total) if enabled else None


def _manifest(
    name: str, version: str, parent: str | None, inputs: _Inputs, stats: dict[str, _Stats],
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
    for part in _parts(inputs):
        cfg, split = config.variants[part[0]], SPLITS[part[1]]
        n = len(_shard_sizes(inputs, part))
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


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` bucket of ``n`` rows."""
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                         (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < limit:
            return label
    return "10M<n<100M"


def render_card(manifest: dict[str, Any], repo: str | None = None) -> str:
    """The dataset card (README.md with the Hub YAML header) of a version, from ``cards/corpus.md.j2``.

    ``repo`` (ORG/NAME) is the Hub dataset the card is pushed to; it shows in the loading example.
    """
    from lbdata.resources import resource_path
    from lbdata.templates import environment

    env = environment("cards")
    template = env.from_string(resource_path("cards", "corpus.md.j2").read_text(encoding="utf-8"))
    total = sum(s["rows"] for per in manifest["counts"].values() for s in per.values())
    return template.render(m=manifest, repo=repo, splits=SPLITS, total_rows=total, size_category=size_category(total))


# ---------------------------------------------------------------------------- versions
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


# ---------------------------------------------------------------------------- diff
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
