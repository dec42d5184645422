"""Layout limits: no module over 500 lines of code and no function over 80 lines, so each reads in one sitting.

A module's lines of code are its non-blank lines that are neither comments nor docstrings (module, class,
function and attribute docstrings: any statement that is a bare string). A function's lines are all the
lines from its ``def`` (decorators excluded) to its last line; a nested function is counted both inside
its parent and on its own. Data tables written as Python may exceed the limits when ``ALLOWED`` names
them with a reason; ``TEMPORARY`` lists the modules and functions whose split is under way, to be emptied.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lbdata"
MAX_MODULE_CODE_LINES = 500
MAX_FUNCTION_LINES = 80

# "lbdata/<path>.py" (a module) or "lbdata/<path>.py::<qualified name>" (a function) → why it may exceed.
ALLOWED: dict[str, str] = {}

# Modules and functions whose split is under way; every entry goes once its split lands.
TEMPORARY: dict[str, str] = {
}

_SKIP_TOKENS = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.NEWLINE,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENDMARKER,
    tokenize.ENCODING,
}


def code_lines(source: str) -> int:
    """Non-blank lines that hold code: comments, blank lines and docstrings do not count."""
    rows: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in _SKIP_TOKENS:
            rows.update(range(tok.start[0], tok.end[0] + 1))
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            rows.difference_update(range(node.lineno, node.end_lineno + 1))
    return len(rows)


def function_lines(source: str) -> dict[str, int]:
    """Lines of every function and method, by qualified name (``Class.method``, ``outer.inner``)."""
    sizes: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = prefix + child.name
                sizes[name] = child.end_lineno - child.lineno + 1
                visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return sizes


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _key(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _exempt(key: str) -> bool:
    module = key.split("::", 1)[0]
    return any(k in ALLOWED or k in TEMPORARY for k in (key, module))


def test_no_module_over_the_limit():
    too_long = []
    for path in _modules():
        key = _key(path)
        n = code_lines(path.read_text(encoding="utf-8"))
        if n > MAX_MODULE_CODE_LINES and not _exempt(key):
            too_long.append(f"{key}: {n} lines of code (limit {MAX_MODULE_CODE_LINES})")
    assert not too_long, "split these modules along their seams:\n" + "\n".join(too_long)


def test_no_function_over_the_limit():
    too_long = []
    for path in _modules():
        for name, n in function_lines(path.read_text(encoding="utf-8")).items():
            key = f"{_key(path)}::{name}"
            if n > MAX_FUNCTION_LINES and not _exempt(key):
                too_long.append(f"{key}: {n} lines (limit {MAX_FUNCTION_LINES})")
    assert not too_long, "split these functions into named steps:\n" + "\n".join(too_long)


def test_exemptions_name_real_places_that_need_them():
    """An allow-list entry for a file or function that is gone, or now within the limits, must go."""
    stale = []
    for key in [*ALLOWED, *TEMPORARY]:
        module, _, name = key.partition("::")
        path = ROOT / module
        if not path.is_file():
            stale.append(f"{key}: no such module")
            continue
        source = path.read_text(encoding="utf-8")
        if name:
            n = function_lines(source).get(name)
            if n is None or n <= MAX_FUNCTION_LINES:
                stale.append(f"{key}: {'no such function' if n is None else f'{n} lines, within the limit'}")
        elif code_lines(source) <= MAX_MODULE_CODE_LINES and all(
            n <= MAX_FUNCTION_LINES for n in function_lines(source).values()
        ):
            stale.append(f"{key}: {code_lines(source)} lines of code, every function within the limit")
    assert not stale, "remove these exemptions:\n" + "\n".join(stale)


SAMPLE = '''"""A module docstring
over two lines."""

import re  # a comment

# a comment line

TABLE = {
    "a": 1,
}
"""An attribute docstring."""


class Box:
    """A class docstring."""

    def size(self):
        """A method docstring."""
        return 1


def outer():
    def inner():
        pass

    return """a string that is code,
not a docstring"""
'''


def test_code_lines_skip_blanks_comments_and_docstrings():
    # import, TABLE (3 lines), class, def size, return 1, def outer, def inner, pass, the return (2 lines)
    assert code_lines(SAMPLE) == 12


def test_function_lines_count_def_to_end_with_qualified_names():
    assert function_lines(SAMPLE) == {"Box.size": 3, "outer": 6, "outer.inner": 2}


@pytest.mark.parametrize("limit_key", ["module", "function"])
def test_an_oversized_module_or_function_is_named_with_its_size(tmp_path, monkeypatch, limit_key):
    """The checks fail, naming the file or function and its size, when something grows past a limit."""
    pkg = tmp_path / "lbdata"
    pkg.mkdir()
    if limit_key == "module":
        body = "".join(f"X{i} = {i}\n" for i in range(MAX_MODULE_CODE_LINES + 1))
        expected = f"lbdata/big.py: {MAX_MODULE_CODE_LINES + 1} lines of code"
        check = test_no_module_over_the_limit
    else:
        body = "def long():\n" + "    x = 1\n" * MAX_FUNCTION_LINES
        expected = f"lbdata/big.py::long: {MAX_FUNCTION_LINES + 1} lines"
        check = test_no_function_over_the_limit
    (pkg / "big.py").write_text(body)
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    monkeypatch.setitem(globals(), "PACKAGE", pkg)
    with pytest.raises(AssertionError, match=re.escape(expected)):
        check()
