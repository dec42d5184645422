"""Where runs and corpora live: ``./lbdata-work/`` unless ``--home`` or ``LBDATA_HOME`` says otherwise.

A run is addressed by its name under the home or by a path to its directory; every command that
takes RUN accepts both (``resolve_run``).
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from lbdata.errors import LbdataError, LedgerError, UsageError, WorkspaceError

try:  # POSIX; Windows locks a byte of the file instead
    import fcntl
except ImportError:  # pragma: no cover - exercised on Windows only
    fcntl = None  # type: ignore[assignment]

DEFAULT_HOME = "lbdata-work"
LEDGER_FILE = "ledger.sqlite"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def home_dir(home: str | os.PathLike[str] | None = None) -> Path:
    """The lbdata home: the argument, else ``$LBDATA_HOME``, else ``./lbdata-work``."""
    return Path(home or os.environ.get("LBDATA_HOME") or DEFAULT_HOME)


_WRITABLE_HINTS = {
    "lbdata home": "pass --home DIR or set LBDATA_HOME to a writable folder",
    "run directory": "pass --run with another name, or a writable folder",
    "output folder": "pass --out with a writable folder",
    "site folder": "pass --out with a writable folder",
}


def ensure_writable_dir(path: Path, what: str = "lbdata home") -> Path:
    probe = path / ".lbdata-write-probe"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe.write_text("ok")
        probe.unlink(missing_ok=True)  # another process probing the same folder may have removed it
    except OSError as exc:
        with contextlib.suppress(OSError):
            probe.unlink(missing_ok=True)
        raise WorkspaceError(
            f"cannot write to the {what} {str(path)!r} ({exc.strerror or exc}); "
            f"{_WRITABLE_HINTS.get(what, _WRITABLE_HINTS['lbdata home'])}"
        ) from None
    return path


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so a reader sees the old file or the new one, never half of one: a
    temporary file in the same folder, flushed to disk, then renamed over ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


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


def list_run_names(home: str | os.PathLike[str] | None = None) -> list[str]:
    root = runs_dir(home)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / LEDGER_FILE).exists())


# ---------------------------------------------------------------------------- one writer per run

LOCK_FILE = "writer.lock"


class RunLock:
    """The exclusive writer lock of a run directory, held for as long as the object is open.

    An advisory ``flock`` on ``<run>/writer.lock``: the kernel drops it when the holder exits, however
    it exits (SIGKILL included), so a lock left by a killed process is simply taken over by the next
    one — there is no stale state to judge. The holder writes ``pid``, ``host`` and ``since`` into the
    file so that a second writer can name it.
    """

    def __init__(self, run_dir: Path, *, wait: bool = False, poll_s: float = 0.5,
                 on_wait: Callable[[str], None] | None = None):
        self.path = Path(run_dir) / LOCK_FILE
        try:  # never through a link: the holder's line is written over the file's content
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except OSError as exc:
            raise LedgerError(f"cannot open the lock file {self.path} ({exc.strerror or exc}); if it is a link, "
                              "remove it (lbdata makes it a plain file)") from None
        self._fh = open(fd, "a+", encoding="utf-8")  # noqa: SIM115 - held until release()
        told = False
        while True:
            try:
                _try_lock(self._fh)
                break
            except OSError as exc:
                if not _is_busy(exc):
                    self._fh.close()
                    raise LedgerError(
                        f"cannot lock {self.path} ({exc.strerror or exc}); this filesystem does not support file "
                        "locks: put the lbdata home on a local disk (--home DIR or LBDATA_HOME)"
                    ) from None
                holder = self.holder()
                if not wait:
                    self._fh.close()
                    raise RunBusy(
                        f"run {str(Path(run_dir))!r} is in use by {describe_holder(holder)}; wait for it to "
                        "finish, pass --wait to queue behind it, or use another --run NAME"
                    ) from None
                if not told and on_wait is not None:
                    on_wait(describe_holder(holder))
                    told = True
                time.sleep(poll_s)
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "since": datetime.now(UTC).isoformat(timespec="seconds")}
        self._fh.seek(0)
        self._fh.truncate()
        self._fh.write(json.dumps(info) + "\n")
        self._fh.flush()

    def holder(self) -> dict[str, object]:
        """What the holder wrote (empty while it is still writing it)."""
        try:
            text = self.path.read_text(encoding="utf-8").strip()
            return json.loads(text) if text else {}
        except (OSError, ValueError):
            return {}

    def release(self) -> None:
        if not self._fh.closed:
            self._fh.seek(0)
            self._fh.truncate()
            self._fh.close()  # closing the descriptor drops the flock

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _try_lock(fh) -> None:
    """Take the lock without waiting; raises ``OSError`` (busy or unsupported) when it cannot."""
    if fcntl is not None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    else:  # pragma: no cover
        import msvcrt

        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)


def _is_busy(exc: OSError) -> bool:
    import errno

    return isinstance(exc, BlockingIOError) or exc.errno in (errno.EACCES, errno.EAGAIN, errno.EDEADLK)


def describe_holder(holder: dict[str, object]) -> str:
    if not holder:
        return "another process (starting up)"
    return f"process {holder.get('pid')} on {holder.get('host')} since {holder.get('since')}"


class RunBusy(UsageError):
    """Another process is writing to this run."""


# ---------------------------------------------------------------------------- whole or not at all
# An output folder (a corpus version, a site, an export, a staged push) is written under a hidden
# sibling ``.<name>~partial~<pid>~<host>~<random>`` and renamed into place when complete. A process
# killed half-way leaves only such a sibling; the next writer in the same folder removes the ones
# whose process (on this host) is gone.

_PARTIAL = re.compile(r"~(?P<kind>partial|old|build)~(?P<pid>\d+)~(?P<host>[0-9a-f]{8})~")
_LEGACY_BUILD = re.compile(r"^\.build-(?P<pid>\d+)-")  # work folders of builds by lbdata before host tags


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def partial_prefix(name: str, kind: str = "partial") -> str:
    """Prefix of a hidden work folder for ``name`` owned by this process (``kind``: partial, old, build)."""
    return f".{name[:40]}~{kind}~{os.getpid()}~{_host_tag()}~"  # fits a 255-byte file name, in any script


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_partials(parent: Path, *, legacy_builds: bool = False) -> list[Path]:
    """Remove the work folders in ``parent`` left by processes of this host that no longer run.

    An output set aside by a ``replace_dir`` killed before the new one took its place is put back.
    ``legacy_builds``: also the ``.build-PID-*`` folders of older builds (only in a corpus folder: in
    a folder of the user's such a name is not lbdata's).
    """
    removed: list[Path] = []
    if not parent.is_dir():
        return removed
    host = _host_tag()
    for entry in parent.iterdir():
        m = _PARTIAL.search(entry.name)
        legacy = _LEGACY_BUILD.match(entry.name) if m is None and legacy_builds else None
        if legacy is not None:
            if _alive(int(legacy["pid"])):
                continue
        elif not entry.name.startswith(".") or m is None or m["host"] != host or _alive(int(m["pid"])):
            continue
        if m is not None and m["kind"] == "old" and entry.is_dir() and not entry.is_symlink():
            for kept in entry.iterdir():  # killed between the renames: the output it replaced goes back
                if not (parent / kept.name).exists() and not (parent / kept.name).is_symlink():
                    os.replace(kept, parent / kept.name)
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def make_partial_dir(final: Path, kind: str = "partial") -> Path:
    """A new hidden work folder next to ``final`` (leftovers of dead processes removed first)."""
    final = Path(os.path.realpath(final))  # an output that is a link is written where it points
    with contextlib.suppress(OSError):  # the folder a shell is in would be swapped under it: refuse
        if final.is_dir() and Path(os.path.realpath(os.getcwd())).is_relative_to(os.path.realpath(final)):
            raise UsageError(f"{str(final)!r} is the current folder (or holds it), and an output folder is "
                             "replaced whole; run from another folder or write beside it (e.g. --out ../site)")
    parent = ensure_writable_dir(final.parent, "output folder")
    sweep_partials(parent, legacy_builds=kind == "build")
    return Path(tempfile.mkdtemp(prefix=partial_prefix(final.name, kind), dir=parent))


def replace_dir(tmp: Path, final: Path) -> None:
    """Move the finished folder ``tmp`` to ``final``, replacing what was there (renames only)."""
    final = Path(os.path.realpath(final))  # a link stays: the folder it points to is replaced
    if final.exists() or final.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=partial_prefix(final.name, "old"), dir=final.parent))
        os.replace(final, old / final.name)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)


@contextmanager
def staged_dir(final: Path) -> Iterator[Path]:
    """Write into the yielded hidden folder; on success it becomes ``final``, on failure it is removed."""
    tmp = make_partial_dir(final)
    try:
        yield tmp
        replace_dir(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def discard_new_run(run_dir: Path) -> bool:
    """Remove a run directory that a failed command created and that holds no trace and no spend.

    Call only for a directory that did not exist before the command: everything in it is the
    command's own. Returns whether it was removed.
    """
    from lbdata.ledger import Ledger

    if not run_dir.is_dir():
        return False
    try:
        lock = RunLock(run_dir)  # never remove a run another process writes (RunBusy when one holds it)
    except LbdataError:
        return False
    with lock:
        if (run_dir / LEDGER_FILE).exists():
            try:
                with Ledger.open(run_dir) as ledger:
                    counts = ledger.counts()
            except LbdataError:
                return False
            if counts["traces"] or counts["cost_usd"]:
                return False
        shutil.rmtree(run_dir, ignore_errors=True)
    return not run_dir.exists()
