"""One progress bar for every long loop: rich, on stderr, with count, rate, ETA and a stats text.

Library code creates ``ProgressBar(label, total, enabled=...)``; when disabled it does nothing, so
callers never branch on whether progress is shown.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class ProgressBar:
    """A rich progress bar on stderr (or a no-op), throttled to a few redraws a second."""

    def __init__(
        self,
        label: str,
        total: int | None,
        *,
        enabled: bool = True,
        completed: int = 0,
        unit: str = "items",
        transient: bool = False,
    ):
        self._bar = None
        self._done = completed
        self._start_done = completed
        self._unit = unit
        self._started = time.monotonic()
        self._next = 0.0
        if not enabled or total == 0:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn(f"[bold]{label}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=transient,
        )
        self._task = self._bar.add_task(label, total=total, completed=completed, rate="", stats="")
        self._bar.start()

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self._started

    def update(self, *, completed: int | None = None, advance: int = 0, stats: str | Callable[[], str] | None = None,
               force: bool = False) -> None:
        """Set or advance the count and the stats text (or a function that makes it, called only on redraw)."""
        self._done = completed if completed is not None else self._done + advance
        if self._bar is None:
            return
        now = time.monotonic()
        if not force and now < self._next:
            return
        self._next = now + 0.2
        rate = (self._done - self._start_done) / max(now - self._started, 1e-9)
        fields: dict[str, str] = {"rate": f"{rate:,.0f} {self._unit}/s"}
        if stats is not None:
            fields["stats"] = stats() if callable(stats) else stats
        self._bar.update(self._task, completed=self._done, **fields)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=self._done)
            self._bar.stop()
            self._bar = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
