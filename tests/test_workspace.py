"""Naming runs and corpora: exact name, unique prefix, or a one-line error that points to the right name."""

import pytest

from lbdata.errors import LedgerError, UsageError
from lbdata.workspace import match_name, resolve_run

NAMES = ["synthetic-scene-3f2a9c1d", "synthetic-scene-77aa0b12", "demo", "demo-2"]


@pytest.mark.parametrize(("spec", "expected"), [
    ("demo", "demo"),  # an exact name wins over the longer names it begins
    ("demo-", "demo-2"),
    ("synthetic-scene-3", "synthetic-scene-3f2a9c1d"),
    ("synthetic-scene-77aa0b12", "synthetic-scene-77aa0b12"),
])
def test_exact_name_or_unique_prefix(spec, expected):
    assert match_name(spec, NAMES, "run", "create one") == expected


@pytest.mark.parametrize(("spec", "needles"), [
    ("synthetic-scene", ["ambiguous", "2 names", "synthetic-scene-3f2a9c1d", "synthetic-scene-77aa0b12"]),
    ("synthetic-scene-3f2a9c1e", ["did you mean 'synthetic-scene-3f2a9c1d'"]),
    ("dmeo", ["did you mean 'demo'"]),
    ("zzz", ["known runs:", "demo-2"]),
    ("", ["known runs:"]),
])
def test_no_match_says_what_to_type(spec, needles):
    with pytest.raises(UsageError) as info:
        match_name(spec, NAMES, "run", "create one")
    message = str(info.value)
    assert "\n" not in message and all(n in message for n in needles), message


def test_no_names_gives_the_way_to_make_one_and_corpora_are_plural():
    with pytest.raises(UsageError, match="no corpus 'x'; build one"):
        match_name("x", [], "corpus", "build one")
    with pytest.raises(UsageError, match="known corpora: a, b"):
        match_name("zzz", ["a", "b"], "corpus", "build one")


def test_resolve_run_by_path_name_and_prefix(tmp_path, monkeypatch):
    from lbdata.ledger import Ledger

    for name in ("alpha-1", "beta"):
        Ledger.create(tmp_path / "runs" / name).close()
    assert resolve_run("alpha", tmp_path) == tmp_path / "runs" / "alpha-1"
    assert resolve_run(str(tmp_path / "runs" / "beta"), tmp_path) == tmp_path / "runs" / "beta"
    with pytest.raises(LedgerError, match="no run directory at"):
        resolve_run(str(tmp_path / "nowhere"), tmp_path)
    with pytest.raises(LedgerError, match="did you mean 'beta'"):
        resolve_run("betta", tmp_path)
    with pytest.raises(LedgerError, match="no run 'alpha'"):
        resolve_run("alpha", tmp_path, prefix=False)
    monkeypatch.chdir(tmp_path / "runs")  # a run directory in the working folder, named without a slash
    assert resolve_run("beta", tmp_path / "elsewhere").resolve() == (tmp_path / "runs" / "beta").resolve()


def test_write_text_atomic_replaces_whole_and_leaves_nothing_behind(tmp_path, monkeypatch):
    import os

    import pytest

    from lbdata.workspace import write_text_atomic

    path = tmp_path / "validation.json"
    write_text_atomic(path, "old\n")
    write_text_atomic(path, "new\n")
    assert path.read_text() == "new\n" and os.listdir(tmp_path) == ["validation.json"]

    def broken_replace(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_text_atomic(path, "half")
    assert path.read_text() == "new\n" and os.listdir(tmp_path) == ["validation.json"]


@pytest.mark.parametrize(("what", "fix"), [("lbdata home", "pass --home DIR"), ("run directory", "pass --run with another"),
                                           ("output folder", "pass --out with a writable folder")])
def test_an_unwritable_folder_names_the_option_that_moves_it(tmp_path, what, fix):
    from lbdata.errors import WorkspaceError
    from lbdata.workspace import ensure_writable_dir

    taken = tmp_path / "taken"
    taken.write_text("x")
    with pytest.raises(WorkspaceError, match=f"cannot write to the {what} .*; {fix}"):
        ensure_writable_dir(taken, what)
