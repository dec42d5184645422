"""Per-config statistics for the manifest and the card, accumulated while the rows are hashed."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterator
from typing import Any

from lbdata.corpus.book import BATCH, Book


class ConfigStats:
    """Per-config summary statistics for the card, accumulated while streaming (lengths kept in the book)."""

    def __init__(self, book: Book, config: str) -> None:
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
        if len(self._pending) >= BATCH:
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
