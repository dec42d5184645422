"""How the command line reports what went wrong: one line on stderr, exit code 2 for bad input.

``one_line`` turns a known failure (an ``LbdataError``, a bad option value, a settings model's validation
error, a path too long, a full disk) into that line, or returns None for a bug, which keeps its traceback.
"""

from __future__ import annotations

import errno
import logging
import sqlite3

from pydantic import ValidationError

from lbdata.cli.options import settings_error
from lbdata.errors import LbdataError, error_reason

try:  # Typer 0.2x carries its own copy of click
    from typer._click.exceptions import BadParameter, MissingParameter, NoArgsIsHelpError, NoSuchOption
    from typer._click.exceptions import UsageError as ClickUsageError
except ImportError:  # pragma: no cover - older Typer on click
    from click.exceptions import BadParameter, MissingParameter, NoArgsIsHelpError, NoSuchOption
    from click.exceptions import UsageError as ClickUsageError

__all__ = ["ClickUsageError", "NoArgsIsHelpError", "RedactingFilter", "one_line"]


class RedactingFilter(logging.Filter):
    """Log lines may quote URLs (httpx, openai): credentials and query keys in them are masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        from lbdata.secrets import redact_text

        message = record.getMessage()
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def _disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return isinstance(exc, sqlite3.OperationalError) and "disk is full" in str(exc)


def _flag_of(exc: BadParameter) -> str:
    param = exc.param
    if param is None:
        return "a value"
    longs = [o for o in param.opts if o.startswith("--")]
    if longs:
        return longs[0]
    return param.opts[0] if getattr(param, "param_type_name", "") == "option" else (param.name or "").upper()


def usage_line(exc: ClickUsageError) -> str:
    """A command-line parsing error (bad value, unknown or missing option) as one line."""
    if isinstance(exc, BadParameter) and not isinstance(exc, MissingParameter):
        cause = exc.__cause__
        reason = error_reason(cause.errors()[0]) if isinstance(cause, ValidationError) and cause.errors() else (
            exc.message[:1].lower() + exc.message[1:].rstrip("."))
        return f"{_flag_of(exc)}: {reason}"
    where = exc.ctx.command_path if exc.ctx is not None else "lbdata"
    if isinstance(exc, NoSuchOption):
        close = f"; did you mean {' or '.join(exc.possibilities)}?" if exc.possibilities else ""
        return f"{exc.option_name}: no such option{close} (see `{where} --help`)"
    message = " ".join(part.strip() for part in exc.format_message().splitlines() if part.strip()).rstrip(".")
    return f"{message}; see `{where} --help`"


def one_line(exc: BaseException) -> str | None:
    """The one error line for a known failure (without ``error: ``), or None for anything else."""
    if isinstance(exc, LbdataError):
        from lbdata.secrets import redact_text

        return " ".join(part.strip() for part in redact_text(str(exc)).splitlines() if part.strip())
    if isinstance(exc, ClickUsageError):
        return usage_line(exc)
    if isinstance(exc, ValidationError) and exc.errors():
        return settings_error(exc)
    if isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG:
        name = str(exc.filename or "")
        return f"a path is too long for this system ({name[:60]}…, {len(name):,} characters); pass a shorter one"
    if isinstance(exc, OverflowError):  # a number typed too large for a C or SQLite integer
        return f"a number is too large for this system ({exc}); pass a smaller one"
    if _disk_full(exc):
        where = getattr(exc, "filename2", None) or getattr(exc, "filename", None)
        return (f"the disk is full{f' (writing {where})' if where else ''}; free some space or write elsewhere "
                "(--home, --out), then re-run the same command (finished work is kept)")
    return None
