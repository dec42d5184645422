"""The synthetic source: deterministic problems whose gold answers follow from the scene facts."""

from __future__ import annotations

import io
import itertools
import json
import subprocess
import sys
from fractions import Fraction

import pytest
from math_verify import parse
from PIL import Image

from lbdata.errors import UsageError
from lbdata.hashing import canonical_json, sha256_bytes
from lbdata.sources import load_source
from lbdata.sources.base import image_ref
from lbdata.sources.synthetic import FAMILIES, SyntheticSource, family_of

BASE_FAMILIES = ("bar_chart", "geometry", "counting", "line_plot", "table")


def _first(source: SyntheticSource, n: int):
    return [source.row(i) for i in itertools.islice(source.indices(), n)]


def _value(latex: str) -> float:
    """The numeric value of an exact LaTeX answer (``13``, ``12\\sqrt{2}``, ``\\frac{5}{2}``, ``35^\\circ``)."""
    text = latex.replace("^\\circ", "")
    return float(parse(f"${text}$")[0])


# ---------------------------------------------------------------- independent solvers of each family


def _solve_bar(kind: str, s: dict) -> str:
    by = {b["label"]: b["value"] for b in s["bars"]}
    for b in s["bars"]:
        assert b["value"] % s["step"] == 0 and 0 < b["value"] <= s["axis_max"], "a bar must end on a gridline"
    vals = [by[x] for x in s["asked"]]
    if kind == "difference":
        return str(vals[0] - vals[1])
    if kind in ("sum", "total"):
        return str(sum(vals))
    assert kind == "range"
    return str(max(vals) - min(vals))


def _solve_geometry(kind: str, s: dict) -> float:
    sides = {k: v["length"] for k, v in s["sides"].items()}
    if kind == "missing_angle":
        a, b = (s["angles"][v]["degrees"] for v in s["asked"])
        return 180 - a - b
    x, y = (sides[n] for n in s["asked"][:2])
    if kind == "hypotenuse":
        return (x * x + y * y) ** 0.5
    if kind == "leg":
        return (x * x - y * y) ** 0.5  # asked = [hypotenuse, leg]
    if kind == "right_area":
        return x * y / 2
    if kind == "perimeter":
        return sum(sides.values())
    if kind == "rect_area":
        return x * y
    assert kind == "rect_perimeter"
    return 2 * (x + y)


def _solve_counting(kind: str, s: dict) -> str:
    objs = s["objects"]

    def count(**m):
        return sum(all(o[k] == v for k, v in m.items()) for o in objs)

    c, sh = s.get("colour"), s.get("shape")
    if kind == "remove_shape_count_colour":
        return str(count(colour=c) - count(colour=c, shape=sh))
    if kind == "count_colour_shape":
        return str(count(colour=c, shape=sh))
    if kind == "remove_colour_count_all":
        return str(len(objs) - count(colour=c))
    if kind == "colour_or_shape":
        return str(count(colour=c) + count(shape=sh) - count(colour=c, shape=sh))
    if kind == "add_count_colour":
        return str(count(colour=c) + s["add"])
    assert kind == "remove_size_count_shape"
    keep = "large" if s["size"] == "small" else "small"
    return str(count(shape=sh, size=keep))


def _solve_line_plot(kind: str, s: dict) -> float | str:
    pts = s["points"]
    for p in pts:
        assert p["y"] % s["step"] == 0 and s["y_min"] <= p["y"] <= s["y_max"], "a point must sit on a gridline"
    if s["series"] == "linear":
        by = {p["x"]: p["y"] for p in pts}
        slope = Fraction(pts[1]["y"] - pts[0]["y"], pts[1]["x"] - pts[0]["x"])
        assert all(Fraction(p["y"]) == s["intercept"] + slope * p["x"] for p in pts), "points lie on one line"
        if kind == "slope":
            (x1, x2) = s["asked"]
            return float(Fraction(by[x2] - by[x1], x2 - x1))
        return float(by[s["asked"][0]]) if kind == "value_at" else float(s["intercept"])
    by = {p["label"]: p["y"] for p in pts}
    if kind == "series_value":
        return float(by[s["asked"][0]])
    if kind == "increase":
        return float(by[s["asked"][1]] - by[s["asked"][0]])
    assert kind == "argmax"
    return max(pts, key=lambda p: p["y"])["label"]


def _solve_table(kind: str, s: dict) -> str:
    rows = {r["name"]: r for r in s["rows"]}
    if kind == "row_total":
        return str(sum(rows[s["asked"][0]][c] for c in s["columns"]))
    col = s["column"]
    vals = {name: rows[name][col] for name in s["asked"]}
    if kind == "largest":
        return max(vals, key=vals.get)
    if kind == "smallest":
        return min(vals, key=vals.get)
    if kind == "column_total":
        return str(sum(vals.values()))
    assert kind == "difference"
    a, b = s["asked"]
    return str(vals[a] - vals[b])


def _check_answer(family: str, kind: str, scene: dict, answer: str) -> None:
    if family == "bar_chart":
        assert answer == _solve_bar(kind, scene)
    elif family == "geometry":
        assert _value(answer) == pytest.approx(_solve_geometry(kind, scene))
        if kind == "missing_angle":
            assert answer.endswith("^\\circ")
    elif family == "counting":
        assert answer == _solve_counting(kind, scene)
    elif family == "line_plot":
        expected = _solve_line_plot(kind, scene)
        if isinstance(expected, str):
            assert answer == expected
        else:
            assert _value(answer) == pytest.approx(expected)
    else:
        assert answer == _solve_table(kind, scene)


# ---------------------------------------------------------------- tests

_DUMP = """
import hashlib, itertools, sys
from lbdata.hashing import canonical_json
from lbdata.sources.synthetic import SyntheticSource
src = SyntheticSource(seed=int(sys.argv[1]))
for row in itertools.islice(src, 30):
    print(hashlib.sha256(row.images[0]).hexdigest(), canonical_json(row.problem.model_dump(mode="json")))
"""


def _dump(seed: int) -> str:
    out = subprocess.run([sys.executable, "-c", _DUMP, str(seed)], capture_output=True, text=True, check=True,
                         env={"OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "random", "PATH": ""})
    return out.stdout


def test_same_seed_gives_identical_bytes_and_problems_in_any_process():
    first, second = _dump(11), _dump(11)
    assert first == second and len(first.splitlines()) == 30
    here = "".join(
        f"{sha256_bytes(r.images[0])} {canonical_json(r.problem.model_dump(mode='json'))}\n"
        for r in itertools.islice(SyntheticSource(seed=11), 30)
    )
    assert here == first
    assert _dump(12) != first


def test_every_family_gives_valid_problems_whose_answers_follow_from_the_scene():
    src = SyntheticSource(seed=5)
    seen_kinds: dict[str, set[str]] = {f: set() for f in BASE_FAMILIES}
    for index in range(300):
        row = src.row(index)
        p = row.problem
        family = family_of(index)
        assert p.id == f"synthetic:5-{index}" and p.source == "synthetic"
        assert p.meta["family"] == family
        json.dumps(p.meta)  # JSON-serialisable
        assert len(p.images) == 1 and p.images[0] == image_ref(row.images[0])
        im = Image.open(io.BytesIO(row.images[0]))
        assert im.format == "PNG" and max(im.size) <= 512
        assert p.question.strip() and p.answer.strip()
        if family == "multiple_choice":
            continue
        seen_kinds[family].add(p.meta["kind"])
        assert p.choices is None
        _check_answer(family, p.meta["kind"], p.meta["scene"], p.answer)
    for family, kinds in seen_kinds.items():
        assert len(kinds) >= 3, f"{family} should ask several kinds of question, got {kinds}"


def test_multiple_choice_gold_is_the_letter_of_the_true_value():
    src = SyntheticSource(seed=2, families=["multiple_choice"])
    rows = _first(src, 60)
    bases = set()
    for row in rows:
        p = row.problem
        s = p.meta["scene"]
        bases.add(s["base_family"])
        assert p.answer in "ABCD" and len(p.answer) == 1
        assert p.choices == s["choices"] and len(p.choices) == 4 and len(set(p.choices)) == 4
        true_value = p.choices["ABCD".index(p.answer)]
        assert true_value == s["base_answer"]
        _check_answer(s["base_family"], p.meta["kind"], s["base"], true_value)
        for letter, choice in zip("ABCD", p.choices, strict=True):
            assert f"({letter}) {choice}" in p.question
    assert bases == set(BASE_FAMILIES)


def test_images_vary_and_labels_are_drawn():
    rows = _first(SyntheticSource(seed=0, families=["bar_chart"]), 12)
    sizes = {Image.open(io.BytesIO(r.images[0])).size for r in rows}
    assert len(sizes) > 1, "canvas sizes vary"
    assert len({r.problem.meta["scene"]["orientation"] for r in rows}) == 2
    for r in rows:
        im = Image.open(io.BytesIO(r.images[0])).convert("L")
        dark = sum(im.histogram()[:90])
        assert dark > 300, "axes, labels and ticks are drawn in dark ink"


def test_families_filter_skips_indices_but_keeps_ids():
    full = SyntheticSource(seed=3)
    only = SyntheticSource(seed=3, families=["table", "geometry"])
    rows = _first(only, 8)
    assert {r.problem.meta["family"] for r in rows} == {"table", "geometry"}
    for r in rows:
        index = int(r.problem.id.rsplit("-", 1)[1])
        assert full.row(index).problem == r.problem
    with pytest.raises(UsageError, match="indices"):
        only.row(0)  # item 0 is a bar chart


def test_iteration_matches_random_access_and_never_ends():
    src = SyntheticSource(seed=9)
    streamed = list(itertools.islice(src, 14))
    assert [r.problem for r in streamed] == [src.row(i).problem for i in range(14)]
    assert len(list(itertools.islice(SyntheticSource(seed=9, families=["counting"]), 50))) == 50


def test_load_source_and_describe():
    src = load_source("synthetic:bar_chart,geometry", seed=4)
    assert isinstance(src, SyntheticSource) and src.families == ["bar_chart", "geometry"]
    d = src.describe()
    assert d == {"kind": "synthetic", "seed": 4, "families": ["bar_chart", "geometry"], "generator": d["generator"]}
    json.dumps(d)
    assert SyntheticSource().families == list(FAMILIES)


def test_unknown_family_and_option_are_usage_errors():
    with pytest.raises(UsageError, match="valid families: bar_chart, geometry, counting, line_plot, table"):
        load_source("synthetic:bar_chart,pie_chart")
    with pytest.raises(UsageError, match="no option size"):
        SyntheticSource(size=3)


def test_geometry_answers_are_exact_latex():
    answers = [r.problem.answer for r in _first(SyntheticSource(seed=1, families=["geometry"]), 120)]
    assert any("\\sqrt{" in a for a in answers), "irrational lengths stay exact"
    assert any(a.endswith("^\\circ") for a in answers)
    assert not any("." in a for a in answers), "no decimals"


def test_sources_show_writes_images_and_a_listing(tmp_path):
    from typer.testing import CliRunner

    from lbdata.cli import app

    out = tmp_path / "samples"
    result = CliRunner().invoke(app, ["sources", "show", "synthetic", "--n", "8", "--out", str(out), "--seed", "3"])
    assert result.exit_code == 0, result.output
    lines = (out / "listing.jsonl").read_text().splitlines()
    assert len(lines) == 8
    for line, row in zip(lines, itertools.islice(SyntheticSource(seed=3), 8), strict=True):
        entry = json.loads(line)
        assert entry["id"] == row.problem.id and entry["answer"] == row.problem.answer
        assert (out / entry["images"][0]).read_bytes() == row.images[0]
        assert entry["id"] in result.output and entry["family"] in result.output
    result = CliRunner().invoke(app, ["sources", "show", "synthetic:nope", "--out", str(out)])
    assert result.exit_code != 0 and "valid families" in str(result.exception)
