"""Pass 2 of a build: choose every row into the book, deterministically.

Problems sharing an image are grouped (union-find over image hashes, its links in the book) and whole
groups go to ``test`` in seeded hash order; per config and split the mix takes the most rows whose back
count is exactly ``round_half_up(reflection_rate × rows)``, validating a derived plain form when it is
picked. ``iter_planned`` reads the chosen rows back in corpus order.
"""

from __future__ import annotations

import itertools
import json
import logging
import sqlite3
from collections.abc import Iterator
from decimal import Decimal

from lbdata.corpus.book import (
    BATCH,
    GROUP_COLUMNS,
    Book,
    Group,
    PlannedRow,
    group_of,
    rank,
    round_half_up,
    sha_of,
)
from lbdata.corpus.config import SPLITS
from lbdata.corpus.inputs import Inputs
from lbdata.corpus.rows import derive_plain_text

log = logging.getLogger(__name__)
_BACK_ONLY, _BOTH, _PLAIN_ONLY = 0, 1, 2  # kinds of a unit of the mix (units.kind)


def mix_counts(back_only: int, both: int, plain_only: int, rate: float) -> tuple[int, int]:
    """``(back rows, plain rows)``: the most rows whose back count is exactly round_half_up(rate × rows).

    ``back_only`` units can only be back rows, ``plain_only`` only plain rows, ``both`` either.
    """
    r = Decimal(str(rate))
    for total in range(back_only + both + plain_only, 0, -1):
        k = round_half_up(r * total)
        m = total - k
        if k <= back_only + both and m <= plain_only + both - max(0, k - back_only):
            return k, m
    return 0, 0


def _validate_plain(text: str, group: Group, config) -> tuple[bool, list[str]]:
    from lbdata.validate import validate_trace

    verdict = validate_trace(text, variant="plain", gold=group.answer, question=group.question,
                             choices=group.choices, config=config)
    return verdict.accepted, list(verdict.reasons)


class UnionFind:
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


def _assign_splits(book: Book, seed: int, test_size: float) -> None:
    """Group problems that share an image; whole image groups go to test until test_size is reached."""
    db = book.db
    uf = UnionFind(db)
    for (images,) in db.execute("SELECT images FROM groups WHERE gorder IS NOT NULL AND n_images > 1"):
        shas = [sha_of(fn) for fn in json.loads(images)]
        for s in shas[1:]:
            uf.union(shas[0], s)
    db.execute("UPDATE groups SET root = first_node WHERE gorder IS NOT NULL")
    last = 0
    while chunk := db.execute(
        "SELECT gseq, first_node FROM groups WHERE gseq > ? AND gorder IS NOT NULL "
        "AND first_node IN (SELECT node FROM links) ORDER BY gseq LIMIT ?", (last, BATCH),
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
    target = round_half_up(Decimal(str(test_size)) * n_groups)
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


def plan_rows(inputs: Inputs) -> int:
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


def _plan_units(inputs: Inputs, variant: str) -> None:
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
            (backs if v == variant else plains).append((rank(seed, "pick", trace_id), kid))
        backs.sort()
        plains.sort()
        inputs.dropped["per_problem_limit"] += max(0, len(backs) - k)
        for j in range(min(k, max(len(backs), len(plains)))):
            back = backs[j][1] if j < len(backs) else None
            plain, derived = (plains[j][1], False) if j < len(plains) else (back, back is not None)
            kind = _BOTH if back is not None and plain is not None else (_BACK_ONLY if back is not None else _PLAIN_ONLY)
            batch.append((split, kind, rank(seed, "mix", variant, problem_id, str(j)), gorder, j, gseq, back, plain,
                          int(derived)))
        if len(batch) >= BATCH:
            db.executemany("INSERT INTO units (split, kind, rank, gorder, j, gseq, back, plain, derived) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", batch)
            batch.clear()
    db.executemany("INSERT INTO units (split, kind, rank, gorder, j, gseq, back, plain, derived) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", batch)


_UNIT_ORDER = " ORDER BY u.rank, u.gorder, u.j"


def _mix(inputs: Inputs, c: int, s: int) -> None:
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
        while chunk := cur.fetchmany(BATCH):
            out = []
            for kid, derived, trace_id in chunk:
                if as_plain:
                    row_kind = "derived" if derived else "plain"
                    out.append((c, s, rank(seed, "order", variant, row_kind, trace_id), row_kind, kid))
                else:
                    out.append((c, s, rank(seed, "order", variant, trace_id), "back", kid))
            db.executemany("INSERT INTO rows (config, split, ord, kind, kid) VALUES (?, ?, ?, ?, ?)", out)


def _check_derived(inputs: Inputs, s: int, used: int, take: int) -> bool:
    """Validate the derived plain forms among the 'both' units [used, used + take) not yet checked.

    Returns whether one failed (its unit is then back-only).
    """
    db = inputs.book.db
    key = "SELECT u.rank, u.gorder, u.j FROM units u WHERE u.split=? AND u.kind=?" + _UNIT_ORDER + " LIMIT 1 OFFSET ?"
    first = db.execute(key, (s, _BOTH, used)).fetchone()
    last = db.execute(key, (s, _BOTH, used + take - 1)).fetchone()
    failed = False
    while chunk := db.execute(
        f"SELECT u.uid, k.trace_id, k.run, {GROUP_COLUMNS} FROM units u JOIN kept k ON k.kid = u.plain "
        "JOIN groups g ON g.gseq = u.gseq WHERE u.split=? AND u.kind=? AND u.derived=1 AND u.checked=0 "
        f"AND (u.rank, u.gorder, u.j) BETWEEN (?, ?, ?) AND (?, ?, ?){_UNIT_ORDER} LIMIT ?",
        (s, _BOTH, *first, *last, BATCH),
    ).fetchall():
        good, bad = [], []
        for uid, trace_id, run, *group in chunk:
            (good if _derivable(inputs, group_of(group), run, trace_id) else bad).append(uid)
        db.executemany("UPDATE units SET checked=1 WHERE uid=?", [(uid,) for uid in good])
        db.executemany("UPDATE units SET checked=1, kind=?, plain=NULL, derived=0 WHERE uid=?",
                       [(_BACK_ONLY, uid) for uid in bad])
        failed = failed or bool(bad)
    return failed


def _derivable(inputs: Inputs, group: Group, run: int, trace_id: str) -> bool:
    text = derive_plain_text(inputs.trace(run, trace_id).text)
    ok, reasons = _validate_plain(text, group, inputs.validation)
    if not ok:
        inputs.dropped["derived_invalid"] += 1
        log.debug("derived plain trace of %s rejected: %s", trace_id, reasons)
    return ok


_ROWS_SQL = (
    f"SELECT r.config, r.split, r.kind, k.trace_id, k.run, k.text_len, {GROUP_COLUMNS} "
    "FROM rows r JOIN kept k ON k.kid = r.kid JOIN groups g ON g.gseq = k.gseq"
)


def iter_planned(inputs: Inputs, part: tuple[int, int] | None = None) -> Iterator[PlannedRow]:
    """The planned rows in corpus order (of one config and split when ``part`` is given)."""
    where, args = (" WHERE r.config=? AND r.split=?", part) if part is not None else ("", ())
    cur = inputs.book.db.execute(_ROWS_SQL + where + " ORDER BY r.config, r.split, r.ord, r.pos", args)
    variants = inputs.config.variants
    for c, s, kind, trace_id, run, text_len, *group in cur:
        yield PlannedRow(variants[c], SPLITS[s], kind, trace_id, run, text_len, group_of(group))
