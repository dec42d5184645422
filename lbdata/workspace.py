"""Where runs and corpora live: ``./lbdata-work/`` unless ``--home`` or ``LBDATA_HOME`` says otherwise.

A run is addressed by its name under the home or by a path to its directory; every command that
takes RUN accepts both (``resolve_run``).
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

from lbdata.errors import LedgerError, UsageError, WorkspaceError

DEFAULT_HOME = "lbdata-work"
LEDGER_FILE = "ledger.sqlite"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def home_dir(home: str | os.PathLike[str] | None = None) -> Path:
    """The lbdata home: the argument, else ``$LBDATA_HOME``, else ``./lbdata-work``."""
    return Path(home or os.environ.get("LBDATA_HOME") or DEFAULT_HOME)


def ensure_writable_dir(path: Path, what: str = "lbdata home") -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".lbdata-write-probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise WorkspaceError(
            f"cannot write to the {what} {str(path)!r} ({exc.strerror or exc}); "
            "pass --home DIR or set LBDATA_HOME to a writable folder"
        ) from None
    return path


def check_name(name: str, what: str = "run name") -> str:
    if not _NAME_RE.match(name):
        raise UsageError(
            f"invalid {what} {name!r}: use letters, digits, '.', '_' or '-' (at most 128 characters)"
        )
    return name


def runs_dir(home: str | os.PathLike[str] | None = None) -> Path:
    return home_dir(home) / "runs"


def corpora_dir(home: str | os.PathLike[str] | None = None) -> Path:
    return home_dir(home) / "corpora"


def run_dir_for(name: str, home: str | os.PathLike[str] | None = None) -> Path:
    """Directory of a (possibly new) run named ``name``, or the path itself if ``name`` is a path."""
    if os.sep in name or name.startswith("."):
        return Path(name)
    return runs_dir(home) / check_name(name)


def match_name(spec: str, names: list[str], what: str, create_hint: str) -> str:
    """The one name in ``names`` that ``spec`` names: an exact match, else a unique prefix.

    Otherwise a one-line error: the candidates when the prefix is ambiguous, "did you mean" the
    closest names when there is none, and ``create_hint`` when ``names`` is empty.
    """
    if spec in names:
        return spec
    matches = [n for n in names if n.startswith(spec)] if spec else []
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UsageError(f"{what} {spec!r} is ambiguous: {len(matches)} names start with it ({_listing(matches)}); "
                         "type more of the name")
    if not names:
        raise UsageError(f"no {what} {spec!r}; {create_hint}")
    close = (difflib.get_close_matches(spec, names, n=3, cutoff=0.5) or [n for n in names if spec in n][:3]
             if spec else [])
    plural = "corpora" if what == "corpus" else f"{what}s"
    hint = f"did you mean {' or '.join(repr(n) for n in close)}?" if close else f"known {plural}: {_listing(names)}"
    raise UsageError(f"no {what} {spec!r}; {hint}")


def _listing(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _is_path(spec: str) -> bool:
    return os.sep in spec or (os.altsep is not None and os.altsep in spec) or spec.startswith(".")


def resolve_run(spec: str, home: str | os.PathLike[str] | None = None, *, prefix: bool = True) -> Path:
    """An existing run directory, given its path, its name under the home, or a unique prefix of the name.

    An unknown name fails with one line: the candidates of an ambiguous prefix, or the closest names.
    """
    if (Path(spec) / LEDGER_FILE).exists():
        return Path(spec)
    if (runs_dir(home) / spec / LEDGER_FILE).exists() and not _is_path(spec):
        return runs_dir(home) / spec
    if _is_path(spec):
        raise LedgerError(f"no run directory at {spec!r} (no {LEDGER_FILE} there); check the path or pass a run name")
    names = list_run_names(home)
    if not prefix:
        raise LedgerError(f"no run {spec!r} under {runs_dir(home)}")
    try:
        return runs_dir(home) / match_name(spec, names, "run", "create one with `lbdata generate`; "
                                           "`lbdata runs` lists the runs")
    except UsageError as exc:
        where = f" under {runs_dir(home)}" if not names else ""
        raise LedgerError(f"{exc}{where}") from None


def discard_new_run(run_dir: Path) -> bool:
    """Remove a run directory that a failed command created and that holds no trace and no spend.

    Call only for a directory that did not exist before the command: everything in it is the
    command's own. Returns whether it was removed.
    """
    import shutil

    from lbdata.ledger import Ledger

    if (run_dir / LEDGER_FILE).exists():
        try:
            with Ledger.open(run_dir) as ledger:
                counts = ledger.counts()
        except LedgerError:
            return False
        if counts["traces"] or counts["cost_usd"]:
            return False
    shutil.rmtree(run_dir, ignore_errors=True)
    return not run_dir.exists()


def list_run_names(home: str | os.PathLike[str] | None = None) -> list[str]:
    root = runs_dir(home)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / LEDGER_FILE).exists())
