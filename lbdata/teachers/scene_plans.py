"""Plans of the scene teacher: for each figure family, the values to read off the figure (with the visual
evidence that pins each down and its plausible misreadings) and the calculation that gives the answer.

Sentences are phrase-bank slots (``prompts/scene/*.yaml``) picked by ``Words``. What the figure shows
is read through the typed records of ``lbdata.sources.synthetic.facts`` (the ones the grounding check
uses); what the question asks (``asked``, ``column``, ``unknown``, ``add``) from the scene itself.
Geometry reads the scene as stored: ``GeometryFacts`` holds lengths as floats (with the diagonals and
angles derived for grounding) while the prose states the given whole numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from lbdata.sources.synthetic.common import fmt_degrees, fmt_number, fmt_sqrt
from lbdata.sources.synthetic.facts import (
    BarChartFacts,
    CountedObject,
    CountingFacts,
    LinePlotFacts,
    PlotPoint,
    TableFacts,
)
from lbdata.teachers.scene_phrases import Words


@dataclass
class Reading:
    """One value read off the figure."""

    name: str  # how the text refers to it: "the Tue bar", "side AB"
    value: Any  # the true value (int or Fraction)
    read: str  # phrase key of the sentence that states it in a think
    evidence: list[str]  # phrase keys of the back's visual evidence for it
    fields: dict[str, Any]  # template fields besides name/shown
    misreads: list[Any]  # plausible wrong values
    show: Callable[[Any], str] = str  # how a value is written in prose
    notes: dict[Any, str] = field(default_factory=dict)  # wrong value -> why it was wrong (for the back)


@dataclass
class Plan:
    goal: str  # phrase key of the goal sentence
    goal_fields: dict[str, Any]
    readings: list[Reading]
    compute: Callable[[list[Any], Words], tuple[str, str]]  # values -> (answer, work sentence)
    focus: list[int]  # readings the next step depends on most (semantic back picks one)



def _pick(rng: Words, key: str, **fields: Any) -> str:
    return rng.pick(key, **fields)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _gridlines(k: int) -> str:
    return f"{k} gridline{'' if k == 1 else 's'}"


def _join_names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _bar_plan(kind: str, scene: dict) -> Plan:
    facts = BarChartFacts.from_scene(scene)
    vertical = facts.orientation == "vertical"
    step, top = facts.step, "top" if vertical else "end"
    bars = {b.label: b for b in facts.bars}
    asked = scene["asked"]

    def reading(label: str) -> Reading:
        b = bars[label]
        v = b.value
        misreads = [w for w in (v - step, v + step) if step <= w <= facts.axis_max]
        notes = {w: f"{w} would be one gridline {'lower' if w < v else 'higher'}" for w in misreads}
        ev = ["bar.evidence", "bar.evidence_printed"] if facts.show_values else ["bar.evidence"]
        return Reading(f"the {label} bar", v, "bar.read", ev,
                       {"label": label, "colour": b.colour, "top": top, "step": step, "gridlines": _gridlines(v // step),
                        "away": "up" if vertical else "out"}, misreads, notes=notes)

    readings = [reading(label) for label in asked]
    if kind == "difference":
        a, b = asked

        def compute(vals, rng):
            r = vals[0] - vals[1]
            if r <= 0:  # a misreading that flips the comparison is not a plausible first pass
                return "", ""
            return str(r), _pick(rng, "bar.work.difference", a=a, b=b, va=vals[0], vb=vals[1], result=r)

        return Plan("bar.goal.difference", {"a": a, "b": b}, readings, compute, [0, 1])
    if kind in ("sum", "total"):
        def compute(vals, rng):
            r = sum(vals)
            return str(r), _pick(rng, "bar.work.sum", terms=" + ".join(map(str, vals)), result=r)

        return Plan(f"bar.goal.{kind}", {"names": _join_names(asked)}, readings, compute, list(range(len(asked))))

    def compute_range(vals, rng):
        hi = max(range(len(vals)), key=lambda i: vals[i])
        lo = min(range(len(vals)), key=lambda i: vals[i])
        r = vals[hi] - vals[lo]
        return str(r), _pick(rng, "bar.work.range", vmax=vals[hi], vmin=vals[lo], lmax=asked[hi], lmin=asked[lo],
                             result=r)

    values = [bars[x].value for x in asked]
    extremes = [values.index(max(values)), values.index(min(values))]
    return Plan("bar.goal.range", {}, readings, compute_range, extremes)


def _geometry_plan(kind: str, scene: dict) -> Plan:
    if kind == "missing_angle":
        return _missing_angle_plan(scene)
    if kind in ("hypotenuse", "leg"):
        return _pythagoras_plan(kind, scene)
    return _area_perimeter_plan(kind, scene)


def _side(scene: dict, name: str) -> Reading:
    value = scene["sides"][name]["length"]
    unit = scene["unit"]
    misreads = [w for w in (value + 1, value - 1, value + 2) if w > 0]
    return Reading(f"side {name}", value, "geo.side.read", ["geo.side.evidence"],
                   {"side": name, "p": name[0], "q": name[1]}, misreads,
                   show=lambda x: f"{x} {unit}" if unit else str(x))


def _side_goal_fields(scene: dict) -> dict[str, Any]:
    asked = scene["asked"]
    return {"tri": "".join(scene["vertices"]), "r": scene["right_angle"], "h": scene["unknown"],
            "x": scene["unknown"], "l1": asked[0], "l2": asked[-1]}


def _missing_angle_plan(scene: dict) -> Plan:
    def angle(vertex: str) -> Reading:
        value = scene["angles"][vertex]["degrees"]
        return Reading(f"the angle at {vertex}", value, "geo.angle.read", ["geo.angle.evidence"], {"vertex": vertex},
                       [w for w in (value + 5, value - 5, value + 10) if w > 0], show=lambda x: f"{x}°")

    readings = [angle(x) for x in scene["asked"]]

    def compute(vals, rng):
        res = 180 - vals[0] - vals[1]
        if res <= 0:
            return "", ""
        work = rng.choice([
            f"So the angle at {scene['unknown']} is 180 - {vals[0]} - {vals[1]} = {res} degrees.",
            f"Subtracting from 180: 180 - {vals[0]} - {vals[1]} = {res}, so the third angle is {res}°.",
            f"The third angle is 180° - {vals[0]}° - {vals[1]}° = {res}°.",
            f"Since the three angles sum to 180, the missing one is 180 - {vals[0] + vals[1]} = {res} degrees.",
        ])
        return fmt_degrees(res), work

    tri = "".join(scene["vertices"])
    return Plan("geo.goal.missing_angle", {"tri": tri, "x": scene["unknown"]}, readings, compute, [0, 1])


def _pythagoras_plan(kind: str, scene: dict) -> Plan:
    asked = scene["asked"]
    readings = [_side(scene, x) for x in asked]
    goal_fields = _side_goal_fields(scene)
    if kind == "hypotenuse":
        h = scene["unknown"]

        def compute(vals, rng):
            s = vals[0] ** 2 + vals[1] ** 2
            ans = fmt_sqrt(s)
            tail = "" if ans == f"\\sqrt{{{s}}}" else f" = {ans}"
            work = rng.choice([
                f"By the Pythagorean theorem, {h}^2 = {vals[0]}^2 + {vals[1]}^2 = {vals[0] ** 2} + {vals[1] ** 2} = {s}, "
                f"so {h} = \\sqrt{{{s}}}{tail}.",
                f"{h} = \\sqrt{{{vals[0]}^2 + {vals[1]}^2}} = \\sqrt{{{s}}}{tail}.",
                f"Squaring the legs gives {vals[0] ** 2} and {vals[1] ** 2}, which sum to {s}; so {h} = \\sqrt{{{s}}}{tail}.",
                f"Pythagoras gives {h}^2 = {s}, hence {h} = \\sqrt{{{s}}}{tail}.",
            ])
            return ans, work

        return Plan("geo.goal.hypotenuse", goal_fields, readings, compute, [0, 1])
    # leg: the hypotenuse and one leg are given
    x = scene["unknown"]
    goal_fields["h"], goal_fields["l1"] = asked[0], asked[1]

    def compute(vals, rng):
        hyp, leg = vals
        s = hyp**2 - leg**2
        if s <= 0:
            return "", ""
        ans = fmt_sqrt(s)
        tail = "" if ans == f"\\sqrt{{{s}}}" else f" = {ans}"
        work = rng.choice([
            f"By the Pythagorean theorem, {x}^2 = {hyp}^2 - {leg}^2 = {hyp**2} - {leg**2} = {s}, "
            f"so {x} = \\sqrt{{{s}}}{tail}.",
            f"{x} = \\sqrt{{{hyp}^2 - {leg}^2}} = \\sqrt{{{s}}}{tail}.",
            f"The hypotenuse squared is {hyp**2} and the known leg squared is {leg**2}; their difference is {s}, "
            f"so {x} = \\sqrt{{{s}}}{tail}.",
            f"Pythagoras gives {x}^2 = {s}, hence {x} = \\sqrt{{{s}}}{tail}.",
        ])
        return ans, work

    return Plan("geo.goal.leg", goal_fields, readings, compute, [0, 1])


def _area_perimeter_plan(kind: str, scene: dict) -> Plan:
    readings = [_side(scene, x) for x in scene["asked"]]
    goal_fields = _side_goal_fields(scene)
    if kind == "right_area":
        def compute(vals, rng):
            prod = vals[0] * vals[1]
            ans = fmt_number(Fraction(prod, 2))
            work = rng.choice([
                f"The area is half the product of the legs: {vals[0]} × {vals[1]} / 2 = {prod}/2 = {ans}.",
                f"Area = (1/2) × {vals[0]} × {vals[1]} = {ans}.",
                f"Multiplying the legs gives {prod}, and half of that is {ans}.",
                f"Half of {vals[0]} times {vals[1]} is {prod}/2 = {ans}.",
            ])
            return ans, work

        return Plan("geo.goal.right_area", goal_fields, readings, compute, [0, 1])
    if kind == "perimeter":
        def compute(vals, rng):
            total = sum(vals)
            terms = " + ".join(map(str, vals))
            work = rng.choice([f"Adding the sides, {terms} = {total}.", f"The perimeter is {terms} = {total}.",
                               f"Summing the three sides gives {terms} = {total}.", f"{terms} = {total}."])
            return fmt_number(total), work

        return Plan("geo.goal.perimeter", goal_fields, readings, compute, [0, 1, 2])
    if kind == "rect_area":
        def compute(vals, rng):
            res = vals[0] * vals[1]
            work = rng.choice([f"The area is {vals[0]} × {vals[1]} = {res}.", f"Width times height: {vals[0]} × {vals[1]} = {res}.",
                               f"Multiplying the sides, {vals[0]} × {vals[1]} = {res}.", f"So the area is {vals[0]} times {vals[1]}, which is {res}."])
            return fmt_number(res), work

        return Plan("geo.goal.rect_area", goal_fields, readings, compute, [0, 1])

    def compute_perimeter(vals, rng):
        res = 2 * (vals[0] + vals[1])
        work = rng.choice([f"The perimeter is 2 × ({vals[0]} + {vals[1]}) = {res}.",
                           f"Each side appears twice: {vals[0]} + {vals[1]} + {vals[0]} + {vals[1]} = {res}.",
                           f"Twice the sum of the sides, 2 × {vals[0] + vals[1]} = {res}.",
                           f"So 2 × ({vals[0]} + {vals[1]}) = {res}."])
        return fmt_number(res), work

    return Plan("geo.goal.rect_perimeter", goal_fields, readings, compute_perimeter, [0, 1])


def _count_plan(kind: str, scene: dict) -> Plan:
    facts = CountingFacts.from_scene(scene)
    objects = facts.objects

    def select(**match: str) -> list[CountedObject]:
        return [o for o in objects if all(getattr(o, k) == val for k, val in match.items())]

    def category(one: str, many: str, members: list[CountedObject], **match: str) -> Reading:
        n = len(members)
        places = [f"the {o.region}" if match.get("size") else f"the {o.region} ({o.size})" for o in members]
        misreads = [w for w in (n - 1, n + 1) if w >= 0]
        notes = {n - 1: f"I had missed the {one} at the {members[-1].region}" if n else "",
                 n + 1: "I had counted one object too many"}
        key = "count.evidence_zero" if n == 0 else ("count.evidence_one" if n == 1 else "count.evidence")
        return Reading(f"the number of {many}", n, "count.read", [key],
                       {"cat_one": one, "cat_pl": many, "places": _join_names(places) if places else ""}, misreads,
                       notes={k: v for k, v in notes.items() if v})

    c, s = scene.get("colour"), scene.get("shape")
    goal_fields = {"colour": c, "shape": s, "shape_pl": f"{s}s" if s else "", "extra": scene.get("add"),
                   "size": scene.get("size"), "keep": "large" if scene.get("size") == "small" else "small"}
    if kind == "remove_shape_count_colour":
        others = [t for t in ("circle", "square", "triangle", "star") if t != s and select(colour=c, shape=t)]
        readings = [category(f"{c} {t}", f"{c} {t}s", select(colour=c, shape=t), colour=c, shape=t) for t in others]

        def compute(vals, rng):
            r = sum(vals)
            if len(vals) == 1:
                return str(r), _pick(rng, "count.work.one", result=r)
            return str(r), _pick(rng, "count.work.sum", terms=" + ".join(map(str, vals)), result=r)

        return Plan("count.goal.remove_shape_count_colour", goal_fields, readings, compute, list(range(len(readings))))
    if kind == "count_colour_shape":
        readings = [category(f"{c} {s}", f"{c} {s}s", select(colour=c, shape=s), colour=c, shape=s)]
        return Plan("count.goal.count_colour_shape", goal_fields, readings,
                    lambda vals, rng: (str(vals[0]), _pick(rng, "count.work.one", result=vals[0])), [0])
    if kind == "remove_colour_count_all":
        total = Reading("the total number of objects", len(objects), "count.read", ["count.evidence_rows"],
                        {"cat_one": "object", "cat_pl": "objects", "rows": _join_names([str(x) for x in facts.rows])},
                        [len(objects) - 1, len(objects) + 1],
                        notes={len(objects) - 1: "I had skipped one object", len(objects) + 1: "I had counted one twice"})
        part = category(f"{c} object", f"{c} objects", select(colour=c), colour=c)

        def compute(vals, rng):
            r = vals[0] - vals[1]
            return str(r), _pick(rng, "count.work.difference", total=vals[0], part=vals[1], result=r)

        return Plan("count.goal.remove_colour_count_all", goal_fields, [total, part], compute, [0, 1])
    if kind == "colour_or_shape":
        readings = [category(f"{c} object", f"{c} objects", select(colour=c), colour=c),
                    category(s, f"{s}s", select(shape=s), shape=s),
                    category(f"{c} {s}", f"{c} {s}s", select(colour=c, shape=s), colour=c, shape=s)]

        def compute(vals, rng):
            r = vals[0] + vals[1] - vals[2]
            if vals[2] > min(vals[0], vals[1]):
                return "", ""
            return str(r), _pick(rng, "count.work.union", a=vals[0], b=vals[1], both=vals[2], result=r)

        return Plan("count.goal.colour_or_shape", goal_fields, readings, compute, [0, 1, 2])
    if kind == "add_count_colour":
        readings = [category(f"{c} object", f"{c} objects", select(colour=c), colour=c)]
        extra = scene["add"]
        return Plan("count.goal.add_count_colour", goal_fields, readings,
                    lambda vals, rng: (str(vals[0] + extra),
                                       _pick(rng, "count.work.add", have=vals[0], extra=extra, result=vals[0] + extra)),
                    [0])
    keep = goal_fields["keep"]
    readings = [category(f"{keep} {s}", f"{keep} {s}s", select(shape=s, size=keep), shape=s, size=keep)]
    return Plan("count.goal.remove_size_count_shape", goal_fields, readings,
                lambda vals, rng: (str(vals[0]), _pick(rng, "count.work.one", result=vals[0])), [0])


def _plot_plan(kind: str, scene: dict) -> Plan:
    facts = LinePlotFacts.from_scene(scene)
    step = facts.step
    linear = facts.series == "linear"
    by_x = {p.x: p for p in facts.points}
    by_label = {p.label: p for p in facts.points}

    def at(p: PlotPoint) -> str:
        return f"x = {p.x}" if linear else p.label

    def reading(p: PlotPoint) -> Reading:
        y = p.y
        offsets = (step, -step, 2 * step, -2 * step) if kind == "argmax" else (step, -step)
        misreads = [y + d for d in offsets if facts.y_min <= y + d <= facts.y_max]
        notes = {w: f"{w} is {'the gridline just' if abs(w - y) == step else 'two gridlines'} "
                    f"{'below' if w < y else 'above'} it" for w in misreads}
        ev = ["plot.evidence", "plot.evidence_printed"] if facts.show_values else ["plot.evidence"]
        if y == 0:
            ev = ["plot.evidence_printed"] if facts.show_values else ["plot.evidence_zero"]
        return Reading(f"the point at {at(p)}", y, "plot.read", ev,
                       {"at": at(p), "gridlines": _gridlines(abs(y) // step), "step": step, "side": "above" if y > 0 else "below"},
                       misreads, notes=notes)

    points = [by_x[x] for x in scene["asked"]] if linear else [by_label[x] for x in scene["asked"]]
    readings = [reading(p) for p in points]
    goal_fields = {"at1": at(points[0]), "at2": at(points[-1])}
    if kind == "slope":
        x1, x2 = points[0].x, points[1].x

        def compute(vals, rng):
            rise, run = vals[1] - vals[0], x2 - x1
            res = fmt_number(Fraction(rise, run))
            y1 = f"({vals[0]})" if vals[0] < 0 else str(vals[0])
            return res, _pick(rng, "plot.work.slope", y1=y1, y2=vals[1], x1=x1, x2=x2, rise=rise, run=run, result=res)

        return Plan("plot.goal.slope", goal_fields, readings, compute, [0, 1])
    if kind in ("intercept", "value_at", "series_value"):
        return Plan(f"plot.goal.{kind}", goal_fields, readings,
                    lambda vals, rng: (fmt_number(vals[0]), _pick(rng, "plot.work.value", result=vals[0])), [0])
    if kind == "increase":
        def compute(vals, rng):
            r = vals[1] - vals[0]
            if r <= 0:
                return "", ""
            return str(r), _pick(rng, "plot.work.increase", va=vals[0], vb=vals[1], result=r)

        return Plan("plot.goal.increase", goal_fields, readings, compute, [0, 1])
    labels = [p.label for p in points]

    def compute_argmax(vals, rng):
        best = max(vals)
        if vals.count(best) > 1:
            return "", ""
        return labels[vals.index(best)], _pick(rng, "plot.work.argmax", vmax=best, result=labels[vals.index(best)])

    values = [p.y for p in points]
    ranked = sorted(range(len(values)), key=lambda i: -values[i])
    return Plan("plot.goal.argmax", goal_fields, readings, compute_argmax, ranked[:2])


def _table_plan(kind: str, scene: dict) -> Plan:
    facts = TableFacts.from_scene(scene)
    rows = facts.cells
    names = list(rows)
    col = scene["column"]

    def reading(row: str, column: str) -> Reading:
        v = rows[row][column]
        i = names.index(row)
        neighbours = [names[j] for j in (i + 1, i - 1) if 0 <= j < len(names) and rows[names[j]][column] != v]
        misreads = [rows[n][column] for n in neighbours]
        notes = {rows[n][column]: f"{rows[n][column]} is the entry in the {n} row" for n in neighbours}
        if v >= 10:  # a misread tens digit
            for w in (v + 10, v - 10):
                if 0 < w < 100 and w not in notes:
                    misreads.append(w)
                    notes[w] = f"the tens digit of that cell is {v // 10}, not {w // 10}"
        return Reading(f"the {column} value of {row}", v, "table.read", ["table.evidence"],
                       {"row": row, "col": column}, misreads, notes=notes)

    asked = scene["asked"]
    if kind == "row_total":
        row = asked[0]
        readings = [reading(row, c) for c in facts.columns]

        def compute(vals, rng):
            r = sum(vals)
            return str(r), _pick(rng, "bar.work.sum", terms=" + ".join(map(str, vals)), result=r)

        return Plan("table.goal.row_total", {"a": row}, readings, compute, list(range(len(readings))))
    readings = [reading(r, col) for r in asked]
    if kind in ("largest", "smallest"):
        word = "largest" if kind == "largest" else "smallest"

        def compute(vals, rng):
            best = max(vals) if kind == "largest" else min(vals)
            if vals.count(best) > 1:
                return "", ""
            winner = asked[vals.index(best)]
            return winner, _pick(rng, "table.work.extreme", values=_join_names([str(v) for v in vals]), word=word,
                                 vbest=best, result=winner)

        values = [rows[r][col] for r in asked]
        ranked = sorted(range(len(values)), key=lambda i: -values[i] if kind == "largest" else values[i])
        return Plan(f"table.goal.{kind}", {"col": col}, readings, compute, ranked[:2])
    if kind == "column_total":
        def compute(vals, rng):
            r = sum(vals)
            return str(r), _pick(rng, "bar.work.sum", terms=" + ".join(map(str, vals)), result=r)

        return Plan("table.goal.column_total", {"col": col}, readings, compute, list(range(len(readings))))
    a, b = asked

    def compute_diff(vals, rng):
        r = vals[0] - vals[1]
        if r <= 0:
            return "", ""
        return str(r), _pick(rng, "bar.work.difference", a=a, b=b, va=vals[0], vb=vals[1], result=r)

    return Plan("table.goal.difference", {"col": col, "a": a, "b": b}, readings, compute_diff, [0, 1])


PLANNERS: dict[str, Callable[[str, dict], Plan]] = {
    "bar_chart": _bar_plan,
    "geometry": _geometry_plan,
    "counting": _count_plan,
    "line_plot": _plot_plan,
    "table": _table_plan,
}
