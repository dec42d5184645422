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


# --- generate / runs / show / schemas ---

VariantOpt = Annotated[
    str, typer.Option("--variant", help="comma-separated variants: semantic, solution, plain")
]


@app.command()
def generate(
    source: Annotated[str, typer.Option(help="synthetic | hf:ID[@split] | jsonl:PATH | parquet:PATH | DIR")] = "synthetic",
    teacher: Annotated[str, typer.Option(help="scene | gpt-4o | openai:MODEL | a plug-in name")] = "scene",
    variant: VariantOpt = "semantic,solution",
    limit: Annotated[int, typer.Option(help="number of source problems to use", min=1)] = 200,
    seed: Annotated[int, typer.Option(help="seed of the synthetic source and of sampling")] = 0,
    samples: Annotated[int, typer.Option(help="traces per problem and variant", min=1)] = 1,
    concurrency: Annotated[int, typer.Option(help="cap on teacher requests in flight", min=1)] = 8,
    run: Annotated[str | None, typer.Option(help="run name or directory (default: derived from the settings)")] = None,
    preset: Annotated[str | None, typer.Option(help="column preset: easyr1 | vqa | trl")] = None,
    image_col: Annotated[str | None, typer.Option(help="image column of a file/hf source")] = None,
    question_col: Annotated[str | None, typer.Option(help="question column")] = None,
    answer_col: Annotated[str | None, typer.Option(help="gold answer column")] = None,
    choices_col: Annotated[str | None, typer.Option(help="multiple-choice options column")] = None,
    id_col: Annotated[str | None, typer.Option(help="stable row id column")] = None,
    home: HomeOpt = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar on stderr")] = True,
) -> None:
    """Generate Look-Back traces: problems from a source go to a teacher; every trace lands in the run ledger."""
    from lbdata.generate import GenerateConfig, generate as run_generate
    from lbdata.records import parse_variants
    from lbdata.sources.files import PRESETS
    from lbdata.workspace import ensure_writable_dir, home_dir, run_dir_for

    from lbdata.errors import UsageError

    if preset is not None and preset not in PRESETS:
        raise UsageError(f"unknown preset {preset!r}; valid presets: {', '.join(PRESETS)}")
    columns = dict(PRESETS[preset]) if preset else {}
    for role, col in (("image", image_col), ("question", question_col), ("answer", answer_col),
                      ("choices", choices_col), ("id", id_col)):
        if col:
            columns[role] = col
    config = GenerateConfig(
        source=source,
        teacher=teacher,
        variants=tuple(parse_variants(variant)),
        limit=limit,
        seed=seed,
        samples=samples,
        concurrency=concurrency,
        columns=columns,
    )
    ensure_writable_dir(home_dir(home))
    run_dir = run_dir_for(run or config.default_run_name(), home)
    summary = run_generate(config, run_dir, progress=progress)
    _out(f"run        {summary.run_dir}")
    _out(f"problems   {summary.problems} ({summary.new_problems} new)")
    if summary.bad_rows:
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(summary.bad_rows_by_reason.items()))
        _out(f"bad rows   {summary.bad_rows} ({reasons})")
    for v in config.variants:
        _out(f"{v:<14} {summary.traces_new.get(v, 0)} new traces")
    _out(f"skipped    {summary.traces_skipped} traces already in the ledger")
    _out(f"failures   {summary.failures}")
    if summary.cost_usd:
        _out(f"cost       ${summary.cost_usd:.4f}")
    _out(f"elapsed    {summary.elapsed_s:.1f}s")


@app.command()
def runs(home: HomeOpt = None) -> None:
    """List the runs under the home with their counts."""
    from rich.console import Console
    from rich.table import Table

    from lbdata.ledger import Ledger
    from lbdata.workspace import list_run_names, runs_dir

    names = list_run_names(home)
    if not names:
        _out(f"no runs under {runs_dir(home)}; create one with `lbdata generate`")
        return
    table = Table("run", "problems", "traces", "by variant", "failed", "bad rows", "cost $")
    for name in names:
        with Ledger.open(runs_dir(home) / name) as ledger:
            c = ledger.counts()
        by_var = ", ".join(f"{k}={v}" for k, v in sorted(c["traces_by_variant"].items()))
        table.add_row(name, str(c["problems"]), str(c["traces"]), by_var, str(c["failed"]), str(c["bad_rows"]),
                      f"{c['cost_usd']:.4f}")
    Console().print(table)


@app.command()
def show(
    run: RunArg,
    n: Annotated[int, typer.Option("--n", help="number of traces to print", min=1)] = 3,
    variant: Annotated[str | None, typer.Option(help="only this variant")] = None,
    rejected: Annotated[bool, typer.Option("--rejected", help="only traces the validators rejected")] = False,
    reason: Annotated[str | None, typer.Option(help="only traces rejected for this reason code")] = None,
    home: HomeOpt = None,
) -> None:
    """Print traces of a run with their think / back / answer segments coloured."""
    from rich.console import Console

    from lbdata.ledger import Ledger
    from lbdata.records import parse_variant
    from lbdata.show import render_trace, select_traces
    from lbdata.workspace import resolve_run

    console = Console()
    with Ledger.open(resolve_run(run, home)) as ledger:
        items = select_traces(
            ledger, n=n, variant=parse_variant(variant) if variant else None, rejected=rejected or bool(reason),
            reason=reason,
        )
        if not items:
            _out("no traces match")
        for trace, problem, verdict in items:
            console.print(render_trace(trace, problem, verdict))


@app.command()
def schemas(
    check: Annotated[bool, typer.Option("--check", help="fail if schemas/ differs from records.py")] = False,
    out: Annotated[Path | None, typer.Option(help="folder to write (default: the project's schemas/)")] = None,
) -> None:
    """Write (or check) the JSON Schemas of lbdata's records."""
    from lbdata.errors import LbdataError
    from lbdata.records import drifted_schemas, json_schemas
    from lbdata.resources import resource_dir

    target = out or resource_dir("schemas")
    if check:
        drifted = drifted_schemas(target)
        if drifted:
            raise LbdataError(f"schemas out of date: {', '.join(drifted)}; run `lbdata schemas` to regenerate")
        _out(f"schemas up to date ({len(json_schemas())} files in {target})")
        return
    target.mkdir(parents=True, exist_ok=True)
    for name, text in json_schemas().items():
        (target / name).write_text(text)
    _out(f"wrote {len(json_schemas())} schemas to {target}")


# --- train (tiny model) / serve ---
# `lbdata train …`: one sub-app for every training command (tiny-model here; sft and grpo join it).
train_app = typer.Typer(
    help="Train models on lbdata corpora (and build the tiny offline Qwen2.5-VL).", no_args_is_help=True
)
app.add_typer(train_app, name="train")


@train_app.command("tiny-model")
def train_tiny_model(
    out: Annotated[Path, typer.Option("--out", help="new or empty directory, or an earlier tiny model")],
    seed: Annotated[int, typer.Option(help="seed of the random weights; same seed, same files")] = 0,
) -> None:
    """Build a tiny random-weight Qwen2.5-VL with a local tokenizer and an image-only processor (offline)."""
    from lbdata.train.tiny import build_tiny_model, parameter_count

    path = build_tiny_model(out, seed=seed)
    _out(f"wrote a tiny Qwen2.5-VL ({parameter_count(path):,} parameters) to {path}")


@app.command()
def serve(
    model_dir: Annotated[Path, typer.Argument(help="a local model directory (lbdata train tiny-model)")],
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
) -> None:
    """Serve a local model over the OpenAI API (`transformers serve`, with lbdata's image processor)."""
    from lbdata.serve import check_servable, serve_model

    name = check_servable(model_dir)
    typer.echo(f"serving at http://{host}:{port}/v1 as model {str(name)!r}; Ctrl-C stops", err=True)
    serve_model(name, host=host, port=port)


# --- view ---


@app.command()
def view(
    target: Annotated[str, typer.Argument(help="a run (name or directory) or a corpus version NAME@VER")],
    diff: Annotated[
        str | None,
        typer.Option("--diff", help="another corpus version NAME@VER: show the rows added and removed from TARGET to it"),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="folder for the site (default: <run>/view, or <home>/views/NAME@VER)"),
    ] = None,
    open_: Annotated[bool, typer.Option("--open", help="open the site in the default web browser")] = False,
    home: HomeOpt = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar on stderr")] = True,
) -> None:
    """Write a static HTML viewer (overview with plots, sample browser) that opens from disk; no server, no network."""
    import webbrowser

    from lbdata.view import build_corpus_view, build_diff_view, build_run_view
    from lbdata.view.build import view_target

    kind, where = view_target(target, home)
    if diff is not None:
        from lbdata.errors import UsageError

        if kind != "corpus":
            raise UsageError(f"--diff compares two corpus versions, but {target!r} is a run; pass NAME@VER")
        summary = build_diff_view(str(where), diff, out, home=home, progress=progress)
    elif kind == "run":
        summary = build_run_view(where, out, progress=progress)
    else:
        summary = build_corpus_view(str(where), out, home=home, progress=progress)
    c = summary.counts
    _out(f"site       {summary.index_html}")
    if summary.kind == "diff":
        _out(f"rows       {c['rows_a']} -> {c['rows_b']}: {c['added']} added, {c['removed']} removed, {c['kept']} kept")
        for (cfg, split), n in sorted(c["per_part"].items()):
            _out(f"  {cfg}/{split:<8} +{n['added']} -{n['removed']} ={n['kept']}")
    elif summary.kind == "run":
        _out(f"traces     {summary.rows} ({c['accepted']} accepted, {c['rejected']} rejected, "
             f"{c['unvalidated']} without a verdict)")
    else:
        _out(f"rows       {summary.rows}")
    _out(f"shards     {summary.shards}")
    _out(f"images     {summary.images} ({summary.thumbnails_made} new thumbnails, {summary.missing_images} missing)")
    _out(f"size       {summary.bytes / 1e6:.1f} MB")
    _out(f"elapsed    {summary.elapsed_s:.1f}s")
    if open_ and not webbrowser.open(summary.index_html.resolve().as_uri()):
        _out(f"no browser found; open {summary.index_html.resolve().as_uri()} yourself")


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
