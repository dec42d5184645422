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
