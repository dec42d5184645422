"""Pass 1 of a build: open the runs, make sure every trace has a verdict, and read the accepted traces
into deduplicated problem groups in the book (same images and normalised question: one problem; same
text for the same problem: one trace).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any

from lbdata.corpus.book import BATCH, Book, Group, sha_of
from lbdata.corpus.config import BuildConfig
from lbdata.errors import CorpusError
from lbdata.hashing import canonical_json
from lbdata.ledger import Ledger
from lbdata.records import Trace

log = logging.getLogger(__name__)


def normalise_question(question: str) -> str:
    """The dedup form of a question: NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", question).casefold().split())


def _norm_answer(answer: str) -> str:
    return " ".join(answer.split()).casefold()


def validation_config(path: str | os.PathLike[str] | None):
    from lbdata.validate import ValidationConfig

    return ValidationConfig.from_yaml(path) if path is not None else ValidationConfig()


def _validate_run(run_dir: Path, config, progress: bool) -> None:
    from lbdata.validate import validate_run

    validate_run(run_dir, config=config, progress=progress)


class Inputs:
    """The runs of a build, opened, validated, and read into deduplicated problem groups (in the book)."""

    def __init__(self, run_dirs: list[Path], validation, config: BuildConfig, book: Book, progress: bool = False):
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
            "first_node": sha_of(files[0]) if files else f"noimage:{problem.id}",
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
                if len(batch) >= BATCH:
                    db.executemany("INSERT INTO kept (gseq, variant, trace_id, run, text_len) VALUES (?, ?, ?, ?, ?)",
                                   batch)
                    batch.clear()
        db.executemany("INSERT INTO kept (gseq, variant, trace_id, run, text_len) VALUES (?, ?, ?, ?, ?)", batch)

    def trace(self, run: int, trace_id: str) -> Trace:
        return self.ledgers[run].get_trace(trace_id)

    def image(self, group: Group, filename: str) -> bytes:
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
