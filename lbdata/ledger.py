"""The run ledger: one SQLite database (WAL) per run directory.

Tables: ``problems``, ``bad_rows``, ``traces`` (status, attempt, error, usage), ``verdicts`` (keyed by
trace id + validator config hash) and ``cache`` (raw teacher responses keyed by request hash, so a
re-run never pays twice), ``judges`` and ``judgments`` (``lbdata judge``: keyed by trace id + judge config hash,
with the sha256 of the text judged). Images are stored once per run under ``images/<sha256>.<ext>``, written
atomically before the row that refers to them.

Every completed item is committed in its own transaction, so a SIGKILL loses at most the items in
flight and never corrupts the ledger. Nothing downstream re-reads raw teacher output except through
this module.

Write-once: a completed trace is never replaced (a second answer for the same id is dropped), and a
verdict carries the sha256 of the text it judged. Verdicts whose hash does not match the stored text
(ledgers written before traces were write-once) count as missing: ``verdict_trace_ids`` and
``iter_verdicts(current=True)`` leave them out, so ``validate`` and ``build`` judge the text again.
``workspace.RunLock`` keeps a second writer (``generate``) off a run.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lbdata.errors import LedgerError
from lbdata.hashing import sha256_text
from lbdata.records import BadRow, Problem, Trace, Verdict
from lbdata.workspace import LEDGER_FILE, ensure_writable_dir

SCHEMA_VERSION = 1

log = logging.getLogger(__name__)

# A verdict is current when it judged the text stored now (``v`` verdicts joined with ``t`` traces).
_CURRENT = "json_extract(v.json, '$.text_sha256') = lb_sha256(json_extract(t.json, '$.text'))"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS problems (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS bad_rows (
    source TEXT NOT NULL,
    key TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (source, key)
);
CREATE TABLE IF NOT EXISTS traces (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    problem_id TEXT NOT NULL,
    variant TEXT NOT NULL,
    mode TEXT NOT NULL,
    sample INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    cost_usd REAL NOT NULL DEFAULT 0,
    json TEXT
);
CREATE INDEX IF NOT EXISTS traces_problem ON traces (problem_id, variant);
CREATE TABLE IF NOT EXISTS verdicts (
    trace_id TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    accepted INTEGER NOT NULL,
    reasons TEXT NOT NULL,
    json TEXT NOT NULL,
    PRIMARY KEY (trace_id, config_hash)
);
CREATE TABLE IF NOT EXISTS cache (
    key TEXT PRIMARY KEY,
    json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    submission TEXT PRIMARY KEY,
    batch_id TEXT,
    status TEXT NOT NULL,
    collected INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS judges (
    name TEXT PRIMARY KEY,
    config_hash TEXT NOT NULL,
    json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS judgments (
    trace_id TEXT NOT NULL,
    judge_hash TEXT NOT NULL,
    text_sha256 TEXT NOT NULL,
    status TEXT NOT NULL,
    cost_usd REAL NOT NULL DEFAULT 0,
    json TEXT NOT NULL,
    PRIMARY KEY (trace_id, judge_hash)
);
"""


# What a run folder holds besides its ledger; a folder with anything else and no ledger is not a run.
_RUN_ENTRIES = frozenset({"images", "config.json", "validation.json", "validation.md", "writer.lock", "batches",
                          LEDGER_FILE + "-wal", LEDGER_FILE + "-shm", LEDGER_FILE + "-journal"})


def _check_not_a_foreign_folder(path: Path) -> None:
    if not path.is_dir() or (path / LEDGER_FILE).exists():
        return
    try:
        foreign = sorted(p.name for p in path.iterdir() if p.name not in _RUN_ENTRIES and not p.name.startswith("."))
    except OSError:
        return  # unreadable: ensure_writable_dir says so
    if foreign:
        shown = ", ".join(foreign[:3]) + (", …" if len(foreign) > 3 else "")
        raise LedgerError(f"{path} is not a run folder (it holds {shown}); give a new or empty folder, or a run "
                          "name (--run NAME keeps it under the lbdata home)")


class Ledger:
    """A run directory's ledger. Use ``Ledger.create`` for a new or resumed run, ``Ledger.open`` to read."""

    def __init__(self, run_dir: Path, conn: sqlite3.Connection):
        self.run_dir = run_dir
        self.images_dir = run_dir / "images"
        self._conn = conn

    # ------------------------------------------------------------------ opening
    @classmethod
    def create(cls, run_dir: str | os.PathLike[str]) -> Ledger:
        """Open the ledger of ``run_dir``, creating the directory and the database when missing.

        A folder that holds other files and no ledger is refused: a run given as a path (``--run ..``,
        ``--run ~/project``) must not scatter a ledger and images among someone's files."""
        _check_not_a_foreign_folder(Path(run_dir))
        path = ensure_writable_dir(Path(run_dir), "run directory")
        (path / "images").mkdir(exist_ok=True)
        return cls._connect(path, create=True)

    @classmethod
    def open(cls, run_dir: str | os.PathLike[str]) -> Ledger:
        """Open an existing run's ledger (raises ``LedgerError`` when there is none)."""
        path = Path(run_dir)
        if not (path / LEDGER_FILE).exists():
            raise LedgerError(f"{path} holds no {LEDGER_FILE}; is it a run directory? (`lbdata runs` lists runs)")
        return cls._connect(path, create=False)

    @classmethod
    def _connect(cls, path: Path, *, create: bool) -> Ledger:
        db = path / LEDGER_FILE
        try:
            conn = sqlite3.connect(db, timeout=30.0, isolation_level=None, check_same_thread=False)
            conn.create_function("lb_sha256", 1, _sha256_or_none, deterministic=True)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if create and (not tables or "meta" in tables):
                conn.executescript(_SCHEMA)
                conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                )
            has_meta = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
            row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() if has_meta else None
        except sqlite3.DatabaseError as exc:
            raise LedgerError(
                f"{db} is not a usable lbdata ledger ({exc}); move it away or pick another run with --run"
            ) from None
        if row is None:
            raise LedgerError(f"{db} is an SQLite file but not an lbdata ledger; pick another run with --run")
        (path / "images").mkdir(exist_ok=True)
        return cls(path, conn)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    # ------------------------------------------------------------------ run config
    def write_config(self, config: dict[str, Any]) -> None:
        """Write ``config.json`` (never secrets: callers pass only the run's public settings)."""
        tmp = self.run_dir / "config.json.tmp"
        tmp.write_text(json.dumps(config, indent=2, sort_keys=True, default=str) + "\n")
        tmp.replace(self.run_dir / "config.json")

    def read_config(self) -> dict[str, Any]:
        path = self.run_dir / "config.json"
        return json.loads(path.read_text()) if path.exists() else {}

    # ------------------------------------------------------------------ images and problems
    def image_path(self, filename: str) -> Path:
        return self.images_dir / filename

    def put_image(self, filename: str, data: bytes) -> Path:
        """Store image bytes once, atomically (content-addressed: an existing file is kept)."""
        path = self.images_dir / filename
        if not path.exists():
            tmp = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
            try:
                tmp.write_bytes(data)
                tmp.replace(path)
            except BaseException:  # a full disk, a kill signal: no half image stays behind
                tmp.unlink(missing_ok=True)
                raise
        return path

    def sweep_partial_images(self) -> int:
        """Remove the half-written image files of writers that no longer run (only the writer calls this)."""
        removed = 0
        for tmp in self.images_dir.glob("*.tmp"):
            pid = tmp.name.rsplit(".", 2)[-2]
            if pid.isdigit() and int(pid) != os.getpid():
                tmp.unlink(missing_ok=True)
                removed += 1
        return removed

    def image_bytes(self, filename: str) -> bytes:
        return (self.images_dir / filename).read_bytes()

    def put_problem(self, problem: Problem, images: list[bytes]) -> bool:
        """Store a problem and its image bytes. Returns False when it was already there."""
        if len(images) != len(problem.images):
            raise ValueError("one bytes object per ImageRef is required")
        for ref, data in zip(problem.images, images, strict=True):
            self.put_image(ref.filename, data)
        cur = self._conn.execute(
            "INSERT OR IGNORE INTO problems (id, source, json) VALUES (?, ?, ?)",
            (problem.id, problem.source, problem.model_dump_json()),
        )
        return cur.rowcount > 0

    def get_problem(self, problem_id: str) -> Problem:
        row = self._conn.execute("SELECT json FROM problems WHERE id=?", (problem_id,)).fetchone()
        if row is None:
            raise LedgerError(f"problem {problem_id!r} is not in {self.run_dir}")
        return Problem.model_validate_json(row[0])

    def problem_fields(self, problem_id: str) -> tuple[str, str, str | None, str | None]:
        """``(answer, question, choices JSON, meta JSON)`` of a problem, without building a ``Problem``."""
        row = self._conn.execute(
            "SELECT json_extract(json, '$.answer'), json_extract(json, '$.question'), json_extract(json, '$.choices'), "
            "json_extract(json, '$.meta') FROM problems WHERE id=?",
            (problem_id,),
        ).fetchone()
        if row is None:
            raise LedgerError(f"problem {problem_id!r} is not in {self.run_dir}")
        return row

    def has_problem(self, problem_id: str) -> bool:
        return self._conn.execute("SELECT 1 FROM problems WHERE id=?", (problem_id,)).fetchone() is not None

    def iter_problems(self) -> Iterator[Problem]:
        for (js,) in self._conn.execute("SELECT json FROM problems ORDER BY seq"):
            yield Problem.model_validate_json(js)

    def put_bad_row(self, bad: BadRow) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO bad_rows (source, key, reason, detail) VALUES (?, ?, ?, ?)",
            (bad.source, bad.key, bad.reason, bad.detail),
        )

    def iter_bad_rows(self) -> Iterator[BadRow]:
        for s, k, r, d in self._conn.execute("SELECT source, key, reason, detail FROM bad_rows ORDER BY source, key"):
            yield BadRow(source=s, key=k, reason=r, detail=d)

    # ------------------------------------------------------------------ traces
    def trace_status(self, trace_id: str) -> str | None:
        row = self._conn.execute("SELECT status FROM traces WHERE id=?", (trace_id,)).fetchone()
        return row[0] if row else None

    def done_trace_ids(self) -> set[str]:
        return {r[0] for r in self._conn.execute("SELECT id FROM traces WHERE status='done'")}

    def put_trace(self, trace: Trace) -> bool:
        """Record a completed trace (replacing an earlier failed row with the same id).

        A completed trace is never replaced: when one with this id is already done, nothing is written
        and False is returned (its text may already have a verdict).
        """
        cur = self._conn.execute(
            "INSERT INTO traces (id, problem_id, variant, mode, sample, attempt, status, error, cost_usd, json) "
            "VALUES (?, ?, ?, ?, ?, ?, 'done', NULL, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET status='done', error=NULL, cost_usd=excluded.cost_usd, "
            "json=excluded.json WHERE traces.status='failed'",
            (
                trace.id,
                trace.problem_id,
                trace.variant,
                trace.mode,
                trace.sample,
                trace.attempt,
                trace.usage.cost_usd,
                trace.model_dump_json(),
            ),
        )
        if cur.rowcount == 0:
            log.warning("trace %s is already in %s; the new answer is dropped (a trace is never replaced)",
                        trace.id, self.run_dir)
        return cur.rowcount > 0

    def put_failure(
        self,
        *,
        trace_id: str,
        problem_id: str,
        variant: str,
        mode: str,
        sample: int,
        attempt: int,
        error: str,
        cost_usd: float = 0.0,
    ) -> None:
        """Record a failed request (its reason kept; a later run retries it). Never overwrites a done trace."""
        self._conn.execute(
            "INSERT INTO traces (id, problem_id, variant, mode, sample, attempt, status, error, cost_usd, json) "
            "VALUES (?, ?, ?, ?, ?, ?, 'failed', ?, ?, NULL) "
            "ON CONFLICT(id) DO UPDATE SET error=excluded.error, cost_usd=traces.cost_usd + excluded.cost_usd "
            "WHERE traces.status='failed'",
            (trace_id, problem_id, variant, mode, sample, attempt, error, cost_usd),
        )

    def get_trace(self, trace_id: str) -> Trace:
        row = self._conn.execute("SELECT json FROM traces WHERE id=? AND status='done'", (trace_id,)).fetchone()
        if row is None:
            raise LedgerError(f"trace {trace_id!r} is not in {self.run_dir}")
        return Trace.model_validate_json(row[0])

    def iter_traces(self, *, variant: str | None = None, problem_id: str | None = None) -> Iterator[Trace]:
        """Completed traces in the order they were written."""
        sql, args = "SELECT json FROM traces WHERE status='done'", []
        if variant is not None:
            sql += " AND variant=?"
            args.append(variant)
        if problem_id is not None:
            sql += " AND problem_id=?"
            args.append(problem_id)
        for (js,) in self._conn.execute(sql + " ORDER BY seq", args):
            yield Trace.model_validate_json(js)

    def iter_trace_texts(self) -> Iterator[tuple[str, str, str, str, str | None, str]]:
        """``(id, problem_id, variant, mode, base_trace_id, text)`` of the completed traces, in the order they
        were written: what validation reads, without building a ``Trace`` per row."""
        yield from self._conn.execute(
            "SELECT id, problem_id, variant, mode, json_extract(json, '$.base_trace_id'), json_extract(json, '$.text') "
            "FROM traces WHERE status='done' ORDER BY seq"
        )

    def verdict_tally(self, config_hash: str) -> Iterator[tuple[str, bool, list[str], float]]:
        """``(variant, accepted, reasons, answer_match)`` of each verdict under ``config_hash`` of a completed
        trace, by trace id: what a validation report counts, without building a ``Verdict`` per row."""
        for variant, accepted, reasons, match in self._conn.execute(
            "SELECT t.variant, v.accepted, v.reasons, json_extract(v.json, '$.scores.answer_match') FROM verdicts v "
            "JOIN traces t ON t.id = v.trace_id AND t.status = 'done' WHERE v.config_hash=? ORDER BY v.trace_id",
            (config_hash,),
        ):
            yield variant, bool(accepted), json.loads(reasons), match or 0.0

    def iter_failures(self) -> Iterator[dict[str, Any]]:
        cols = ("id", "problem_id", "variant", "mode", "sample", "attempt", "error", "cost_usd")
        for row in self._conn.execute(f"SELECT {', '.join(cols)} FROM traces WHERE status='failed' ORDER BY seq"):
            yield dict(zip(cols, row, strict=True))

    # ------------------------------------------------------------------ verdicts
    def put_verdict(self, verdict: Verdict) -> None:
        v = self._with_text_hash(verdict)
        self._conn.execute(
            "INSERT OR REPLACE INTO verdicts (trace_id, config_hash, accepted, reasons, json) VALUES (?, ?, ?, ?, ?)",
            (v.trace_id, v.config_hash, int(v.accepted), json.dumps(v.reasons), v.model_dump_json()),
        )

    def put_verdicts(self, verdicts: list[Verdict]) -> None:
        """Store many verdicts in one transaction."""
        with self.transaction() as conn:
            rows = [self._with_text_hash(v) for v in verdicts]
            conn.executemany(
                "INSERT OR REPLACE INTO verdicts (trace_id, config_hash, accepted, reasons, json) VALUES (?, ?, ?, ?, ?)",
                [(v.trace_id, v.config_hash, int(v.accepted), json.dumps(v.reasons), v.model_dump_json()) for v in rows],
            )

    def _with_text_hash(self, verdict: Verdict) -> Verdict:
        """A verdict made without ``text_sha256`` is taken to judge the text stored now (traces are write-once)."""
        if verdict.text_sha256:
            return verdict
        row = self._conn.execute(
            "SELECT json_extract(json, '$.text') FROM traces WHERE id=? AND status='done'", (verdict.trace_id,)
        ).fetchone()
        if row is None or row[0] is None:
            return verdict
        return verdict.model_copy(update={"text_sha256": sha256_text(row[0])})

    def get_verdict(self, trace_id: str, config_hash: str) -> Verdict | None:
        row = self._conn.execute(
            "SELECT json FROM verdicts WHERE trace_id=? AND config_hash=?", (trace_id, config_hash)
        ).fetchone()
        return Verdict.model_validate_json(row[0]) if row else None

    def verdict_trace_ids(self, config_hash: str) -> set[str]:
        """Ids of the traces with a current verdict under ``config_hash`` (one that judged the stored text)."""
        return {r[0] for r in self._conn.execute(
            f"SELECT v.trace_id FROM verdicts v JOIN traces t ON t.id = v.trace_id AND t.status = 'done' "
            f"WHERE v.config_hash=? AND {_CURRENT}", (config_hash,))}

    def stale_verdicts(self, config_hash: str) -> int:
        """Verdicts under ``config_hash`` whose trace text is not the text they judged."""
        return self._conn.execute(
            f"SELECT COUNT(*) FROM verdicts v JOIN traces t ON t.id = v.trace_id AND t.status = 'done' "
            f"WHERE v.config_hash=? AND NOT COALESCE({_CURRENT}, 0)", (config_hash,)).fetchone()[0]

    def iter_verdicts(self, config_hash: str | None = None, *, current: bool = False) -> Iterator[Verdict]:
        """Verdicts, by trace id; ``current=True`` keeps only those that judged the text stored now."""
        sql, args = "SELECT v.json FROM verdicts v", []
        if current:
            sql += f" JOIN traces t ON t.id = v.trace_id AND t.status = 'done' AND {_CURRENT}"
        if config_hash is not None:
            sql += " WHERE v.config_hash=?"
            args.append(config_hash)
        for (js,) in self._conn.execute(sql + " ORDER BY v.trace_id", args):
            yield Verdict.model_validate_json(js)

    def verdict_config_hashes(self) -> list[str]:
        return [r[0] for r in self._conn.execute("SELECT DISTINCT config_hash FROM verdicts ORDER BY config_hash")]

    # ------------------------------------------------------------------ request cache
    def cache_get(self, key: str) -> dict[str, Any] | None:
        row = self._conn.execute("SELECT json FROM cache WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def cache_put(self, key: str, value: dict[str, Any]) -> None:
        self._conn.execute("INSERT OR REPLACE INTO cache (key, json) VALUES (?, ?)", (key, json.dumps(value)))

    # ------------------------------------------------------------------ Batch API submissions
    def put_batch(self, submission: str, *, status: str, info: dict[str, Any], batch_id: str | None = None,
                  collected: bool = False) -> None:
        """Record (or update) one batch submission: ``info`` holds its request keys, sizes, file ids and counts."""
        from datetime import UTC, datetime

        self._conn.execute(
            "INSERT INTO batches (submission, batch_id, status, collected, created_at, json) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(submission) DO UPDATE SET batch_id=excluded.batch_id, status=excluded.status, "
            "collected=excluded.collected, json=excluded.json",
            (submission, batch_id, status, int(collected), datetime.now(UTC).isoformat(), json.dumps(info)),
        )

    def delete_batch(self, submission: str) -> None:
        self._conn.execute("DELETE FROM batches WHERE submission=?", (submission,))

    def iter_batches(self, *, uncollected: bool = False) -> list[dict[str, Any]]:
        """Batch submissions in the order they were made (``uncollected``: only those whose answers are not read yet)."""
        sql = "SELECT submission, batch_id, status, collected, created_at, json FROM batches"
        sql += " WHERE collected=0" if uncollected else ""
        try:
            rows = self._conn.execute(sql + " ORDER BY created_at, submission").fetchall()
        except sqlite3.OperationalError:  # a ledger from before batches existed, opened read-only
            return []
        return [{**json.loads(js), "submission": sub, "batch_id": bid, "status": st, "collected": bool(col),
                 "created_at": at} for sub, bid, st, col, at, js in rows]

    # ------------------------------------------------------------------ judgments (``lbdata judge``)
    def put_judge(self, name: str, config_hash: str, config: dict[str, Any]) -> str:
        """Register judge ``name`` with its config; returns the config hash the name already had, if any."""
        self._conn.execute("INSERT OR IGNORE INTO judges (name, config_hash, json) VALUES (?, ?, ?)",
                           (name, config_hash, json.dumps(config, sort_keys=True)))
        return self._conn.execute("SELECT config_hash FROM judges WHERE name=?", (name,)).fetchone()[0]

    def get_judge(self, name: str) -> tuple[str, dict[str, Any]] | None:
        """(config hash, public config) of judge ``name``; None when the run has no such judge."""
        try:
            row = self._conn.execute("SELECT config_hash, json FROM judges WHERE name=?", (name,)).fetchone()
        except sqlite3.OperationalError:  # a ledger from before judges existed, opened read-only
            return None
        return (row[0], json.loads(row[1])) if row else None

    def judge_names(self) -> list[str]:
        try:
            return [r[0] for r in self._conn.execute("SELECT name FROM judges ORDER BY name")]
        except sqlite3.OperationalError:
            return []

    def put_judgment(self, trace_id: str, judge_hash: str, text_sha256: str, status: str, record: dict[str, Any],
                     cost_usd: float = 0.0) -> None:
        """Store the judgment of one trace text (``judged`` or ``unjudged``); the spend of earlier tries adds up."""
        self._conn.execute(
            "INSERT INTO judgments (trace_id, judge_hash, text_sha256, status, cost_usd, json) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(trace_id, judge_hash) DO UPDATE SET text_sha256=excluded.text_sha256, status=excluded.status, "
            "cost_usd=judgments.cost_usd + excluded.cost_usd, json=excluded.json",
            (trace_id, judge_hash, text_sha256, status, cost_usd, json.dumps(record)),
        )

    def iter_judgments(self, judge_hash: str, *, current: bool = True) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(trace id, status, record) of the judgments under ``judge_hash``; ``current`` keeps only those that
        judged the trace text stored now."""
        sql = ("SELECT j.trace_id, j.status, j.json FROM judgments j JOIN traces t ON t.id = j.trace_id "
               "AND t.status = 'done' WHERE j.judge_hash=?")
        if current:
            sql += " AND j.text_sha256 = lb_sha256(json_extract(t.json, '$.text'))"
        try:
            rows = self._conn.execute(sql + " ORDER BY j.trace_id", (judge_hash,)).fetchall()
        except sqlite3.OperationalError:
            return
        for tid, status, js in rows:
            yield tid, status, json.loads(js)

    def judgment_cost(self, judge_hash: str) -> float:
        try:
            return float(self._conn.execute("SELECT COALESCE(SUM(cost_usd), 0) FROM judgments WHERE judge_hash=?",
                                            (judge_hash,)).fetchone()[0])
        except sqlite3.OperationalError:
            return 0.0

    def verdict_counts(self, config_hash: str) -> tuple[int, int]:
        """(traces with a verdict, accepted traces) under one validator config."""
        row = self._conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(v.accepted), 0) FROM verdicts v JOIN traces t ON t.id = v.trace_id "
            "WHERE v.config_hash=? AND t.status='done'", (config_hash,)).fetchone()
        return int(row[0]), int(row[1])

    # ------------------------------------------------------------------ summaries
    def counts(self) -> dict[str, Any]:
        c = self._conn
        per_variant = {v: n for v, n in c.execute("SELECT variant, COUNT(*) FROM traces WHERE status='done' GROUP BY variant")}
        bad = {r: n for r, n in c.execute("SELECT reason, COUNT(*) FROM bad_rows GROUP BY reason")}
        return {
            "problems": c.execute("SELECT COUNT(*) FROM problems").fetchone()[0],
            "bad_rows": sum(bad.values()),
            "bad_rows_by_reason": bad,
            "traces": sum(per_variant.values()),
            "traces_by_variant": per_variant,
            "failed": c.execute("SELECT COUNT(*) FROM traces WHERE status='failed'").fetchone()[0],
            "cost_usd": c.execute("SELECT COALESCE(SUM(cost_usd), 0) FROM traces").fetchone()[0],
        }

    def digest(self) -> str:
        """Content digest of the completed traces and problems (for corpus manifests)."""
        import hashlib

        h = hashlib.sha256()
        for (tid,) in self._conn.execute("SELECT id FROM traces WHERE status='done' ORDER BY id"):
            h.update(tid.encode())
        for (pid,) in self._conn.execute("SELECT id FROM problems ORDER BY id"):
            h.update(pid.encode())
        return h.hexdigest()[:16]


def _sha256_or_none(text: str | None) -> str | None:
    return None if text is None else sha256_text(text)
