"""Commands that look at models and data: ``eval`` (with ``compare`` and ``presets``), ``attention``, ``view``,
``serve``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lbdata.cli.options import Flag, HomeOpt, ProgressOpt, Settings, out, settings_options
from lbdata.eval import EvalConfig

EVAL_FLAGS = (Flag("variant", to_cli=lambda v: v.removesuffix("_back")), "max_new_tokens", "temperature", "limit",
              "batch_size", "seed")

# `lbdata eval --model … --data …` evaluates; `lbdata eval compare A B` and `lbdata eval presets` are
# subcommands of the same group (the group's own options run an evaluation).
eval_app = typer.Typer(
    help="Evaluate a model (accuracy, trigger rate, back statistics); `compare A B`; `presets`.",
    no_args_is_help=True,
)


@eval_app.callback(invoke_without_command=True)
@settings_options(EvalConfig, *EVAL_FLAGS)
def eval_run(
    ctx: typer.Context,
    *,
    model: Annotated[Path | None, typer.Option(help="a local checkpoint directory (run with transformers)")] = None,
    base_url: Annotated[str | None, typer.Option(help="an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")]
    = None,
    served_model: Annotated[str | None, typer.Option(help="the model name the server knows (with --base-url)")] = None,
    api_key: Annotated[
        str | None, typer.Option(help="API key of the server (default: $OPENAI_API_KEY; local servers need none)")
    ] = None,
    data: Annotated[
        list[str] | None,
        typer.Option(help="SOURCE[,SOURCE…]: a preset (mathvista), PRESET:SOURCE, or any source spec; repeatable"),
    ] = None,
    settings: Settings,
    out_dir: Annotated[Path | None, typer.Option("--out", help="output folder (default: "
                                                 "<home>/evals/<model>-<variant>-<hash>)")] = None,
    home: HomeOpt = None,
    progress: ProgressOpt = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="show the libraries' warnings and loading bars")]
    = False,
) -> None:
    """Evaluate a model: per dataset accuracy, trigger rate, well-formed rate, backs per response and where they sit.

    Writes results.jsonl (one scored response per line, readable by `generate --mode insert --base-traces`),
    summary.json and summary.md. Re-running the same command resumes.
    """
    if ctx.invoked_subcommand is not None:
        return
    from lbdata.errors import UsageError
    from lbdata.eval import (
        LocalModel,
        ServedModel,
        default_out_dir,
        evaluate,
        load_eval_data,
        split_data_specs,
    )
    from lbdata.render import render_eval
    from lbdata.workspace import home_dir

    opts = settings.build()
    if (model is None) == (base_url is None):
        raise UsageError("pass either --model PATH or --base-url URL --served-model NAME")
    if base_url is not None and not served_model:
        raise UsageError("--base-url needs --served-model NAME (the model name the server knows)")
    if model is not None and (served_model or api_key):
        raise UsageError("--served-model and --api-key go with --base-url, not with --model")
    if base_url is not None:
        from lbdata.serve import check_served_model

        check_served_model(base_url, served_model, flag="--served-model NAME", api_key=api_key)
    else:
        from lbdata.train.launch import check_model_loads

        check_model_loads(str(model))
    loaded = load_eval_data(split_data_specs(data or []), limit=opts.limit, seed=opts.seed)
    if model is not None:
        from lbdata.train.monitor import quiet_libraries

        quiet_libraries(verbose)
    generator = LocalModel(model) if model is not None else ServedModel(base_url, served_model, api_key=api_key)
    out_dir = out_dir or default_out_dir(home_dir(home), generator, opts.variant, opts.generation, loaded.datasets)
    report = evaluate(generator, loaded.items, config=opts, out_dir=out_dir, skipped=loaded.skipped, progress=progress)
    out(render_eval(report, out_dir))


@eval_app.command("compare")
def eval_compare(
    a: Annotated[Path, typer.Argument(help="an evaluation folder (or its summary.json): the baseline")],
    b: Annotated[Path, typer.Argument(help="another evaluation folder: Δ columns are B minus A")],
    more: Annotated[list[Path] | None, typer.Argument(help="more evaluation folders (e.g. base SFT GRPO)")] = None,
) -> None:
    """Put evaluations side by side, per dataset, as Markdown (three or more: a column each)."""
    from lbdata.eval import compare_reports

    out(compare_reports(a, b, *(more or [])))


@eval_app.command("presets")
def eval_presets() -> None:
    """List the benchmark presets (`--data NAME` or `--data NAME:SOURCE`)."""
    from lbdata.eval import load_presets

    for name, preset in load_presets().items():
        source = preset.source or f"(none: {preset.source_hint})"
        out(f"{name:<15} {preset.description}")
        out(f"{'':<15} source: {source}")


def attention(
    model: Annotated[Path, typer.Option(help="a local checkpoint directory")],
    image: Annotated[Path, typer.Option(help="the image file")],
    question: Annotated[str, typer.Option(help="the question about the image")],
    out_dir: Annotated[Path, typer.Option("--out", help="folder for attention.png, attention.csv, attention.json")],
    variant: Annotated[str, typer.Option(help="format instruction after the question: semantic | solution | none")]
    = "semantic",
    max_new_tokens: Annotated[int, typer.Option(help="longest generated response in tokens", min=1)] = 2048,
    response: Annotated[
        str | None, typer.Option(help="score this response (teacher-forced) instead of generating one")
    ] = None,
) -> None:
    """Image attention through the response: shares on image / question / generated tokens, <back> spans shaded."""
    from lbdata.attention import image_attention
    from lbdata.render import render_attention

    trace = image_attention(model, image, question, variant=variant, max_new_tokens=max_new_tokens, response=response)
    out(render_attention(trace, trace.write(out_dir)))


def view(
    target: Annotated[str, typer.Argument(help="a run (name or directory) or a corpus version NAME@VER")],
    diff: Annotated[
        str | None,
        typer.Option("--diff", help="another corpus version NAME@VER: show the rows added and removed from TARGET to "
                     "it"),
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="folder for the site (default: <run>/view, or <home>/views/NAME@VER)"),
    ] = None,
    open_: Annotated[bool, typer.Option("--open", help="open the site in the default web browser")] = False,
    home: HomeOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """Write a static HTML viewer (overview with plots, sample browser) that opens from disk; no server, no network."""
    import webbrowser

    from lbdata.render import render_view
    from lbdata.view import build_corpus_view, build_diff_view, build_run_view
    from lbdata.view.build import view_target

    kind, where = view_target(target, home)
    if diff is not None:
        from lbdata.errors import UsageError

        if kind != "corpus":
            raise UsageError(f"--diff compares two corpus versions, but {target!r} is a run; pass NAME@VER")
        summary = build_diff_view(str(where), diff, out_dir, home=home, progress=progress)
    elif kind == "run":
        summary = build_run_view(where, out_dir, progress=progress)
    else:
        summary = build_corpus_view(str(where), out_dir, home=home, progress=progress)
    out(render_view(summary))
    if open_ and not webbrowser.open(summary.index_html.resolve().as_uri()):
        out(f"no browser found; open {summary.index_html.resolve().as_uri()} yourself")


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
