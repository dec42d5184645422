"""Typed scene facts: what each synthetic figure shows, by name, for checks that read a trace against it.

A synthetic problem stores its scene as JSON in ``problem.meta["scene"]`` (so it survives the ledger
and corpora); ``scene_facts(meta)`` reads it into one typed record per family:

- ``BarChartFacts`` — bars (label, value, colour), the gridline step and the axis maximum;
- ``GeometryFacts`` — every side length (the unknown and the diagonals computed), every angle that is
  a known number, the right angle's vertex;
- ``CountingFacts`` — the objects (shape, colour, size) and counts over any mix of those;
- ``LinePlotFacts`` — the plotted points (x, label, y) and the gridline step;
- ``TableFacts`` — rows, columns and cells.

Every record names its parts the way a text does (``names()``): a token sequence ("Mon", "side AB",
"x = 3", "red circles", "Week 1") maps to a *slot* and a key, and ``allowed(bound)`` gives the values
a number bound to those keys may take (``None`` when the facts cannot say). The grounding check in
``lbdata.validate.grounding`` reads only these two methods, ``step`` and ``colour_of``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any, Protocol

Names = dict[tuple[str, ...], tuple[str, Any, int]]
"""Token sequence -> (slot, key, specificity); a more specific name shadows a generic one."""

COUNT_SHAPES = ("circle", "square", "triangle", "star")
COUNT_COLOURS = ("red", "blue", "green", "yellow", "purple", "orange")
COUNT_SIZES = ("small", "large")


class SceneFacts(Protocol):
    family: str
    step: int | None

    def names(self) -> Names: ...

    @property
    def name_table(self) -> tuple[Names, dict[str, tuple[int, ...]]]: ...

    def allowed(self, bound: dict[str, Any]) -> set[float] | None: ...

    def colour_of(self, key: Any) -> str | None: ...

    def sequence(self, bound: dict[str, Any]) -> tuple[float, ...] | None: ...


def name_token(text: str) -> str:
    """How a name's token is compared: labels of up to three capitals (``AB``, ``B``) as written, the rest
    lower-cased ("Mon" and "mon" are one name, "A" the vertex is not "a")."""
    return text if text.isupper() and len(text) <= 3 else text.lower()


class _Named:
    """``name_table``: ``names()`` with every token through ``name_token``, and for each first token the
    lengths of the names that start with it, longest first (computed once per record)."""

    def names(self) -> Names:
        raise NotImplementedError

    def sequence(self, bound: dict[str, Any]) -> tuple[float, ...] | None:
        """The numbers a list of numbers bound to ``bound`` must be, in order (None: lists are not checked)."""
        return None

    @cached_property
    def name_table(self) -> tuple[Names, dict[str, tuple[int, ...]]]:
        return _build_table(self.names())


def _build_table(names: Names) -> tuple[Names, dict[str, tuple[int, ...]]]:
    table = {tuple(name_token(t) for t in k): v for k, v in names.items()}
    lengths: dict[str, set[int]] = {}
    for k in table:
        lengths.setdefault(k[0], set()).add(len(k))
    return table, {first: tuple(sorted(ns, reverse=True)) for first, ns in lengths.items()}


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    colour: str


@dataclass(frozen=True)
class BarChartFacts(_Named):
    bars: tuple[Bar, ...]
    step: int | None
    axis_max: int
    orientation: str
    family: str = "bar_chart"
    show_values: bool = False  # each bar's value is printed on it

    @classmethod
    def from_scene(cls, scene: dict) -> BarChartFacts:
        bars = tuple(Bar(str(b["label"]), int(b["value"]), str(b["colour"])) for b in scene["bars"])
        return cls(bars, int(scene["step"]), int(scene["axis_max"]), str(scene["orientation"]),
                   show_values=bool(scene.get("show_values", False)))

    def names(self) -> Names:
        return {tuple(b.label.split()): ("entity", b.label, 1) for b in self.bars}

    def allowed(self, bound: dict[str, Any]) -> set[float] | None:
        key = bound.get("entity")
        bar = next((b for b in self.bars if b.label == key), None)
        return {float(bar.value)} if bar is not None else None

    def colour_of(self, key: Any) -> str | None:
        return next((b.colour for b in self.bars if b.label == key), None)


@dataclass(frozen=True)
class GeometryFacts(_Named):
    shape: str
    vertices: tuple[str, ...]
    sides: dict[str, float]  # "AB" -> length, every side and diagonal the facts fix
    angles: dict[str, float]  # "B" -> degrees, every angle the facts fix
    right_angle: str | None
    unit: str
    step: int | None = None
    family: str = "geometry"

    @classmethod
    def from_scene(cls, scene: dict) -> GeometryFacts:
        v = [str(x) for x in scene["vertices"]]
        known = {k: float(s["length"]) for k, s in scene["sides"].items() if s.get("length") is not None}
        sides: dict[str, float] = {}
        angles: dict[str, float] = {
            k: float(a["degrees"]) for k, a in scene["angles"].items() if a.get("degrees") is not None
        }

        def side(p: str, q: str) -> float | None:
            return known.get(p + q, known.get(q + p))

        if scene["shape"] == "rectangle":
            w = next((x for k, x in known.items() if {k[0], k[1]} in ({v[0], v[1]}, {v[3], v[2]})), None)
            h = next((x for k, x in known.items() if {k[0], k[1]} in ({v[1], v[2]}, {v[0], v[3]})), None)
            if w is not None and h is not None:
                sides = {
                    v[0] + v[1]: w,
                    v[3] + v[2]: w,
                    v[1] + v[2]: h,
                    v[0] + v[3]: h,
                    v[0] + v[2]: math.hypot(w, h),
                    v[1] + v[3]: math.hypot(w, h),
                }
            angles = dict.fromkeys(v, 90.0)
        elif len(angles) == 2 and len(v) == 3:  # two marked angles fix the third
            missing = next(x for x in v if x not in angles)
            angles[missing] = 180.0 - sum(angles.values())
        else:
            a, b, c = side(v[1], v[2]), side(v[0], v[2]), side(v[0], v[1])  # opposite v0, v1, v2
            if scene.get("right_angle"):
                r = v.index(scene["right_angle"])
                abc = [a, b, c]
                legs = [x for i, x in enumerate(abc) if i != r]
                if abc[r] is None and None not in legs:
                    abc[r] = math.hypot(*legs)  # type: ignore[arg-type]
                elif abc[r] is not None and legs.count(None) == 1:
                    known_leg = next(x for x in legs if x is not None)
                    missing = next(i for i, x in enumerate(abc) if x is None)
                    abc[missing] = math.sqrt(max(abc[r] ** 2 - known_leg**2, 0.0))  # type: ignore[operator]
                a, b, c = abc
            if None not in (a, b, c):
                sides = {v[1] + v[2]: a, v[0] + v[2]: b, v[0] + v[1]: c}  # type: ignore[dict-item]
                angles = {}
                for i, (opp, s1, s2) in enumerate(((a, b, c), (b, a, c), (c, a, b))):
                    cos = (s1 * s1 + s2 * s2 - opp * opp) / (2 * s1 * s2)  # type: ignore[operator]
                    angles[v[i]] = math.degrees(math.acos(max(-1.0, min(1.0, cos))))
        return cls(
            str(scene["shape"]), tuple(v), sides, angles, scene.get("right_angle"), str(scene.get("unit", ""))
        )

    def names(self) -> Names:
        return _geometry_table(self.vertices, tuple(self.sides))[0]

    @cached_property
    def name_table(self) -> tuple[Names, dict[str, tuple[int, ...]]]:
        return _geometry_table(self.vertices, tuple(self.sides))

    def allowed(self, bound: dict[str, Any]) -> set[float] | None:
        key = bound.get("entity")
        if not key:
            return None
        kind, name = key
        value = self.sides.get(name) if kind == "side" else self.angles.get(name)
        return {value} if value is not None else None

    def colour_of(self, key: Any) -> str | None:
        return None


@lru_cache(maxsize=512)
def _geometry_table(
    vertices: tuple[str, ...], sides: tuple[str, ...]
) -> tuple[Names, dict[str, tuple[int, ...]]]:
    """Names of sides ("AB", "from A to B", "joining A and B") and angles ("angle at B", "vertex B", "∠B")."""
    out: Names = {}
    for s in sides:
        p, q = s[0], s[1]
        for form in (
            (p + q,),
            (q + p,),
            ("segment", p + q),
            ("segment", q + p),
            ("from", p, "to", q),
            ("from", q, "to", p),
            ("vertices", p, "and", q),
            ("vertices", q, "and", p),
            ("joining", p, "and", q),
            ("joining", q, "and", p),
        ):
            out[form] = ("entity", ("side", s), 2)
    for x in vertices:
        for form in (
            ("angle", x),
            ("angle", "at", x),
            ("∠", x),
            ("vertex", x),
            ("at", "vertex", x),
            ("angle", "at", "vertex", x),
            ("corner", "at", x),
            ("mark", "at", x),
            ("arc", "at", x),
            ("角", x),
            (x, "角"),
            (x, "处", "的", "角"),
        ):
            out[form] = ("entity", ("angle", x), 2)
        out[("at", x)] = ("entity", ("angle", x), 1)  # "the right angle is at B (90°)"
    return _build_table(out)


@dataclass(frozen=True)
class CountedObject:
    shape: str
    colour: str
    size: str
    region: str = ""  # where it lies in the picture, in words ("top left")
    row: int = 0  # its row of the layout grid, from the top


@dataclass(frozen=True)
class CountingFacts(_Named):
    objects: tuple[CountedObject, ...]
    rows: tuple[int, ...] = ()  # objects per non-empty row of the layout grid, top to bottom
    step: int | None = None
    family: str = "counting"

    @classmethod
    def from_scene(cls, scene: dict) -> CountingFacts:
        objects = tuple(
            CountedObject(str(o["shape"]), str(o["colour"]), str(o["size"]), str(o.get("region", "")), int(o["row"]))
            for o in scene["objects"]
        )
        per_row = [sum(1 for o in scene["objects"] if o["row"] == r) for r in range(int(scene["rows"]))]
        return cls(objects, tuple(n for n in per_row if n))

    def count(self, **match: str) -> int:
        return sum(all(getattr(o, k) == v for k, v in match.items()) for o in self.objects)

    def names(self) -> Names:
        return _counting_table()[0]

    @property
    def name_table(self) -> tuple[Names, dict[str, tuple[int, ...]]]:
        return _counting_table()

    def sequence(self, bound: dict[str, Any]) -> tuple[float, ...] | None:
        """The numbers a list bound to ``bound`` must be: the objects per row, top to bottom."""
        return tuple(float(n) for n in self.rows) if bound.get("rows") else None

    def allowed(self, bound: dict[str, Any]) -> set[float] | None:
        key = bound.get("entity")
        if key is None:
            return None
        return {float(self.count(**dict(key)))}

    def colour_of(self, key: Any) -> str | None:
        return None


@lru_cache(maxsize=1)
def _counting_table() -> tuple[Names, dict[str, tuple[int, ...]]]:
    """Names of counted categories ("red circles", "small squares", "blue objects", "stars", "objects")."""
    out: Names = {}
    for noun in ("objects", "object", "shapes", "shape"):
        out[(noun,)] = ("entity", (), 0)
    for s in COUNT_SHAPES:
        for form in (s, s + "s"):
            out[(form,)] = ("entity", (("shape", s),), 1)
            for c in COUNT_COLOURS:
                out[(c, form)] = ("entity", (("colour", c), ("shape", s)), 2)
            for z in COUNT_SIZES:
                out[(z, form)] = ("entity", (("shape", s), ("size", z)), 2)
    for c in COUNT_COLOURS:
        for noun in ("objects", "object", "shapes", "shape", "ones", "one"):
            out[(c, noun)] = ("entity", (("colour", c),), 2)
    for form in (("row", "by", "row"), ("rows",), ("rows", "of")):
        out[form] = ("rows", "top_to_bottom", 1)
    return _build_table(out)


@dataclass(frozen=True)
class PlotPoint:
    x: int
    label: str
    y: int


@dataclass(frozen=True)
class LinePlotFacts(_Named):
    series: str  # "linear" or "data"
    points: tuple[PlotPoint, ...]
    step: int | None
    y_min: int
    y_max: int
    family: str = "line_plot"
    show_values: bool = False  # each point's value is printed next to it

    @classmethod
    def from_scene(cls, scene: dict) -> LinePlotFacts:
        points = tuple(PlotPoint(int(p["x"]), str(p["label"]), int(p["y"])) for p in scene["points"])
        return cls(str(scene["series"]), points, int(scene["step"]), int(scene["y_min"]), int(scene["y_max"]),
                   show_values=bool(scene.get("show_values", False)))

    def names(self) -> Names:
        out: Names = {}
        for p in self.points:
            if self.series == "linear":
                for form in (("x", "=", str(p.x)), ("x", str(p.x)), ("x=" + str(p.x),)):
                    out[form] = ("entity", p.x, 2)
            else:
                out[tuple(p.label.split())] = ("entity", p.x, 1)
        return out

    def allowed(self, bound: dict[str, Any]) -> set[float] | None:
        key = bound.get("entity")
        point = next((p for p in self.points if p.x == key), None)
        return {float(point.y)} if point is not None else None

    def colour_of(self, key: Any) -> str | None:
        return None


@dataclass(frozen=True)
class TableFacts(_Named):
    columns: tuple[str, ...]
    cells: dict[str, dict[str, int]] = field(default_factory=dict)  # row -> column -> value
    step: int | None = None
    family: str = "table"

    @classmethod
    def from_scene(cls, scene: dict) -> TableFacts:
        cols = tuple(str(c) for c in scene["columns"])
        cells = {str(r["name"]): {c: int(r[c]) for c in cols} for r in scene["rows"]}
        return cls(cols, cells)

    def names(self) -> Names:
        out: Names = {tuple(r.split()): ("row", r, 1) for r in self.cells}
        out.update({tuple(c.split()): ("col", c, 1) for c in self.columns})
        return out

    def allowed(self, bound: dict[str, Any]) -> set[float] | None:
        row, col = bound.get("row"), bound.get("col")
        if row in self.cells and col in self.columns:
            return {float(self.cells[row][col])}
        if row in self.cells:
            return {float(v) for v in self.cells[row].values()}
        if col in self.columns:
            return {float(r[col]) for r in self.cells.values()}
        return None

    def colour_of(self, key: Any) -> str | None:
        return None


READERS = {
    "bar_chart": BarChartFacts.from_scene,
    "geometry": GeometryFacts.from_scene,
    "counting": CountingFacts.from_scene,
    "line_plot": LinePlotFacts.from_scene,
    "table": TableFacts.from_scene,
}


def figure_scene(meta: dict | None) -> tuple[str | None, dict | None]:
    """The family and scene of the figure a synthetic problem shows: a multiple-choice problem's base
    figure, ``(None, None)`` for any other source."""
    if not meta or not isinstance(meta.get("scene"), dict):
        return None, None
    family, scene = meta.get("family"), meta["scene"]
    if family == "multiple_choice":
        family, scene = scene.get("base_family"), scene.get("base")
    return family, scene


def scene_facts(meta: dict | None) -> SceneFacts | None:
    """The typed facts of a synthetic problem from its ``meta`` (``None`` for any other source)."""
    family, scene = figure_scene(meta)
    reader = READERS.get(family)  # type: ignore[arg-type]
    if reader is None or not isinstance(scene, dict):
        return None
    try:
        return reader(scene)
    except (AttributeError, KeyError, TypeError, ValueError, IndexError):
        return None  # a scene from another generator version: nothing to check against


__all__ = [
    "Bar",
    "BarChartFacts",
    "CountedObject",
    "CountingFacts",
    "GeometryFacts",
    "LinePlotFacts",
    "PlotPoint",
    "SceneFacts",
    "TableFacts",
    "figure_scene",
    "scene_facts",
]
