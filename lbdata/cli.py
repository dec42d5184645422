"""The ``lbdata`` command line. Each command is a thin call into the library.

Known errors (``LbdataError``) print one line on stderr and exit with their code (2 for bad input);
set ``LBDATA_DEBUG=1`` for a traceback. Results go to stdout; progress and logs to stderr.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from lbdata.errors import LbdataError

app = typer.Typer(
    name="lbdata",
    help="Look-Back cold-start corpora: generate, validate, build, push, train, evaluate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Shared option aliases: a flag is spelled and documented the same everywhere.
HomeOpt = Annotated[
    Path | None,
    typer.Option("--home", help="lbdata home (default: $LBDATA_HOME or ./lbdata-work)", show_default=False),
]
RunArg = Annotated[str, typer.Argument(help="run name under the home, or a path to a run directory")]


def _out(text: str = "") -> None:
    typer.echo(text)


# ---------------------------------------------------------------------------- commands
# Each section below belongs to one module of the library; keep commands thin.


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("LBDATA_LOG_LEVEL", "WARNING").upper(),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        app()
    except LbdataError as exc:
        if os.environ.get("LBDATA_DEBUG") == "1":
            raise
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted; re-run the same command to resume", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
