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

# ``lbdata serve`` runs ``transformers serve``, which (from transformers 5.25) loads the model in a process
# started with "spawn"; that process imports this module again before it loads anything. Registering lbdata's
# image-only processor there keeps the served model's images working without torchvision.
if os.environ.get("LBDATA_SERVE_PROCESSOR") and "__mp_main__" in sys.modules:  # only in that spawned process
    from lbdata.train.processor import register as _register_processor

    _register_processor()

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
RunArg = Annotated[str, typer.Argument(help="run name under the home (a unique prefix will do), or a run directory")]


def _price_note(est) -> str:
    """The price part of a dry run's model line."""
    if not est.priced:
        return " (not in the price table: counted as $0)"
    return f" (${est.input_per_mtok:.2f} / ${est.output_per_mtok:.2f} per 1M input / output tokens)"


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
    source: Annotated[str, typer.Option(help="synthetic | hf:ID[@split] | jsonl:PATH | parquet:PATH | DIR[@split]")] = "synthetic",
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
    trace_col: Annotated[str | None, typer.Option(help="insert mode: column holding a base reasoning trace")] = None,
    mode: Annotated[str, typer.Option(help="write: the teacher writes whole traces; insert: it places <back> "
                                      "segments into base traces")] = "write",
    base_traces: Annotated[Path | None, typer.Option(help="insert mode: rollouts (JSONL with problem_id, response; "
                                                     "the results.jsonl of `lbdata eval`)")] = None,
    reveal_answer: Annotated[bool, typer.Option(help="show the teacher the gold answer")] = False,
    max_attempts: Annotated[int, typer.Option(help="request a trace again (new seed) until it passes validation, "
                                              "at most this many times", min=1)] = 1,
    base_url: Annotated[list[str] | None, typer.Option(help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 "
                                                       "(vLLM, SGLang, Ollama, transformers serve); repeat it, or "
                                                       "name a file with one URL a line, to spread the requests "
                                                       "over a fleet")] = None,
    endpoint_concurrency: Annotated[int | None, typer.Option(help="fleet: most requests in flight on one server "
                                                             "(default: no cap below --concurrency)", min=1)] = None,
    prefix_order: Annotated[bool, typer.Option(help="put what every variant of a problem shares (image, question) "
                                               "first, so the provider's prompt cache applies")] = True,
    batch: Annotated[bool, typer.Option("--batch", help="send the requests through the OpenAI Batch API (answers "
                                        "within 24 h, half price); re-run the same command to resume")] = False,
    batch_max_requests: Annotated[int, typer.Option(help="most requests in one batch file", min=1)] = 50_000,
    batch_max_bytes: Annotated[int, typer.Option(help="most bytes in one batch file, images encoded", min=1024)]
    = 200_000_000,
    poll_interval: Annotated[float, typer.Option(help="seconds between two looks at a submitted batch", min=0.01)]
    = 30.0,
    api_key: Annotated[str | None, typer.Option(help="API key (default: $OPENAI_API_KEY); never stored",
                                                show_default=False)] = None,
    detail: Annotated[str | None, typer.Option(help="image detail sent to the teacher: auto | low | high")] = None,
    temperature: Annotated[float | None, typer.Option(help="teacher sampling temperature (default 0.7)")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="teacher completion limit (default 4096)", min=1)] = None,
    min_pixels: Annotated[int | None, typer.Option(help="images are resized to at least this many pixels")] = None,
    max_pixels: Annotated[int | None, typer.Option(help="images are resized to at most this many pixels")] = None,
    timeout: Annotated[float | None, typer.Option(help="seconds to wait for one answer (default 300)")] = None,
    rpm: Annotated[float | None, typer.Option(help="requests per minute (default: the server's x-ratelimit headers)")] = None,
    tpm: Annotated[float | None, typer.Option(help="tokens per minute (default: the server's x-ratelimit headers)")] = None,
    retries: Annotated[int, typer.Option(help="retries of one request after 429, 5xx, timeouts or bad bodies",
                                         min=0)] = 8,
    budget_usd: Annotated[float | None, typer.Option(help="stop cleanly before the run's total spend would exceed "
                                                     "this many USD")] = None,
    prices: Annotated[Path | None, typer.Option(help="price table (YAML) merged over lbdata/prices.yaml")] = None,
    cache: Annotated[bool, typer.Option(help="answer a request from the run's cache when it was answered before; "
                                        "--no-cache sends it again")] = True,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the requests, tokens and USD the run would "
                                          "spend; send nothing")] = False,
    image_root: Annotated[list[Path] | None, typer.Option(
        "--image-root", metavar="DIR", help="a folder the source's image paths may point into, besides the source file's or "
        "dataset's own folder (repeatable)")] = None,
    max_image_pixels: Annotated[int | None, typer.Option(
        help="a source image with more pixels is a bad row, checked before decoding (default 8192x8192)",
        min=1)] = None,
    wait: Annotated[bool, typer.Option("--wait", help="if another generate is writing to the run, wait for it "
                                       "instead of exiting")] = False,
    home: HomeOpt = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar on stderr")] = True,
) -> None:
    """Generate Look-Back traces: problems from a source go to a teacher; every trace lands in the run ledger."""
    from lbdata.errors import UsageError
    from lbdata.generate import GenerateConfig
    from lbdata.generate import dry_run as run_dry_run
    from lbdata.generate import generate as run_generate
    from lbdata.records import parse_variants
    from lbdata.sources.files import PRESETS
    from lbdata.workspace import discard_new_run, ensure_writable_dir, home_dir, run_dir_for

    if preset is not None and preset not in PRESETS:
        raise UsageError(f"unknown preset {preset!r}; valid presets: {', '.join(PRESETS)}")
    if mode not in ("write", "insert"):
        raise UsageError(f"unknown mode {mode!r}; use write or insert")
    columns = dict(PRESETS[preset]) if preset else {}
    for role, col in (("image", image_col), ("question", question_col), ("answer", answer_col),
                      ("choices", choices_col), ("id", id_col), ("trace", trace_col)):
        if col:
            columns[role] = col
    from lbdata.teachers.fleet import read_endpoints

    urls = read_endpoints(base_url or [])
    options = {"base_url": (urls[0] if len(urls) == 1 else urls) or None, "detail": detail,
               "temperature": temperature, "max_tokens": max_tokens, "min_pixels": min_pixels,
               "max_pixels": max_pixels, "timeout": timeout, "endpoint_concurrency": endpoint_concurrency,
               "prefix_order": None if prefix_order else False}
    extra: dict[str, object] = {"image_roots": tuple(str(p) for p in image_root or ())}
    if max_image_pixels is not None:
        extra["max_image_pixels"] = max_image_pixels
    config = GenerateConfig(
        **extra,
        source=source,
        teacher=teacher,
        variants=tuple(parse_variants(variant)),
        limit=limit,
        seed=seed,
        samples=samples,
        mode=mode,
        concurrency=concurrency,
        columns=columns,
        teacher_options={k: v for k, v in options.items() if v is not None},
        reveal_answer=reveal_answer,
        base_traces=str(base_traces) if base_traces else None,
        max_attempts=max_attempts,
        retries=retries,
        rpm=rpm,
        tpm=tpm,
        budget_usd=budget_usd,
        use_cache=cache,
        prices=str(prices) if prices else None,
        batch=batch,
        batch_max_requests=batch_max_requests,
        batch_max_bytes=batch_max_bytes,
        poll_interval=poll_interval,
    )
    run_dir = run_dir_for(run or config.default_run_name(), home)
    if dry_run:
        est = run_dry_run(config, run_dir, api_key=api_key)
        _out("dry run    nothing sent, nothing written")
        price = _price_note(est)
        _out(f"model      {est.model}{price}")
        _out(f"problems   {est.problems}" + (f" ({est.bad_rows} bad rows)" if est.bad_rows else ""))
        if est.no_base_trace:
            _out(f"no base    {est.no_base_trace} problems without a base trace (skipped)")
        _out(f"requests   {est.requests} ({est.skipped} traces already in the ledger)")
        _out(f"prompt     {est.prompt_tokens:,} tokens (images {est.image_tokens:,})")
        _out(f"completion ~{est.completion_tokens:,} tokens ({est.typical_completion_tokens} per trace; "
             f"at most {est.max_completion_tokens:,})")
        if est.batch:
            _out(f"batches    {est.batches} batch file(s), {est.batch_bytes / 1e6:,.1f} MB with images "
                 f"(at most {batch_max_requests:,} requests and {batch_max_bytes / 1e6:,.0f} MB each)")
        _out(f"cost       ~${est.cost_usd:.2f} (at most ${est.max_cost_usd:.2f})"
             + (" at the batch price" if est.batch and est.priced else "")
             + (", before prompt-cache discounts" if est.priced else ""))
        if est.usd_per_1k_accepted == float("inf"):
            _out("cost/1k    no trace accepted so far: `lbdata show RUN --rejected` shows why")
        elif est.usd_per_1k_accepted is not None:
            _out(f"cost/1k    ~${est.usd_per_1k_accepted:.2f} per 1,000 accepted traces (the run accepts "
                 f"{est.acceptance:.0%} so far)")
        elif est.priced and est.requests:
            _out("cost/1k    per 1,000 accepted traces: validate a first part of the run (`lbdata validate RUN`) "
                 "and ask again")
        if est.max_attempts > 1:
            _out(f"note       --max-attempts {est.max_attempts}: each rejected trace is requested again, up to "
                 f"{est.max_attempts - 1} more times")
        return
    ensure_writable_dir(home_dir(home))
    if urls and teacher.startswith(("openai:", "gpt-")):
        from lbdata.serve import check_served_model

        model = teacher.split(":", 1)[1] if teacher.startswith("openai:") else teacher
        for url in urls:  # every server of a fleet must serve the model
            check_served_model(url, model, flag="--teacher openai:NAME", api_key=api_key)
    fresh = not run_dir.exists()
    try:
        summary = run_generate(config, run_dir, progress=progress, api_key=api_key, wait=wait)
    except BaseException:
        if fresh:  # a run that failed before its first trace leaves nothing behind
            discard_new_run(run_dir)
        raise
    _out(f"run        {summary.run_dir}")
    _out(f"problems   {summary.problems} ({summary.new_problems} new)")
    if summary.bad_rows:
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(summary.bad_rows_by_reason.items()))
        _out(f"bad rows   {summary.bad_rows} ({reasons})")
    if summary.no_base_trace:
        _out(f"no base    {summary.no_base_trace} problems without a base trace (skipped)")
    for v in config.variants:
        _out(f"{v:<14} {summary.traces_new.get(v, 0)} new traces")
    _out(f"skipped    {summary.traces_skipped} traces already in the ledger")
    _out(f"failures   {summary.failures}" + (
        " (" + ", ".join(f"{k}={v}" for k, v in sorted(summary.failures_by_reason.items())) + ")"
        if summary.failures else ""))
    if max_attempts > 1:
        rejected = ", ".join(f"{k}={v}" for k, v in sorted(summary.rejected_by_reason.items()))
        _out(f"accepted   {summary.accepted}; rejected attempts {summary.rejected}"
             + (f" ({rejected})" if rejected else "") + f"; no accepted trace after {max_attempts}: {summary.exhausted}")
    if summary.requests or summary.cache_hits:
        retried = ", ".join(f"{k}={v}" for k, v in sorted(summary.retries_by_reason.items()))
        _out(f"requests   {summary.requests} sent, {summary.cache_hits} from the cache"
             + (f"; retried {retried}" if retried else "")
             + (f"; {summary.truncated} truncated, asked again" if summary.truncated else ""))
        _out(f"tokens     {summary.prompt_tokens:,} prompt ({summary.cached_tokens:,} from the prompt cache), "
             f"{summary.completion_tokens:,} completion")
    for url, c in summary.endpoints.items():
        _out(f"server     {url}: {c['ok']} answered, {c['failed']} failed, cooled down {c['cooldowns']}x, "
             f"{c['state']}")
    if summary.batches:
        b = summary.batches
        _out(f"batches    {b.get('submitted', 0)} submitted, {b.get('resumed', 0)} resumed; "
             f"{b.get('lines_answered', 0)} lines answered, {b.get('lines_failed', 0)} failed or expired "
             "(sent again); `lbdata batches RUN` lists them"
             + (f"; {b['running']} still running with nothing this run needs (the next run reads them)"
                if b.get("running") else ""))
    if summary.cost_usd or summary.requests:
        _out(f"cost       ${summary.cost_usd:.4f}")
    if summary.usd_per_1k_accepted is not None:
        import math

        per_1k = summary.usd_per_1k_accepted
        _out("cost/1k    " + (f"${per_1k:.2f} per 1,000 accepted traces" if math.isfinite(per_1k)
                              else "no trace accepted yet")
             + f" (run total ${summary.run_cost_usd:.4f}, {summary.acceptance:.0%} of validated traces accepted)")
    _out(f"elapsed    {summary.elapsed_s:.1f}s")


@app.command()
def runs(
    home: HomeOpt = None,
    wide: Annotated[bool, typer.Option("--wide", help="also show the traces per variant")] = False,
    plain: Annotated[bool, typer.Option("--plain", help="tab-separated, every column, for scripts")] = False,
) -> None:
    """List the runs under the home with their counts (full run names; a unique prefix names a run too)."""
    from lbdata.ledger import Ledger
    from lbdata.pricing import format_per_1k, run_cost
    from lbdata.show import runs_listing
    from lbdata.workspace import list_run_names, runs_dir

    names = list_run_names(home)
    if not names:
        _out(f"no runs under {runs_dir(home)}; create one with `lbdata generate`")
        return
    counts = {}
    for name in names:
        with Ledger.open(runs_dir(home) / name) as ledger:
            counts[name] = {**ledger.counts(), "per_1k": format_per_1k(run_cost(ledger).per_1k_accepted)}
    _out(runs_listing(counts, style="plain" if plain else "wide" if wide else "table"))


@app.command()
def batches(
    run: RunArg,
    cancel: Annotated[bool, typer.Option("--cancel", help="cancel the run's batches that have not ended")] = False,
    api_key: Annotated[str | None, typer.Option(help="API key (default: $OPENAI_API_KEY); never stored",
                                                show_default=False)] = None,
    home: HomeOpt = None,
) -> None:
    """List the Batch API submissions of a run (`generate --batch`): state, counts, cost; --cancel cancels."""
    from rich.console import Console
    from rich.table import Table

    from lbdata.ledger import Ledger
    from lbdata.workspace import resolve_run

    with Ledger.open(resolve_run(run, home)) as ledger:
        rows = ledger.iter_batches()
        if not rows:
            _out(f"run {run} has no batches; `lbdata generate --batch` sends a run through the Batch API")
            return
        if cancel:
            from lbdata.teachers.batch import cancel_run_batches

            for batch_id, status in cancel_run_batches(ledger, api_key):
                _out(f"{batch_id}: {status}")
            rows = ledger.iter_batches()
    table = Table("batch", "state", "requests", "done", "failed", "MB", "cost $", "read back", "created")
    for r in rows:
        table.add_row(r["batch_id"] or f"({r['submission']}, not created)", r["status"], str(r.get("requests", 0)),
                      str(r.get("completed", 0)), str(r.get("failed", 0)), f"{r.get('bytes', 0) / 1e6:.1f}",
                      f"{r.get('cost_usd', 0.0):.4f}", "yes" if r["collected"] else "no", r["created_at"][:19])
    Console().print(table)


@app.command()
def show(
    run: RunArg,
    n: Annotated[int, typer.Option("--n", help="number of traces to print", min=1)] = 3,
    variant: Annotated[str | None, typer.Option(help="only this variant")] = None,
    rejected: Annotated[bool, typer.Option("--rejected", help="only traces the validators rejected")] = False,
    reason: Annotated[str | None, typer.Option(help="only traces rejected for this reason code")] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="the validator thresholds YAML the run was validated with "
                                  "(verdicts are kept per validator settings)")
    ] = None,
    home: HomeOpt = None,
) -> None:
    """Print traces of a run with their think / back / answer segments coloured."""
    from rich.console import Console

    from lbdata.ledger import Ledger
    from lbdata.records import parse_variant
    from lbdata.show import render_trace, select_traces
    from lbdata.validate import ValidationConfig
    from lbdata.workspace import resolve_run

    config_hash = (ValidationConfig.from_yaml(config) if config else ValidationConfig()).config_hash
    console = Console()
    with Ledger.open(resolve_run(run, home)) as ledger:
        items = select_traces(
            ledger, n=n, variant=parse_variant(variant) if variant else None, rejected=rejected or bool(reason),
            reason=reason, config_hash=config_hash,
        )
        if not items:
            others = [h for h in ledger.verdict_config_hashes() if h != config_hash] if (rejected or reason) else []
            _out("no traces match" + (f" the verdicts of validator settings {config_hash}; the run also has verdicts "
                                      "of other settings: pass --config FILE, the YAML given to `lbdata validate`"
                                      if others else ""))
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
    from lbdata.train.monitor import quiet_libraries
    from lbdata.train.tiny import build_tiny_model, parameter_count

    quiet_libraries()
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
        _out(f"rows       {c['rows_a']} -> {c['rows_b']}: +{c['added']} added  -{c['removed']} removed  "
             f"~{c['changed']} changed  {c['unchanged']} unchanged (by config and problem, as `lbdata diff`)")
        for (cfg, split), n in sorted(c["per_part"].items()):
            _out(f"  {cfg}/{split:<8} +{n['added']} -{n['removed']} ~{n['changed']} ={n['unchanged']}")
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


# --- eval / attention ---
# `lbdata eval --model … --data …` evaluates; `lbdata eval compare A B` and `lbdata eval presets` are
# subcommands of the same group (the group's own options run an evaluation).
eval_app = typer.Typer(
    help="Evaluate a model (accuracy, trigger rate, back statistics); `compare A B`; `presets`.",
    no_args_is_help=True,
)
app.add_typer(eval_app, name="eval")


@eval_app.callback(invoke_without_command=True)
def eval_run(
    ctx: typer.Context,
    model: Annotated[Path | None, typer.Option(help="a local checkpoint directory (run with transformers)")] = None,
    base_url: Annotated[str | None, typer.Option(help="an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")] = None,
    served_model: Annotated[str | None, typer.Option(help="the model name the server knows (with --base-url)")] = None,
    api_key: Annotated[
        str | None, typer.Option(help="API key of the server (default: $OPENAI_API_KEY; local servers need none)")
    ] = None,
    data: Annotated[
        list[str] | None,
        typer.Option(help="SOURCE[,SOURCE…]: a preset (mathvista), PRESET:SOURCE, or any source spec; repeatable"),
    ] = None,
    variant: Annotated[str, typer.Option(help="format instruction after the question: semantic | solution | none")] = "semantic",
    max_new_tokens: Annotated[int, typer.Option(help="longest response in tokens", min=1)] = 2048,
    temperature: Annotated[float, typer.Option(help="0 = greedy (the paper's evaluation); > 0 samples with top-p 0.95", min=0.0)] = 0.0,
    limit: Annotated[int | None, typer.Option(help="at most N problems per dataset", min=1)] = None,
    batch_size: Annotated[int, typer.Option(help="problems per generate call (local) or requests in flight (server)", min=1)] = 8,
    seed: Annotated[int, typer.Option(help="seed of the synthetic source and of sampling")] = 0,
    out: Annotated[Path | None, typer.Option(help="output folder (default: <home>/evals/<model>-<variant>-<hash>)")] = None,
    home: HomeOpt = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar on stderr")] = True,
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
    from lbdata.evaluate import (
        GenerationParams,
        LocalModel,
        ServedModel,
        default_out_dir,
        evaluate,
        load_eval_data,
        split_data_specs,
    )
    from lbdata.records import parse_variant
    from lbdata.workspace import home_dir

    if (model is None) == (base_url is None):
        raise UsageError("pass either --model PATH or --base-url URL --served-model NAME")
    if base_url is not None and not served_model:
        raise UsageError("--base-url needs --served-model NAME (the model name the server knows)")
    if model is not None and (served_model or api_key):
        raise UsageError("--served-model and --api-key go with --base-url, not with --model")
    variant = parse_variant(variant)
    if base_url is not None:
        from lbdata.serve import check_served_model

        check_served_model(base_url, served_model, flag="--served-model NAME", api_key=api_key)
    else:
        from lbdata.train.launch import check_model_loads

        check_model_loads(str(model))
    loaded = load_eval_data(split_data_specs(data or []), limit=limit, seed=seed)
    if model is not None:
        from lbdata.train.monitor import quiet_libraries

        quiet_libraries(verbose)
    generator = LocalModel(model) if model is not None else ServedModel(base_url, served_model, api_key=api_key)
    params = GenerationParams(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
    out_dir = out or default_out_dir(home_dir(home), generator, variant, params, loaded.datasets)
    report = evaluate(
        generator, loaded.items, variant, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed,
        batch_size=batch_size, out_dir=out_dir, skipped=loaded.skipped, progress=progress,
    )
    _out(report.to_markdown())
    failed = sum(r.finish_reason == "error" for r in report.rows)
    if failed:
        _out(f"failed     {failed} requests got no response (the reasons are in results.jsonl); "
             "re-run the same command to ask them again")
    _out(f"results    {out_dir / 'results.jsonl'}")
    _out(f"summary    {out_dir / 'summary.md'}")


@eval_app.command("compare")
def eval_compare(
    a: Annotated[Path, typer.Argument(help="an evaluation folder (or its summary.json): the baseline")],
    b: Annotated[Path, typer.Argument(help="another evaluation folder: Δ columns are B minus A")],
    more: Annotated[list[Path] | None, typer.Argument(help="more evaluation folders (e.g. base SFT GRPO)")] = None,
) -> None:
    """Put evaluations side by side, per dataset, as Markdown (three or more: a column each)."""
    from lbdata.evaluate import compare_reports

    _out(compare_reports(a, b, *(more or [])))


@eval_app.command("presets")
def eval_presets() -> None:
    """List the benchmark presets (`--data NAME` or `--data NAME:SOURCE`)."""
    from lbdata.evaluate import load_presets

    for name, preset in load_presets().items():
        source = preset.source or f"(none: {preset.source_hint})"
        _out(f"{name:<15} {preset.description}")
        _out(f"{'':<15} source: {source}")


@app.command()
def attention(
    model: Annotated[Path, typer.Option(help="a local checkpoint directory")],
    image: Annotated[Path, typer.Option(help="the image file")],
    question: Annotated[str, typer.Option(help="the question about the image")],
    out: Annotated[Path, typer.Option(help="folder for attention.png, attention.csv, attention.json")],
    variant: Annotated[str, typer.Option(help="format instruction after the question: semantic | solution | none")] = "semantic",
    max_new_tokens: Annotated[int, typer.Option(help="longest generated response in tokens", min=1)] = 2048,
    response: Annotated[
        str | None, typer.Option(help="score this response (teacher-forced) instead of generating one")
    ] = None,
) -> None:
    """Image attention through the response: shares on image / question / generated tokens, <back> spans shaded."""
    from lbdata.attention import image_attention

    trace = image_attention(model, image, question, variant=variant, max_new_tokens=max_new_tokens, response=response)
    paths = trace.write(out)
    s = trace.summary()
    spans = ", ".join(f"{a}-{b}" for a, b in trace.back_spans) or "none"
    lift = "n/a" if s["look_back_lift"] is None else f"{s['look_back_lift']:.3f}"
    _out(f"tokens     {s['response_tokens']} ({'given response' if trace.teacher_forced else 'generated'}, "
         f"{s['layers']} layers)")
    _out(f"mean share image {s['mean_image_share']:.4f}  question {s['mean_question_share']:.4f}  "
         f"generated {s['mean_generated_share']:.4f}")
    _out(f"<back>     tokens {spans}")
    _out(f"lift       {lift} ({s['look_back_lift_note']})")
    for kind, path in paths.items():
        _out(f"{kind:<10} {path}")


# --- sources show ---
sources_app = typer.Typer(help="Look at problem sources: sample problems with their images.", no_args_is_help=True)
app.add_typer(sources_app, name="sources")


@sources_app.command("show")
def sources_show(
    spec: Annotated[str, typer.Argument(help="synthetic[:family,…] | hf:ID[@split] | jsonl:PATH | parquet:PATH | DIR[@split]")
                    ] = "synthetic",
    n: Annotated[int, typer.Option("--n", help="number of problems to show", min=1)] = 8,
    out: Annotated[Path, typer.Option("--out", help="folder for the images and listing.jsonl")] = Path("lbdata-samples"),
    seed: Annotated[int, typer.Option(help="seed of the synthetic source")] = 0,
) -> None:
    """Write the first N problems of a source: their images, listing.jsonl, and a table on stdout."""
    import itertools
    import json

    from lbdata.errors import UsageError
    from lbdata.records import BadRow
    from lbdata.sources import load_source

    source = load_source(spec, seed=seed)
    try:
        out.mkdir(parents=True, exist_ok=True)
        listing = (out / "listing.jsonl").open("w", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write to {out}: {exc.strerror}; pass a writable folder with --out") from exc
    with listing:
        for row in itertools.islice(source, n):
            if isinstance(row, BadRow):
                listing.write(json.dumps({"bad_row": row.model_dump(mode="json")}) + "\n")
                _out(f"{row.key:<22} {'(bad row)':<16} {row.reason}: {row.detail}")
                continue
            p = row.problem
            stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in p.id)
            files = []
            for k, (ref, data) in enumerate(zip(p.images, row.images, strict=True)):
                files.append(f"{stem}-{k}.{ref.ext}")
                (out / files[-1]).write_bytes(data)
            family = p.meta.get("family", p.source)
            listing.write(json.dumps({"id": p.id, "family": family, "question": p.question, "answer": p.answer,
                                      "choices": p.choices, "images": files, "meta": p.meta}, ensure_ascii=False) + "\n")
            question = p.question.split("\n", 1)[0]
            question = question if len(question) <= 60 else question[:57] + "..."
            _out(f"{p.id:<22} {family:<16} {question:<60} {p.answer}")
    _out(f"wrote the images and listing.jsonl to {out}")


# --- corpus: build / versions / diff / export / push ---

CorpusArg = Annotated[str, typer.Argument(help="corpus version: NAME@VERSION (a unique prefix will do), NAME@latest or NAME")]


@app.command()
def build(
    runs: Annotated[list[str], typer.Argument(help="run names under the home (unique prefixes will do), or run directories")],
    name: Annotated[str, typer.Option("--name", help="corpus name (folder under corpora/)")],
    variant: Annotated[str, typer.Option(help="comma-separated back variants, one config each: semantic, solution")]
    = "semantic,solution",
    reflection_rate: Annotated[
        float, typer.Option(help="share of rows that contain <back> (the paper found 30-50% best)", min=0.0, max=1.0)
    ] = 0.4,
    test_size: Annotated[float, typer.Option(help="share of problems in the test split", min=0.0, max=0.99)] = 0.05,
    seed: Annotated[int, typer.Option(help="seed of the split, the mix and the row order")] = 0,
    per_problem: Annotated[int, typer.Option(help="rows per problem and config", min=1)] = 1,
    license: Annotated[str, typer.Option(help="license id for the card, e.g. cc-by-4.0")] = "unknown",
    validate_config: Annotated[
        Path | None, typer.Option(help="validator thresholds YAML (default: the built-in ValidationConfig)")
    ] = None,
    judge: Annotated[str | None, typer.Option(help="name of an `lbdata judge` of every run: a back with a claim the "
                                              "image contradicts is rejected (back_ungrounded)")] = None,
    require_judged: Annotated[bool, typer.Option("--require-judged", help="with --judge: reject back traces the "
                                                 "judge has not judged (back_unjudged)")] = False,
    home: HomeOpt = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar on stderr")] = True,
) -> None:
    """Build a corpus version from the accepted traces of one or more runs."""
    from lbdata.corpus import BuildConfig, build_corpus
    from lbdata.errors import UsageError
    from lbdata.records import parse_variants

    variants = parse_variants(variant)
    if "plain" in variants:
        raise UsageError("plain is not a corpus config; plain rows are mixed into each back config "
                         "(see --reflection-rate); use --variant semantic,solution")
    config = BuildConfig(variants=tuple(variants), reflection_rate=reflection_rate, test_size=test_size, seed=seed,
                         per_problem=per_problem, license=license, judge=judge, require_judged=require_judged)
    if require_judged and judge is None:
        raise UsageError("--require-judged needs --judge NAME (the judge whose answers are required)")
    res = build_corpus(runs, name, config, validate_config=validate_config, home=home, progress=progress)
    m = res.manifest
    _out(f"corpus     {res.name}@{res.version}" + ("" if res.created else " (already built; nothing written)"))
    _out(f"path       {res.path}")
    for cfg in m["configs"]:
        for split in ("train", "test"):
            if split not in m["counts"][cfg]:
                continue
            c = m["counts"][cfg][split]
            rate = c["back"] / c["rows"] if c["rows"] else 0.0
            _out(f"{cfg:<14} {split:<5} {c['rows']:>7} rows  {c['back']:>6} back ({rate:.1%})  "
                 f"{c['plain']:>6} plain ({c['derived']} derived)")
    if m["rejects"]:
        _out("rejected   " + ", ".join(f"{k}={v}" for k, v in sorted(m["rejects"].items())))
    if m["dropped"]:
        _out("dropped    " + ", ".join(f"{k}={v}" for k, v in sorted(m["dropped"].items())))


@app.command()
def versions(
    name: Annotated[str, typer.Argument(help="corpus name")],
    home: HomeOpt = None,
) -> None:
    """List the versions of a corpus, oldest first; the last one is NAME@latest."""
    from lbdata.corpus import list_corpora, list_versions
    from lbdata.workspace import match_name

    items = list_versions(name, home)
    if not items:
        name = match_name(name, list_corpora(home), "corpus", "build one with `lbdata build RUN --name NAME`")
        items = list_versions(name, home)
    _out(f"{'version':<13} {'created (UTC)':<20} {'parent':<13} {'rate':<5} rows train/test per config")
    for i, m in enumerate(items):
        rows = ", ".join(f"{c} " + "/".join(str(m["counts"][c].get(s, {}).get("rows", 0)) for s in ("train", "test"))
                         for c in m["configs"])
        latest = "  (latest)" if i == len(items) - 1 else ""
        _out(f"{m['version']:<13} {m['created_at'][:19]:<20} {m['parent'] or '-':<13} "
             f"{m['build']['reflection_rate']:<5} {rows}{latest}")


@app.command()
def diff(
    a: Annotated[str, typer.Argument(help="the older version, NAME@VERSION")],
    b: Annotated[str, typer.Argument(help="the newer version, NAME@VERSION")],
    home: HomeOpt = None,
) -> None:
    """Rows added, removed and changed between two corpus versions (a row is keyed by config and problem;
    `lbdata view A --diff B` shows the same rows)."""
    from lbdata.corpus import diff_versions

    d = diff_versions(a, b, home)
    _out(f"{d['a']['name']}@{d['a']['version']} -> {d['b']['name']}@{d['b']['version']}")
    for cfg, c in d["configs"].items():
        _out(f"{cfg:<14} +{c['added']} added  -{c['removed']} removed  ~{c['changed']} changed  "
             f"{c['unchanged']} unchanged")
        for split in ("train", "test"):
            ra = d["a"]["counts"].get(cfg, {}).get(split, {}).get("rows", 0)
            rb = d["b"]["counts"].get(cfg, {}).get(split, {}).get("rows", 0)
            _out(f"{'':<14} {split:<5} rows {ra} -> {rb}")


@app.command()
def export(
    corpus: CorpusArg,
    fmt: Annotated[str, typer.Option("--format", help="trl-sft | trl-grpo | llamafactory | easyr1 | verl")],
    out: Annotated[Path, typer.Option(help="an empty or new folder to write")],
    config: Annotated[str | None, typer.Option(help="only these configs (comma-separated; default: all)")] = None,
    home: HomeOpt = None,
) -> None:
    """Write a corpus version in the layout a trainer reads, checking the format's contract on every row."""
    from lbdata.export import export_corpus
    from lbdata.records import parse_variants

    configs = parse_variants(config) if config else None
    res = export_corpus(corpus, fmt, out, configs=configs, home=home)
    for cfg, per in res.rows.items():
        _out(f"{cfg:<14} " + "  ".join(f"{split} {n} rows" for split, n in per.items()))
    _out(f"wrote      {res.out} ({res.format})")


@app.command()
def push(
    corpus: CorpusArg,
    repo: Annotated[str, typer.Option(help="Hub dataset id ORG/NAME")],
    private: Annotated[bool, typer.Option("--private", help="create the repo private")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="stage and list the files; upload nothing")] = False,
    home: HomeOpt = None,
) -> None:
    """Push a corpus version to the Hugging Face Hub (token from HF_TOKEN or `hf auth login`)."""
    from lbdata.hub import push_corpus

    res = push_corpus(corpus, repo, private=private, dry_run=dry_run, home=home)
    if dry_run:
        for path, size in res.files:
            _out(f"{size:>12,}  {path}")
    _out(res.message)
    if res.url:
        _out(f"commit     {res.url}")


# --- validate ---


@app.command()
def judge(
    run: RunArg,
    model: Annotated[str, typer.Option(help="the judge: a vision-language model (gpt-4o, or the name a server "
                                       "serves)")] = "gpt-4o",
    base_url: Annotated[list[str] | None, typer.Option(help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 "
                                                       "(default: the OpenAI API); repeatable")] = None,
    name: Annotated[str | None, typer.Option(help="the judge's name in the run, for validate/build --judge "
                                             "(default: from the model)")] = None,
    concurrency: Annotated[int, typer.Option(help="cap on judge requests in flight", min=1)] = 8,
    retries: Annotated[int, typer.Option(help="retries of one request (429, 5xx, timeouts, malformed answers)",
                                         min=0)] = 3,
    budget_usd: Annotated[float | None, typer.Option(help="stop cleanly before this judge's spend on the run would "
                                                     "exceed this many USD")] = None,
    rpm: Annotated[float | None, typer.Option(help="requests per minute")] = None,
    tpm: Annotated[float | None, typer.Option(help="tokens per minute")] = None,
    detail: Annotated[str, typer.Option(help="image detail sent to the judge: auto | low | high")] = "auto",
    temperature: Annotated[float, typer.Option(help="judge sampling temperature", min=0.0)] = 0.0,
    max_tokens: Annotated[int, typer.Option(help="judge completion limit", min=1)] = 1024,
    timeout: Annotated[float, typer.Option(help="seconds to wait for one answer", min=0.01)] = 300.0,
    prices: Annotated[Path | None, typer.Option(help="price table (YAML) merged over lbdata/prices.yaml")] = None,
    cache: Annotated[bool, typer.Option(help="answer a request from the run's cache when it was answered before")]
    = True,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the requests, tokens and USD; send nothing")]
    = False,
    api_key: Annotated[str | None, typer.Option(help="API key (default: $OPENAI_API_KEY); never stored",
                                                show_default=False)] = None,
    home: HomeOpt = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar on stderr")] = True,
) -> None:
    """Check the visual claims of every <back> against the image with a vision-language judge."""
    from lbdata.judge import JudgeConfig, judge_dry_run, judge_run
    from lbdata.teachers.fleet import read_endpoints
    from lbdata.workspace import resolve_run

    run_dir = resolve_run(run, home)
    config = JudgeConfig(model=model, name=name, base_url=tuple(read_endpoints(base_url or [])), detail=detail,
                         temperature=temperature, max_tokens=max_tokens, timeout=timeout, concurrency=concurrency,
                         retries=retries, rpm=rpm, tpm=tpm, budget_usd=budget_usd, use_cache=cache,
                         prices=str(prices) if prices else None)
    if dry_run:
        est = judge_dry_run(run_dir, config, api_key=api_key)
        _out("dry run    nothing sent, nothing written")
        price = _price_note(est)
        _out(f"judge      {config.judge_name()}: {est.model}{price}")
        _out(f"requests   {est.requests} back traces ({est.skipped} judged already)")
        _out(f"prompt     {est.prompt_tokens:,} tokens (images {est.image_tokens:,})")
        _out(f"completion ~{est.completion_tokens:,} tokens ({est.typical_completion_tokens} per judgment; "
             f"at most {est.max_completion_tokens:,})")
        _out(f"cost       ~${est.cost_usd:.2f} (at most ${est.max_cost_usd:.2f})")
        return
    s = judge_run(run_dir, config, api_key=api_key, progress=progress)
    _out(f"run        {s.run_dir}")
    _out(f"judge      {s.name} ({s.judge_hash})")
    _out(f"traces     {s.back_traces} with <back>; {s.skipped} judged already")
    _out(f"judged     {s.judged}: {s.claims} claims, {s.claims_refuted} refuted, {s.claims_unknown} undecidable; "
         f"{s.refuted_traces} traces with a refuted claim")
    _out(f"unjudged   {s.unjudged}" + (" (" + ", ".join(f"{k}={v}" for k, v in sorted(s.unjudged_by_reason.items()))
                                        + "; re-run to ask again)" if s.unjudged else ""))
    retried = ", ".join(f"{k}={v}" for k, v in sorted(s.retries_by_reason.items()))
    _out(f"requests   {s.requests} sent, {s.cache_hits} from the cache" + (f"; retried {retried}" if retried else ""))
    _out(f"tokens     {s.prompt_tokens:,} prompt, {s.completion_tokens:,} completion")
    _out(f"cost       ${s.cost_usd:.4f}")
    _out(f"next       lbdata validate {run} --judge {s.name}")


@app.command()
def validate(
    run: RunArg,
    config: Annotated[
        Path | None, typer.Option("--config", help="validator thresholds YAML (keys: the ValidationConfig fields)")
    ] = None,
    workers: Annotated[int, typer.Option(help="worker processes; each validates chunks of traces", min=1)] = 1,
    judge: Annotated[str | None, typer.Option(help="name of an `lbdata judge` of the run: a back with a claim the "
                                              "image contradicts is back_ungrounded")] = None,
    home: HomeOpt = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar on stderr")] = True,
) -> None:
    """Validate the traces of a run (tags, <back> placement, anti-empty-back, answers) and store verdicts."""
    from lbdata.validate import ValidationConfig, validate_run
    from lbdata.workspace import resolve_run

    run_dir = resolve_run(run, home)
    cfg = ValidationConfig.from_yaml(config) if config else ValidationConfig()
    r = validate_run(run_dir, config=cfg, workers=workers, progress=progress, judge=judge)
    _out(f"run        {r.run}")
    _out(f"config     {r.config_hash}")
    _out(f"traces     {r.traces} (validated now: {r.validated_now}, {r.traces_per_s:,.0f} traces/s)")
    _out(f"accepted   {r.accepted}   rejected {r.rejected}")
    for variant, c in r.per_variant.items():
        share = c.accepted / c.traces if c.traces else 0.0
        _out(f"  {variant:<14} {c.traces:>7} traces  {c.accepted:>7} accepted ({share:.1%})  {c.rejected:>7} rejected")
    _out(f"answers    {r.answer_match_rate:.1%} match the gold ({r.answer_timeouts} checks timed out)")
    if r.reasons:
        _out("reasons")
        for code, n in r.reasons.items():
            _out(f"  {code:<26} {n:>7}")
    _out(f"wrote      {run_dir / 'validation.json'} and validation.md")


# --- train sft / grpo (lbdata.train.sft, lbdata.train.grpo) ---

RecipeOpt = Annotated[
    str | None, typer.Option("--recipe", help="recipe YAML file or built-in name (sft, grpo, tiny-sft, tiny-grpo)")
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="override a recipe key, KEY=VALUE (the value is read as YAML); repeatable"),
]
DeepSpeedOpt = Annotated[
    str | None,
    typer.Option("--deepspeed", help="zero2 | zero3 | zero3-offload | a DeepSpeed JSON file (launches accelerate)"),
]
NumProcessesOpt = Annotated[
    int | None,
    typer.Option("--num-processes", min=1, help="training processes; >1 launches accelerate (default: one per GPU)"),
]
LoraOpt = Annotated[bool, typer.Option("--lora", help="train a LoRA adapter (merged into the saved model)")]
VerboseOpt = Annotated[
    bool, typer.Option("--verbose", "-v", help="show the libraries' warnings and loading bars (hidden by default)")
]
TrainOutOpt = Annotated[Path | None, typer.Option("--out", help="output directory for the trained model")]
ResumeOpt = Annotated[bool, typer.Option(
    "--resume", help="resume from the last checkpoint in --out (an interrupted run of the same job resumes by itself)")]
ResumeFromOpt = Annotated[Path | None, typer.Option("--resume-from", help="resume from this checkpoint-N folder")]
OverwriteOpt = Annotated[bool, typer.Option(
    "--overwrite", help="start over in --out, deleting the checkpoints and run files of an earlier run there")]


def _print_trained(record: dict, out: Path) -> None:
    metrics = record.get("metrics", {})
    _out(f"model      {out}")
    _out(f"data       {record['data']} ({record['config']}), {record['rows']['train']} rows")
    if record.get("resumed_at"):
        _out(f"resumed    at step {', '.join(map(str, record['resumed_at']))} of {record['global_step']}")
    if "first_logged_loss" in metrics:
        _out(f"loss       {metrics['first_logged_loss']:.4f} -> {metrics['last_logged_loss']:.4f}")
    if "eval_loss" in metrics:
        _out(f"eval loss  {metrics['eval_loss']:.4f}")
    labels = {"rewards/accuracy_reward/mean": "accuracy", "rewards/look_back_format_reward/mean": "format",
              "look_back/trigger_rate": "trigger rate"}
    shown = [f"{label} {metrics[key]:.3f}" for key, label in labels.items() if key in metrics]
    if shown:
        _out("rewards    " + ", ".join(shown) + " (last logged step)")
    _out(f"card       {out / 'README.md'}")


def _train(kind: str, job, out_of) -> None:
    """Train in this process, or re-run under `accelerate launch` for several processes or DeepSpeed."""
    import json

    from lbdata.train.common import RUN_FILE
    from lbdata.train.launch import needs_launch, relaunch
    from lbdata.train.model import mixed_precision

    recipe, out = out_of(job)  # resolves and checks everything before a model loads or any process starts
    if needs_launch(job.num_processes, job.deepspeed):
        job.out = str(out)
        relaunch(kind, job.model_dump(), out, mixed_precision=mixed_precision(recipe.values))
        record = json.loads((out / RUN_FILE).read_text(encoding="utf-8"))
    else:
        from lbdata.train.grpo import train_grpo
        from lbdata.train.sft import train_sft

        result = (train_sft if kind == "sft" else train_grpo)(job)
        out, record = result.out, result.record
    _print_trained(record, out)


@train_app.command("sft")
def train_sft_command(
    corpus: Annotated[str, typer.Option("--corpus", help="corpus version NAME@VER (NAME@latest, or a version folder)")],
    model: Annotated[str | None, typer.Option("--model", help="base model directory or Hub id (else the recipe's)")]
    = None,
    config: Annotated[str, typer.Option("--config", help="corpus config: semantic_back | solution_back")]
    = "semantic_back",
    recipe: RecipeOpt = None,
    deepspeed: DeepSpeedOpt = None,
    num_processes: NumProcessesOpt = None,
    lora: LoraOpt = False,
    out: TrainOutOpt = None,
    set_: SetOpt = None,
    home: HomeOpt = None,
    verbose: VerboseOpt = False,
    resume: ResumeOpt = False,
    resume_from: ResumeFromOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Supervised fine-tuning on a corpus version (TRL SFTTrainer): assistant-turn loss, images never truncated."""
    from lbdata.corpus import resolve_version
    from lbdata.train.recipes import parse_overrides
    from lbdata.train.resume import resume_option, settle_resume
    from lbdata.train.sft import SFTJob, resolve_out, sft_identity, sft_recipe

    job = SFTJob(corpus=corpus, config=config, model=model, recipe=recipe, overrides=parse_overrides(set_ or []),
                 lora=lora, out=str(out) if out else None, home=str(home) if home else None, deepspeed=deepspeed,
                 num_processes=num_processes, verbose=verbose, resume=resume_option(resume, resume_from),
                 overwrite=overwrite)

    def out_of(job: SFTJob):
        from lbdata.train.launch import check_corpus_config, check_model_loads

        corpus_dir = resolve_version(job.corpus, job.home)
        job.corpus = str(corpus_dir.resolve())  # every process trains on this version, even if a newer one appears
        check_corpus_config(corpus_dir, job.config)
        recipe = sft_recipe(job)
        check_model_loads(str(recipe.values["model_name_or_path"]))
        out = resolve_out(job, corpus_dir).resolve()
        settle_resume(job, out, sft_identity(job, recipe, corpus_dir))
        return recipe, out

    _train("sft", job, out_of)


@train_app.command("grpo")
def train_grpo_command(
    data: Annotated[str, typer.Option("--data", help="corpus NAME@VER, or a source: hf:ID, jsonl:PATH, parquet:PATH")],
    model: Annotated[str | None, typer.Option("--model", help="model directory (usually the SFT output) or Hub id")]
    = None,
    config: Annotated[
        str | None, typer.Option("--config", help="corpus config / back variant (default: the recipe's variant)")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="at most N problems")] = None,
    recipe: RecipeOpt = None,
    deepspeed: DeepSpeedOpt = None,
    num_processes: NumProcessesOpt = None,
    lora: LoraOpt = False,
    out: TrainOutOpt = None,
    set_: SetOpt = None,
    home: HomeOpt = None,
    verbose: VerboseOpt = False,
    resume: ResumeOpt = False,
    resume_from: ResumeFromOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """GRPO with the accuracy and Look-Back format rewards (TRL GRPOTrainer); prompts carry the format instruction."""
    from lbdata.train.grpo import GRPOJob, grpo_identity, grpo_recipe, resolve_out
    from lbdata.train.recipes import parse_overrides
    from lbdata.train.resume import resume_option, settle_resume

    job = GRPOJob(data=data, config=config, limit=limit, model=model, recipe=recipe,
                  overrides=parse_overrides(set_ or []), lora=lora, out=str(out) if out else None,
                  home=str(home) if home else None, deepspeed=deepspeed, num_processes=num_processes, verbose=verbose,
                  resume=resume_option(resume, resume_from), overwrite=overwrite)

    def out_of(job: GRPOJob):
        from lbdata.corpus import resolve_version
        from lbdata.train.grpo import is_source_spec
        from lbdata.train.launch import check_corpus_config, check_model_loads

        r = grpo_recipe(job)
        if not is_source_spec(job.data):
            check_corpus_config(resolve_version(job.data, job.home), str(r.values.get("variant") or "semantic_back"))
        check_model_loads(str(r.values["model_name_or_path"]))
        out = resolve_out(job, str(r.values["model_name_or_path"])).resolve()
        settle_resume(job, out, grpo_identity(job, r))
        return r, out

    _train("grpo", job, out_of)


def _settings_error(exc: BaseException) -> str | None:
    """One line for a settings model's validation error, naming the flag (``--rpm 0``)."""
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError) or not exc.errors():
        return None
    first = exc.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else ""
    flag = "--" + field.replace("_", "-") if field else "a setting"
    return f"{flag}: {first['msg'][:1].lower()}{first['msg'][1:]}; fix the value (see --help)"


class _RedactingFilter(logging.Filter):
    """Log lines may quote URLs (httpx, openai): credentials and query keys in them are masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        from lbdata.secrets import redact_text

        message = record.getMessage()
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def _disk_full(exc: BaseException) -> bool:
    import errno
    import sqlite3

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return isinstance(exc, sqlite3.OperationalError) and "disk is full" in str(exc)


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("LBDATA_LOG_LEVEL", "WARNING").upper(),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(_RedactingFilter())
    try:
        app()
    except LbdataError as exc:
        if os.environ.get("LBDATA_DEBUG") == "1":
            raise
        from lbdata.secrets import redact_text

        message = " ".join(part.strip() for part in redact_text(str(exc)).splitlines() if part.strip())  # one line
        typer.echo(f"error: {message}", err=True)
        sys.exit(exc.exit_code)
    except Exception as exc:
        if os.environ.get("LBDATA_DEBUG") == "1":
            raise
        line = _settings_error(exc)
        if line is not None:
            typer.echo(f"error: {line}", err=True)
            sys.exit(2)
        import errno

        if isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG:
            name = str(exc.filename or "")
            typer.echo(f"error: a path is too long for this system ({name[:60]}…, {len(name):,} characters); "
                       "pass a shorter one", err=True)
            sys.exit(2)
        if not _disk_full(exc):
            raise
        where = getattr(exc, "filename2", None) or getattr(exc, "filename", None)
        typer.echo(f"error: the disk is full{f' (writing {where})' if where else ''}; free some space or write "
                   "elsewhere (--home, --out), then re-run the same command (finished work is kept)", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted; re-run the same command to resume", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
