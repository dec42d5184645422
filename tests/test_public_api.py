import subprocess
import sys

import lbdata


def test_every_public_name_resolves():
    for name in lbdata.__all__:
        assert getattr(lbdata, name) is not None, name


def test_import_is_light():
    code = "import sys, lbdata; bad = [m for m in ('torch', 'transformers', 'datasets', 'trl') if m in sys.modules]; print(bad)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_public_names_do_not_shadow_submodules():
    import lbdata.evaluate
    import lbdata.generate

    for name in lbdata.__all__:
        getattr(lbdata, name)
    assert lbdata.generate.__name__ == "lbdata.generate"
    assert lbdata.evaluate.__name__ == "lbdata.evaluate"


def test_lbdata_evaluate_re_exports_the_eval_package_for_users():
    import lbdata.eval
    import lbdata.evaluate

    assert lbdata.evaluate.__all__ == lbdata.eval.__all__
    for name in lbdata.eval.__all__:
        assert getattr(lbdata.evaluate, name) is getattr(lbdata.eval, name), name
    assert lbdata.evaluate.EvalConfig is lbdata.eval.EvalConfig


def test_the_project_itself_imports_from_lbdata_eval_not_the_re_export():
    import ast
    from pathlib import Path

    def imports_re_export(path: Path) -> bool:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "lbdata.evaluate":
                return True
        return False

    root = Path(__file__).resolve().parent.parent
    users = [p.relative_to(root).as_posix() for folder in ("lbdata", "benchmarks", "tests")
             for p in (root / folder).rglob("*.py") if imports_re_export(p)]
    assert users == []
