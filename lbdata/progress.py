"""One progress bar for every long loop: rich, on stderr, with count, rate, ETA and a stats text.

Library code creates ``ProgressBar(label, total, enabled=...)``; when disabled it does nothing, so
callers never branch on whether progress is shown.

The first line holds what must always show — label, bar, done/total, elapsed, ETA, rate — and never
wraps: the bar gives up its width first. The stats text (failures, spend, request rates) goes on a
second line, cut with an ellipsis at the terminal's width, so a long stats text from an HTTP teacher
can never push the count or the ETA off an 80-column terminal.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any


def _progress_class():
    from rich.progress import Progress
    from rich.text import Text

    class _TwoLineProgress(Progress):
        """Rich progress whose per-task stats text is a second line, not a column."""

        def get_renderables(self) -> Iterable[Any]:
            yield self.make_tasks_table(self.tasks)
            for task in self.tasks:
                stats = task.fields.get("stats")
                if stats:
                    yield Text("  " + stats, no_wrap=True, overflow="ellipsis")

    return _TwoLineProgress


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
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.table import Column

        def keep() -> Column:
            return Column(no_wrap=True)

        self._bar = _progress_class()(
            TextColumn(f"[bold]{label}", table_column=keep()),
            BarColumn(bar_width=None),
            MofNCompleteColumn(table_column=keep()),
            TimeElapsedColumn(table_column=keep()),
            TextColumn("eta", table_column=keep()),
            TimeRemainingColumn(table_column=keep()),
            TextColumn("{task.fields[rate]}", table_column=keep()),
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
        fields: dict[str, str] = {"rate": f"{rate:,.{1 if rate < 10 else 0}f} {self._unit}/s"}
        if stats is not None:
            fields["stats"] = stats() if callable(stats) else stats
        self._bar.update(self._task, completed=self._done, **fields)

    def render_text(self, width: int = 80) -> str:
        """The bar as plain text at ``width`` columns, as a terminal of that width shows it ("" when disabled)."""
        if self._bar is None:
            return ""
        import io

        from rich.console import Console, Group

        console = Console(width=width, file=io.StringIO(), force_terminal=True, color_system=None, record=True)
        console.print(Group(*self._bar.get_renderables()))
        return console.export_text()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=self._done)
            self._bar.stop()
            self._bar = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
