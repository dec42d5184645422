"""Where runs and corpora live: ``./lbdata-work/`` unless ``--home`` or ``LBDATA_HOME`` says otherwise.

A run is addressed by its name under the home or by a path to its directory; every command that
takes RUN accepts both (``resolve_run``).
"""

from __future__ import annotations

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


def resolve_run(spec: str, home: str | os.PathLike[str] | None = None) -> Path:
    """An existing run directory, given its name or its path."""
    candidates = [Path(spec)] if (os.sep in spec or spec.startswith(".")) else []
    candidates.append(runs_dir(home) / spec)
    if Path(spec).is_dir() and Path(spec) not in candidates:
        candidates.insert(0, Path(spec))
    for path in candidates:
        if (path / LEDGER_FILE).exists():
            return path
    known = list_run_names(home)
    hint = f"; known runs: {', '.join(known)}" if known else "; create one with `lbdata generate`"
    raise LedgerError(f"no run {spec!r} under {runs_dir(home)} and no run directory at that path{hint}")


def list_run_names(home: str | os.PathLike[str] | None = None) -> list[str]:
    root = runs_dir(home)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / LEDGER_FILE).exists())
