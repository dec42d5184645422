import subprocess
import sys
import zipfile

import pytest

from lbdata.errors import LbdataError
from lbdata.resources import KINDS, resource_dir, resource_path


def test_resources_found_in_checkout():
    for kind in KINDS:
        assert resource_dir(kind).is_dir()
    assert resource_path("prompts", "instructions/semantic_back.txt").read_text().strip()
    with pytest.raises(LbdataError, match="available"):
        resource_path("prompts", "nope.txt")


def test_wheel_contains_resources(tmp_path):
    root = resource_dir("prompts").parent
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(root)],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("lbdata-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for kind in KINDS:
        assert any(n.startswith(f"lbdata/_data/{kind}/") for n in names), kind
    assert "lbdata/_data/prompts/instructions/semantic_back.txt" in names
    assert "lbdata/_data/schemas/Trace.schema.json" in names
    assert "lbdata/_data/prompts/scene/shared.yaml" in names
    assert "lbdata/view/templates/base.html" in names  # the viewer's pages are package data
    # an installed wheel finds its resources without the checkout
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target), str(wheel), "-q"],
                   check=True, capture_output=True)
    code = ("import lbdata.resources as r; p = r.resource_path('prompts', 'instructions/plain.txt'); "
            "assert '_data' in str(p), p; print(p); "
            "from lbdata.teachers.scene import phrase_bank_hash; assert phrase_bank_hash() == '80209f87c6ccc02f'; "
            "from lbdata.view.pages import samples_page; assert 'assets/view.js' in samples_page('t', 'h', 'w')")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(target), "PATH": ""},
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
