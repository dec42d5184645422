"""The build's bookkeeping: a scratch SQLite database, so memory stays flat as the corpus grows.

One row per verdict, deduplicated problem, accepted trace, unit of the mix and planned row; each pass
reads them back in index order. Also the seeded hash order (``rank``) every choice of a build uses.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path


def rank(seed: int, *parts: str) -> bytes:
    """Seeded hash order: 8 bytes that sort (in Python and in SQLite) like a 64-bit unsigned integer."""
    return hashlib.sha256("\x00".join((str(seed), *parts)).encode()).digest()[:8]


def round_half_up(x: Decimal) -> int:
    return int(x.to_integral_value(rounding=ROUND_HALF_UP))


def sha_of(filename: str) -> str:
    return filename.partition(".")[0]


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
BATCH = 1000


class Book:
    """The build's bookkeeping in a temporary SQLite database, so memory stays flat as the corpus grows.

    One row per verdict, deduplicated problem, accepted trace, unit of the mix and planned row; each
    pass reads them back in index order. The file lives in the build's work folder and goes with it.
    """

    def __init__(self, path: Path):
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.executescript(_BOOK_SCHEMA)
        self.db.create_function("lb_rank", -1, rank, deterministic=True)
        self.db.execute("BEGIN")

    def commit(self) -> None:
        self.db.execute("COMMIT")
        self.db.execute("BEGIN")

    def close(self) -> None:
        self.db.close()


@dataclass(slots=True)
class Group:
    """One deduplicated problem (same images and normalised question), as rows and validators see it."""

    problem_id: str
    run: int
    question: str
    answer: str
    choices: list[str] | None
    source: str
    images: tuple[str, ...]  # file names "<sha256>.<ext>"
    image_bytes: int


GROUP_COLUMNS = "g.problem_id, g.run, g.question, g.answer, g.choices, g.source, g.images, g.image_bytes"


def group_of(values: tuple | list) -> Group:
    pid, run, question, answer, choices, source, images, image_bytes = values
    return Group(pid, run, question, answer, json.loads(choices) if choices is not None else None, source,
                  tuple(json.loads(images)), image_bytes)


@dataclass(slots=True)
class PlannedRow:
    """One planned row: which trace, how it is used, where it goes."""

    config: str
    split: str
    kind: str  # back | plain | derived
    trace_id: str
    run: int
    text_len: int
    group: Group
