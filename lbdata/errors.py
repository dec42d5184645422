"""One error hierarchy. Every message says what went wrong *and* how to fix it.

The CLI prints ``str(error)`` on one line and exits with ``error.exit_code``; a traceback is shown
only when ``LBDATA_DEBUG=1``.
"""

from __future__ import annotations

import re
from typing import Any


class LbdataError(Exception):
    """Base of every error lbdata raises on purpose."""

    exit_code = 2


class UsageError(LbdataError):
    """A bad option, a bad name, a bad path: the user can fix it by changing the command."""


class ConfigError(LbdataError):
    """A configuration file or recipe is invalid (unknown key, bad value)."""


class SourceError(LbdataError):
    """A problem source cannot be opened or lacks a required column."""


class TeacherError(LbdataError):
    """A teacher cannot be used (unknown name, missing key, a request that can never succeed)."""


class RequestFailed(LbdataError):
    """One teacher request failed for good (after its retries). It is recorded; the run goes on."""


class LedgerError(LbdataError):
    """A run directory or its ledger is unusable (not SQLite, not writable, missing)."""


class WorkspaceError(LbdataError):
    """The lbdata home cannot be created or written."""


class CorpusError(LbdataError):
    """A corpus version cannot be built, found or exported."""


class BudgetExceeded(LbdataError):
    """The spending budget would be exceeded; the run stopped cleanly and can be resumed."""

    exit_code = 3


def _shown(value: Any) -> str:
    """A refused value as typed: numbers bare, anything else quoted."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return repr(value)
    return str(value)


def error_reason(error: dict[str, Any]) -> str:
    """One pydantic error (an item of ``ValidationError.errors()``) as a short reason: ``must be greater than 0
    (got 0)``. The command line and the config loaders word a refused value the same way."""
    kind, msg = error["type"], str(error["msg"]).rstrip(".")
    if kind in ("value_error", "assertion_error"):
        return re.sub(r"^(Value error|Assertion failed), ", "", msg)
    if kind.endswith("_parsing"):
        msg = msg.split(",")[0]
    msg = re.sub(r"^Input should be", "must be", msg)
    return f"{msg[:1].lower()}{msg[1:]} (got {_shown(error.get('input'))})"
