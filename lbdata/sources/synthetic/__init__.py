"""The synthetic source: Pillow-drawn problems with exact answers and the scene facts behind them.

Families (``synthetic:<family>[,<family>…]`` picks some):

- ``bar_chart`` — read bars off gridlines and combine them (difference, sum, largest − smallest, total);
- ``geometry`` — right triangles, triangles and rectangles with labelled lengths or angles (hypotenuse,
  missing leg, area, perimeter, missing angle), exact answers such as ``13``, ``12\\sqrt{2}``, ``35^\\circ``;
- ``counting`` — coloured shapes with distractors and an operation ("remove all squares; how many red
  objects are left?");
- ``line_plot`` — a line y = mx + c (slope, intercept, value at x) or a data series (value, increase, maximum);
- ``table`` — a table of numbers (largest or smallest row, column or row total, difference of cells);
- ``multiple_choice`` — any of the above with options A–D; the gold answer is the letter.

Item ``index`` of seed ``s`` has the id ``synthetic:<s>-<index>`` and is drawn from its own
``random.Random(f"{s}-{index}")``, so it is the same problem with the same image bytes in any
process, whichever other items are drawn. Families take turns by index; choosing families only
skips the indices of the others, so an id always names the same problem.

That is how the scene facts reach a trainer's reward: a corpus row carries no ``meta``, so
``recover_meta`` draws a synthetic item again from its id and keeps its meta only when the figure
comes out byte for byte as the row's image (another generator version gives ``None``, never facts
of another figure); ``meta_column`` is the JSON text a dataset column holds.
"""

from __future__ import annotations

import itertools
import json
import random
import re
from collections.abc import Callable, Iterator
from typing import Any

from lbdata.errors import UsageError
from lbdata.hashing import sha256_bytes
from lbdata.records import ImageRef, Problem
from lbdata.sources.base import SourceRow
from lbdata.sources.synthetic import bar_chart, counting, geometry, line_plot, multiple_choice, table
from lbdata.sources.synthetic.common import GENERATOR_VERSION, Item

FAMILIES: dict[str, Callable[[random.Random], Item]] = {
    "bar_chart": bar_chart.generate,
    "geometry": geometry.generate,
    "counting": counting.generate,
    "line_plot": line_plot.generate,
    "table": table.generate,
    "multiple_choice": multiple_choice.generate,
}


def family_of(index: int) -> str:
    """The family of item ``index`` (families take turns)."""
    names = list(FAMILIES)
    return names[index % len(names)]


class SyntheticSource:
    """An endless, deterministic stream of synthetic problems (the caller applies a limit)."""

    name = "synthetic"

    def __init__(self, seed: int = 0, families: list[str] | None = None, **options: Any):
        if options:
            raise UsageError(
                f"the synthetic source takes no option {', '.join(sorted(options))}; "
                "choose families with --source synthetic:<family>,<family> and the seed with --seed"
            )
        chosen = [f.strip() for f in families or [] if f.strip()] or list(FAMILIES)
        unknown = [f for f in chosen if f not in FAMILIES]
        if unknown:
            raise UsageError(
                f"unknown synthetic famil{'y' if len(unknown) == 1 else 'ies'} {', '.join(map(repr, unknown))}; "
                f"valid families: {', '.join(FAMILIES)}"
            )
        self.seed = int(seed)
        self.families = [f for f in FAMILIES if f in chosen]

    def describe(self) -> dict[str, Any]:
        return {"kind": "synthetic", "seed": self.seed, "families": list(self.families),
                "generator": GENERATOR_VERSION}

    def indices(self) -> Iterator[int]:
        """The item indices this source yields, in order (those of the chosen families)."""
        for index in itertools.count():
            if family_of(index) in self.families:
                yield index

    def __iter__(self) -> Iterator[SourceRow]:
        for index in self.indices():
            yield self.row(index)

    def row(self, index: int) -> SourceRow:
        """Item ``index`` (random access; the same item ``__iter__`` yields for that index)."""
        family = family_of(index)
        if family not in self.families:
            raise UsageError(f"item {index} is a {family} problem, not one of {', '.join(self.families)}; "
                             "use indices() to list the indices of the chosen families")
        item = FAMILIES[family](random.Random(f"{self.seed}-{index}"))
        png = item.canvas.png()
        # the same ImageRef that sources.base.image_ref would give, without decoding the PNG again
        ref = ImageRef(sha256=sha256_bytes(png), ext="png", width=item.canvas.width, height=item.canvas.height)
        problem = Problem(
            id=f"synthetic:{self.seed}-{index}",
            images=[ref],
            question=item.question,
            answer=item.answer,
            choices=list(item.scene["choices"]) if family == "multiple_choice" else None,
            source=self.name,
            meta={"family": family, "kind": item.kind, "scene": item.scene},
        )
        return SourceRow(problem=problem, images=[png])


_ITEM_ID = re.compile(r"synthetic:(-?\d+)-(\d+)")


def recover_meta(problem_id: str, image: bytes | None) -> dict[str, Any] | None:
    """The meta of synthetic problem ``problem_id`` when drawing it again gives ``image`` byte for byte;
    None for another source's problem or a figure this generator version does not draw (about 7 ms each)."""
    match = _ITEM_ID.fullmatch(problem_id)
    if match is None or image is None:
        return None
    row = SyntheticSource(int(match[1])).row(int(match[2]))
    return row.problem.meta if row.images[0] == image else None


def meta_column(meta: dict[str, Any] | None) -> str | None:
    """A problem's meta as the JSON text of a dataset column (datasets need one type per column); None when empty."""
    return json.dumps(meta, sort_keys=True, separators=(",", ":")) if meta else None


__all__ = ["FAMILIES", "GENERATOR_VERSION", "SyntheticSource", "family_of", "meta_column", "recover_meta"]
