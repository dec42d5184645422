"""The ``lbdata.validate.normalize`` package keeps one flat surface over its modules."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

from lbdata.validate import normalize as nz

MODULES = [m.name for m in pkgutil.iter_modules(nz.__path__)]


def test_the_package_has_its_modules():
    assert set(MODULES) == {
        "arithmetic",
        "equations",
        "extract",
        "guards",
        "hedges",
        "latex",
        "numbers",
        "structures",
        "text",
        "units",
    }


@pytest.mark.parametrize("module", MODULES)
def test_every_public_name_is_reexported_as_the_same_object(module):
    """``nz.<name>`` reaches every public function, class and constant of every module."""
    mod = importlib.import_module(f"lbdata.validate.normalize.{module}")
    public = []
    for node in ast.parse(Path(mod.__file__).read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            public.append(node.name)
        elif isinstance(node, ast.Assign):
            public += [t.id for t in node.targets if isinstance(t, ast.Name)]
    public = [name for name in public if not name.startswith("_")]
    assert public, f"{module} defines no public name"
    for name in public:
        assert name in nz.__all__, f"normalize.{module}.{name} is not re-exported"
        assert getattr(nz, name) is getattr(mod, name)


def test_the_reexports_work_through_the_package():
    assert nz.final_answer("so the answer is \\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert nz.numbers_match(nz.simple_number(nz.clean("$0.5$")), nz.simple_number("1/2"))
    assert nz.interval_union("x > 3") == [("(", "3", "\\infty", ")")]
    assert nz.split_unit("5 cm") == ("5", "cm")
    assert nz.too_hard("2^{3^{4^{5}}}")
