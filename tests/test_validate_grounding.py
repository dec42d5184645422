"""Backs checked against the synthetic scene facts: wrong values, names, counts and colours are caught;
corrections, relative numbers and the scene teacher's own traces are not flagged."""

from __future__ import annotations

import re
from itertools import islice

import pytest

from lbdata.sources.synthetic import SyntheticSource
from lbdata.sources.synthetic.facts import (
    BarChartFacts,
    CountingFacts,
    GeometryFacts,
    LinePlotFacts,
    TableFacts,
    figure_scene,
    scene_facts,
)
from lbdata.teachers.scene import write_trace
from lbdata.validate import format_ok, parse_trace, validate_trace
from lbdata.validate.grounding import figure_contradictions

BARS = BarChartFacts.from_scene(
    {
        "step": 10,
        "axis_max": 80,
        "orientation": "vertical",
        "bars": [
            {"label": "Mon", "value": 40, "colour": "red"},
            {"label": "Tue", "value": 20, "colour": "blue"},
            {"label": "Week 3", "value": 70, "colour": "green"},
        ],
    }
)
RIGHT = GeometryFacts.from_scene(
    {
        "shape": "triangle",
        "vertices": ["A", "B", "C"],
        "right_angle": "B",
        "unit": "cm",
        "angles": {},
        "sides": {
            "AB": {"length": 6, "label": "6 cm"},
            "BC": {"length": 8, "label": "8 cm"},
            "AC": {"length": None, "label": "x"},
        },
    }
)
ANGLES = GeometryFacts.from_scene(
    {
        "shape": "triangle",
        "vertices": ["P", "Q", "R"],
        "right_angle": None,
        "unit": "",
        "sides": {},
        "angles": {
            "P": {"degrees": 50, "label": "50°"},
            "Q": {"degrees": 60, "label": "60°"},
            "R": {"degrees": None, "label": "x"},
        },
    }
)
RECT = GeometryFacts.from_scene(
    {
        "shape": "rectangle",
        "vertices": ["A", "B", "C", "D"],
        "right_angle": None,
        "unit": "",
        "angles": {},
        "sides": {"AB": {"length": 5, "label": "5"}, "BC": {"length": 3, "label": "3"}},
    }
)
OBJECTS = [
    ("circle", "red", "small", 0),
    ("circle", "red", "large", 0),
    ("square", "red", "small", 1),
    ("circle", "blue", "large", 1),
    ("star", "green", "small", 3),
]
COUNTS = CountingFacts.from_scene(
    {
        "rows": 5,
        "objects": [{"shape": s, "colour": c, "size": z, "row": r} for s, c, z, r in OBJECTS],
    }
)
LINE = LinePlotFacts.from_scene(
    {
        "series": "linear",
        "step": 2,
        "y_min": -4,
        "y_max": 12,
        "points": [{"x": x, "label": str(x), "y": 2 * x - 2} for x in range(6)],
    }
)
SERIES = LinePlotFacts.from_scene(
    {
        "series": "data",
        "step": 5,
        "y_min": 0,
        "y_max": 40,
        "points": [
            {"x": i, "label": lab, "y": y}
            for i, (lab, y) in enumerate([("Jan", 10), ("Feb", 25), ("2019", 15)])
        ],
    }
)
TABLE = TableFacts.from_scene(
    {
        "columns": ["Math", "Game 2"],
        "rows": [{"name": "Ana", "Math": 42, "Game 2": 7}, {"name": "Ben", "Math": 37, "Game 2": 9}],
    }
)

# (facts, back, contradicted?)
CASES = [
    (BARS, "Looking again, the Mon bar ends exactly on the 40 gridline.", False),
    (BARS, "Looking again, the Mon bar ends exactly on the 90 gridline.", True),
    (BARS, "Looking again, the Tue bar ends exactly on the 40 gridline.", True),  # the wrong bar named
    (BARS, "The Mon bar ends 4 gridlines up, and with gridlines every 10 that is 40.", False),
    (BARS, "The Mon bar ends 5 gridlines up from zero.", True),  # 5 × 10 is not 40
    (BARS, "Gridlines come every 10, so the Mon bar at the 40 line is right.", False),
    (BARS, "Gridlines come every 5, so the Mon bar at the 40 line is right.", True),  # the step is 10
    (BARS, "The Mon bar is at 40, with gridlines every 5.", True),  # the step is 10
    (BARS, "The red Mon bar reaches 40.", False),
    (BARS, "The blue Mon bar reaches 40.", True),  # wrong colour
    (BARS, "The green bar for Week 3 reaches 70.", False),  # a label with a digit is a name, not a number
    (BARS, "It is 40, not the 30 I wrote above, for the Mon bar.", False),  # a rejected value
    (BARS, "The Mon bar is 40; my 30 was a misreading, rather than 50 it is 40.", False),
    (BARS, "The Mon bar is 20 more than the Tue bar.", False),  # relative
    (BARS, "The Mon bar minus the Tue bar is 40 - 20 = 20.", False),  # arithmetic
    (BARS, "The Mon bar is taller than the Tue bar at 20.", False),  # 20 belongs to Tue
    (BARS, "The Mon bar is taller than the Tue bar at 40.", True),
    (BARS, "The Mon bar reaches 40 and the Tue bar 20, so the difference is 20.", False),  # computed
    (BARS, "The Mon bar reaches 40 and the Tue bar 20, so the difference is 25.", False),
    (BARS, "The Mon bar (40) minus the Tue bar (20) gives 20.", False),
    (BARS, "The Mon bar at 40 and the Tue bar at 20 make a total of 60.", False),
    (BARS, "The Mon bar at 40 and the Tue bar at 20: 40 - 20 = 20.", False),
    (BARS, "The Mon bar (45) is taller than the Tue bar (20).", True),
    (BARS, "回看图片，Mon柱的顶端与40的网格线对齐。", False),
    (BARS, "回看图片，Mon柱的顶端与60的网格线对齐。", True),
    (BARS, "回看图片，Mon柱是40，不是30。", False),
    (RIGHT, "In the figure side AB is labelled 6 cm and BC is labelled 8 cm.", False),
    (RIGHT, "In the figure side AB is labelled 8 cm.", True),
    (RIGHT, "The edge from B to C carries the label 6.", True),
    (RIGHT, "Next to the segment joining A and B the label reads 6.", False),
    (RIGHT, "The hypotenuse AC is 10 and the right angle is at B (90°).", False),
    (RIGHT, "The hypotenuse AC is 11.", True),
    (RIGHT, "The angle at vertex A is about 53 degrees.", False),  # approximate: not checked
    (RIGHT, "The angle at vertex A is 53.13 degrees.", False),  # atan(8/6), at the written precision
    (RIGHT, "The angle at vertex A is 60 degrees.", True),
    (ANGLES, "The arc drawn at vertex P is labelled 50°.", False),
    (ANGLES, "The arc drawn at vertex Q is labelled 50°.", True),
    (ANGLES, "The third angle, at R, must be 70°; angle R is 70.", False),
    (RECT, "Side CD is 5 and side AD is 3, as in the figure.", False),
    (RECT, "Side CD is 3 in the figure.", True),
    (COUNTS, "I count 3 red objects: 2 red circles and 1 red square.", False),
    (COUNTS, "I count 2 red circles in the figure.", False),
    (COUNTS, "I count 3 red circles in the figure.", True),
    (COUNTS, "There is exactly 1 blue circle, at the left.", False),
    (COUNTS, "The image contains zero green circles.", False),
    (COUNTS, "The image contains zero green stars.", True),
    (COUNTS, "Row by row from the top the picture holds 2, 2, 1 objects, 5 in total.", False),
    (COUNTS, "Row by row from the top the picture holds 2, 3, 1 objects, 5 in total.", True),
    (COUNTS, "The large circles are at the top and the left, which makes 2.", False),
    (COUNTS, "The red circles are at the top and the left, which makes 3.", True),  # "makes" after a name
    (COUNTS, "Taking the rows from the top down, the objects number 2, 2 and 1, 6 altogether.", True),
    (LINE, "The marker at x = 3 lies on the gridline labelled 4.", False),
    (LINE, "The marker at x = 3 lies on the gridline labelled 6.", True),
    (LINE, "The dot at x = 0 is 1 gridline below zero, with gridlines 2 apart, which is -2.", False),
    (LINE, "The dot at x = 0 is 2 gridlines below zero, which is -2.", True),
    (SERIES, "The point at Feb sits on the 25 gridline and the 2019 point on the 15 line.", False),
    (SERIES, "The point at 2019 sits on the 25 gridline.", True),
    (TABLE, "The cell where the Ana row meets the Math column holds 42.", False),
    (TABLE, "Under the Math header, the entry beside Ben is 42.", True),
    (TABLE, "The Game 2 cell of the Ben row shows 9, and 42 is the entry in the Ana row.", False),
    (TABLE, "The Game 2 cell of the Ana row shows 9.", True),
]


@pytest.mark.parametrize(("facts", "back", "contradicted"), CASES, ids=[c[1][:50] for c in CASES])
def test_claims_are_checked_against_the_facts(facts, back, contradicted):
    found = figure_contradictions(back, facts)
    assert bool(found) is contradicted, found


def test_right_triangle_facts_fill_in_the_unknown_side_and_the_angles():
    assert RIGHT.sides["AC"] == pytest.approx(10.0)
    assert RIGHT.angles["B"] == pytest.approx(90.0)
    assert RIGHT.angles["A"] + RIGHT.angles["C"] == pytest.approx(90.0)
    assert ANGLES.angles["R"] == 70.0
    assert RECT.sides["DC"] == 5 and RECT.sides["AD"] == 3 and RECT.angles["C"] == 90.0
    assert COUNTS.count(colour="red") == 3 and COUNTS.rows == (2, 2, 1)


def test_scene_facts_read_every_family_and_nothing_else():
    families = set()
    for row in islice(SyntheticSource(seed=4), 30):
        facts = scene_facts(row.problem.meta)
        assert facts is not None
        families.add(facts.family)
    assert families == {"bar_chart", "geometry", "counting", "line_plot", "table"}
    assert scene_facts(None) is None
    assert scene_facts({"family": "bar_chart"}) is None
    assert scene_facts({"family": "bar_chart", "scene": {"bars": "broken"}}) is None  # another generator


def test_typed_facts_carry_what_the_scene_teacher_writes_from():
    """The scene teacher reads bars, points, cells and objects from these records, so every field it states
    (printed values, where an object lies, its row) is read from the stored scene."""
    seen = set()
    for row in islice(SyntheticSource(seed=4), 60):
        meta = row.problem.meta
        family, scene = figure_scene(meta)
        facts = scene_facts(meta)
        seen.add(family)
        if family in ("bar_chart", "line_plot"):
            assert facts.show_values is scene["show_values"]
        if family == "bar_chart":
            assert [(b.label, b.value, b.colour) for b in facts.bars] == [
                (b["label"], b["value"], b["colour"]) for b in scene["bars"]]
        if family == "counting":
            assert [(o.region, o.row) for o in facts.objects] == [(o["region"], o["row"]) for o in scene["objects"]]
            assert sum(facts.rows) == len(scene["objects"])
        if family == "table":
            assert list(facts.cells) == [r["name"] for r in scene["rows"]]
    assert seen >= {"bar_chart", "counting", "line_plot", "table"}
    mc = {"family": "multiple_choice", "scene": {"base_family": "table", "base": {"rows": []}, "choices": []}}
    assert figure_scene(mc) == ("table", {"rows": []})
    assert figure_scene({"family": "jsonl"}) == (None, None)


@pytest.fixture(scope="module")
def scene_traces():
    out = []
    for i, row in enumerate(islice(SyntheticSource(seed=21), 240)):
        p = row.problem
        for variant in ("semantic_back", "solution_back"):
            t = write_trace(p, variant, seed=i, misread_rate=0.4)
            out.append((p, variant, t))
    return out


def test_the_scene_teachers_traces_pass_with_their_facts_misread_ones_included(scene_traces):
    assert any(t.misread for *_, t in scene_traces)
    for p, variant, t in scene_traces:
        v = validate_trace(
            t.text,
            variant=variant,
            gold=p.answer,
            question=p.question,
            choices=p.choices,
            facts=scene_facts(p.meta),
        )
        assert v.accepted, (v.reasons, t.text)
        assert v.scores["figure_contradictions"] == 0.0


def test_a_changed_value_in_a_scene_back_is_back_contradicts_figure(scene_traces):
    caught = n = 0
    for p, variant, t in scene_traces:
        if t.misread or p.meta["family"] != "bar_chart":
            continue
        facts = scene_facts(p.meta)
        back = parse_trace(t.text).backs[0]
        bar = next(
            b for b in facts.bars if f"{b.label} bar" in back.text or f"bar for {b.label}" in back.text
        )
        wrong = bar.value + facts.step
        new_back = re.sub(rf"(?<![\w.]){bar.value}(?![\w.])", str(wrong), back.text)
        text = t.text.replace(back.text, new_back)
        v = validate_trace(
            text, variant=variant, gold=p.answer, question=p.question, choices=p.choices, facts=facts
        )
        n += 1
        caught += "back_contradicts_figure" in v.reasons
        assert not format_ok(text, variant, question=p.question, facts=facts)
    assert n >= 20 and caught == n


def test_lbdata_validate_checks_a_synthetic_run_against_its_scene_facts(tmp_path):
    from lbdata.generate import GenerateConfig, generate
    from lbdata.ledger import Ledger
    from lbdata.validate import validate_run

    run = tmp_path / "run"
    generate(GenerateConfig(source="synthetic:bar_chart", limit=6, seed=3), run)
    tampered = set()
    with Ledger.open(run) as ledger:
        for trace in ledger.iter_traces():
            problem = ledger.get_problem(trace.problem_id)
            if trace.variant != "semantic_back" or len(tampered) >= 3:
                continue
            back = parse_trace(trace.text).backs[0].text
            bar = next(b for b in problem.meta["scene"]["bars"] if b["label"] in back)
            new_back = re.sub(rf"(?<![\w.]){bar['value']}(?![\w.])", str(bar["value"] + 1000), back)
            # a new trace (a trace once written is never replaced): the same one with a wrong value
            copy = trace.model_copy(
                update={"id": trace.id + "-tampered", "text": trace.text.replace(back, new_back)}
            )
            assert ledger.put_trace(copy) is not False
            tampered.add(copy.id)
        assert len(tampered) == 3
    report = validate_run(run, progress=False)
    assert report.reasons.get("back_contradicts_figure") == 3
    assert report.rejected == 3 and report.accepted == report.traces - 3
    with Ledger.open(run) as ledger:
        from lbdata.validate import ValidationConfig

        flagged = {v.trace_id for v in ledger.iter_verdicts(ValidationConfig().config_hash) if not v.accepted}
    assert flagged == tampered


def test_a_huge_back_without_full_stops_is_checked_in_linear_time():
    import time

    back = (
        "Looking again, the Mon bar is 40, the Tue bar 20 and Week 3 is not 60 but 70, " * 1500 + "1 " * 5000
    )
    text = (
        f"<think>{'The chart has three bars and I need two of them. ' * 50}</think><back>{back}</back>"
        f"<think>So the difference is 40 - 20 = 20.</think> \\boxed{{20}}"
    )
    t0 = time.process_time()
    v = validate_trace(text, variant="semantic_back", gold="20", facts=BARS)
    assert time.process_time() - t0 < 5  # CPU time: quadratic binding took minutes here
    assert v.scores["figure_contradictions"] >= 4999  # each stray 1 is bound to Week 3, which is 70
