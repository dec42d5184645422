"""The ``lbdata`` command line. Each command is a thin call into the library.

Known errors print one line on stderr and exit with their code (2 for bad input, a bad option value
included); set ``LBDATA_DEBUG=1`` for a traceback. Results go to stdout; progress and logs to stderr.

Modules: ``options`` (options derived from the settings models, shared aliases), ``run`` (generate, judge,
validate, runs, batches, show, schemas, sources), ``corpora`` (build, versions, diff, export, push),
``train`` (tiny-model, sft, grpo), ``evaluation`` (eval, attention, view, serve), ``errors`` (one-line errors).
"""

from __future__ import annotations

import logging
import os
import sys

import typer


def register_serve_processor() -> None:
    """In the model process of ``lbdata serve``, register lbdata's image-only processor.

    ``lbdata serve`` runs ``transformers serve``, which (from transformers 5.25) loads the model in a process
    started with "spawn"; that process imports this package again before it loads anything. Registering lbdata's
    image-only processor there keeps the served model's images working without torchvision.
    """
    if os.environ.get("LBDATA_SERVE_PROCESSOR") and "__mp_main__" in sys.modules:  # only in that spawned process
        from lbdata.train.processor import register as _register_processor

        _register_processor()


register_serve_processor()

from lbdata.cli import corpora, evaluation, run, train  # noqa: E402  (after the hook: it must run first)

app = typer.Typer(
    name="lbdata",
    help="Look-Back cold-start corpora: generate, validate, build, push, train, evaluate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for command in (run.generate, run.runs, run.batches, run.show, run.schemas):
    app.command()(command)
app.add_typer(train.train_app, name="train")
for command in (evaluation.serve, evaluation.view):
    app.command()(command)
app.add_typer(evaluation.eval_app, name="eval")
app.command()(evaluation.attention)
app.add_typer(run.sources_app, name="sources")
for command in (corpora.build, corpora.versions, corpora.diff, corpora.export, corpora.push, run.judge, run.validate):
    app.command()(command)


def main() -> None:
    """The console script: run the app; a known failure is one line on stderr and its exit code."""
    from lbdata.cli.errors import NoArgsIsHelpError, RedactingFilter, one_line
    from lbdata.errors import LbdataError

    logging.basicConfig(
        level=os.environ.get("LBDATA_LOG_LEVEL", "WARNING").upper(),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())
    try:
        code = app(prog_name="lbdata", standalone_mode=False)  # parsing errors come here too, to be told in one line
    except NoArgsIsHelpError:  # the help is printed already
        sys.exit(2)
    except KeyboardInterrupt:
        code = 130
    except Exception as exc:
        line = None if os.environ.get("LBDATA_DEBUG") == "1" else one_line(exc)
        if line is None:
            raise
        typer.echo(f"error: {line}", err=True)
        sys.exit(exc.exit_code if isinstance(exc, LbdataError) else 2)
    if code == 130:
        typer.echo("interrupted; re-run the same command to resume", err=True)
    if isinstance(code, int) and code:
        sys.exit(code)


__all__ = ["app", "main"]
