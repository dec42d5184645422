"""Commands on runs: ``generate``, ``judge``, ``validate``, ``runs``, ``batches``, ``show``, ``schemas``, ``sources show``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lbdata.cli.options import (
    ApiKeyOpt,
    Flag,
    HomeOpt,
    ProgressOpt,
    RunArg,
    Settings,
    int64,
    out,
    settings_options,
)
from lbdata.generate import GenerateConfig
from lbdata.judge import JudgeConfig


def short_variants(variants: tuple[str, ...]) -> str:
    """``("semantic_back", "solution_back")`` as typed on the command line: ``semantic,solution``."""
    return ",".join(v.removesuffix("_back") for v in variants)


def parse_variant_list(spec: str) -> list[str]:
    from lbdata.records import parse_variants

    return parse_variants(spec)


def read_endpoint_list(urls: list[str]) -> tuple[str, ...]:
    from lbdata.teachers.fleet import read_endpoints

    return tuple(read_endpoints(urls))


def _path(value: Path) -> str:
    return str(value)


CACHE = Flag("use_cache", param="cache")
PRICES = Flag("prices", type=Path | None, to_model=_path)
GENERATE_FLAGS = (
    "source", "teacher",
    Flag("variants", ("--variant",), type=str, param="variant", to_model=parse_variant_list, to_cli=short_variants),
    Flag("limit", type=int), "seed", "samples", "concurrency", "mode", "reveal_answer",
    Flag("base_traces", type=Path | None, to_model=_path), "max_attempts", "retries", "rpm", "tpm", "budget_usd",
    CACHE, PRICES,
    Flag("image_roots", ("--image-root",), type=list[str] | None, param="image_root", metavar="DIR", to_model=tuple,
         to_cli=lambda roots: list(roots) or None),
    "max_image_pixels", Flag("batch", ("--batch",)), "batch_max_requests", "batch_max_bytes", "poll_interval",
)


@settings_options(GenerateConfig, *GENERATE_FLAGS)
def generate(
    settings: Settings,
    run: Annotated[str | None, typer.Option(help="run name or directory (default: derived from the settings)")] = None,
    preset: Annotated[str | None, typer.Option(help="column preset: easyr1 | vqa | trl")] = None,
    image_col: Annotated[str | None, typer.Option(help="image column of a file/hf source")] = None,
    question_col: Annotated[str | None, typer.Option(help="question column")] = None,
    answer_col: Annotated[str | None, typer.Option(help="gold answer column")] = None,
    choices_col: Annotated[str | None, typer.Option(help="multiple-choice options column")] = None,
    id_col: Annotated[str | None, typer.Option(help="stable row id column")] = None,
    trace_col: Annotated[str | None, typer.Option(help="insert mode: column holding a base reasoning trace")] = None,
    base_url: Annotated[list[str] | None, typer.Option(help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 "
                                                       "(vLLM, SGLang, Ollama, transformers serve); repeat it, or "
                                                       "name a file with one URL a line, to spread the requests "
                                                       "over a fleet")] = None,
    endpoint_concurrency: Annotated[int | None, typer.Option(help="fleet: most requests in flight on one server "
                                                             "(default: no cap below --concurrency)", min=1)] = None,
    prefix_order: Annotated[bool, typer.Option(help="put what every variant of a problem shares (image, question) "
                                               "first, so the provider's prompt cache applies")] = True,
    api_key: ApiKeyOpt = None,
    detail: Annotated[str | None, typer.Option(help="image detail sent to the teacher: auto | low | high")] = None,
    temperature: Annotated[float | None, typer.Option(help="teacher sampling temperature (default 0.7)", min=0.0)]
    = None,
    max_tokens: Annotated[int | None, typer.Option(help="teacher completion limit (default 4096)", min=1)] = None,
    min_pixels: Annotated[int | None, typer.Option(help="images are resized to at least this many pixels", min=1)]
    = None,
    max_pixels: Annotated[int | None, typer.Option(help="images are resized to at most this many pixels", min=1)]
    = None,
    timeout: Annotated[float | None, typer.Option(help="seconds to wait for one answer (default 300)", min=0.01)]
    = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the requests, tokens and USD the run would "
                                          "spend; send nothing")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="if another generate is writing to the run, wait for it "
                                       "instead of exiting")] = False,
    home: HomeOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """Generate Look-Back traces: problems from a source go to a teacher; every trace lands in the run ledger."""
    from lbdata.errors import UsageError
    from lbdata.generate import dry_run as run_dry_run
    from lbdata.generate import generate as run_generate
    from lbdata.render import render_generate, render_generate_dry_run
    from lbdata.sources.files import PRESETS
    from lbdata.teachers.fleet import read_endpoints
    from lbdata.workspace import discard_new_run, ensure_writable_dir, home_dir, run_dir_for

    if preset is not None and preset not in PRESETS:
        raise UsageError(f"unknown preset {preset!r}; valid presets: {', '.join(PRESETS)}")
    columns = dict(PRESETS[preset]) if preset else {}
    for role, col in (("image", image_col), ("question", question_col), ("answer", answer_col),
                      ("choices", choices_col), ("id", id_col), ("trace", trace_col)):
        if col:
            columns[role] = col
    urls = read_endpoints(base_url or [])
    options = {"base_url": (urls[0] if len(urls) == 1 else urls) or None, "detail": detail,
               "temperature": temperature, "max_tokens": max_tokens, "min_pixels": min_pixels,
               "max_pixels": max_pixels, "timeout": timeout, "endpoint_concurrency": endpoint_concurrency,
               "prefix_order": None if prefix_order else False}
    config = settings.build(columns=columns, teacher_options={k: v for k, v in options.items() if v is not None})
    run_dir = run_dir_for(run or config.default_run_name(), home)
    if dry_run:
        out(render_generate_dry_run(run_dry_run(config, run_dir, api_key=api_key), config))
        return
    ensure_writable_dir(home_dir(home))
    teacher = config.teacher
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
    out(render_generate(summary, config))


JUDGE_FLAGS = (
    "model", Flag("base_url", type=list[str] | None, to_model=read_endpoint_list, to_cli=lambda urls: list(urls) or None),
    "name", "concurrency", "retries", "budget_usd", "rpm", "tpm", "detail", "temperature", "max_tokens", "timeout",
    PRICES, CACHE,
)


@settings_options(JudgeConfig, *JUDGE_FLAGS)
def judge(
    run: RunArg,
    settings: Settings,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the requests, tokens and USD; send nothing")]
    = False,
    api_key: ApiKeyOpt = None,
    home: HomeOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """Check the visual claims of every <back> against the image with a vision-language judge."""
    from lbdata.judge import judge_dry_run, judge_run
    from lbdata.render import render_judge, render_judge_dry_run
    from lbdata.workspace import resolve_run

    config = settings.build()
    run_dir = resolve_run(run, home)
    if dry_run:
        out(render_judge_dry_run(judge_dry_run(run_dir, config, api_key=api_key), config))
        return
    out(render_judge(judge_run(run_dir, config, api_key=api_key, progress=progress), run))


def validate(
    run: RunArg,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="validator thresholds YAML, e.g. `max_backs: 2` (default: the built-in thresholds)"),
    ] = None,
    workers: Annotated[int, typer.Option(help="worker processes; each validates chunks of traces", min=1,
                                               callback=int64)] = 1,
    judge: Annotated[str | None, typer.Option(help="name of an `lbdata judge` of the run: a back with a claim the "
                                              "image contradicts is back_ungrounded")] = None,
    home: HomeOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """Validate the traces of a run (tags, <back> placement, anti-empty-back, answers) and store verdicts."""
    from lbdata.render import render_validation
    from lbdata.validate import ValidationConfig, validate_run
    from lbdata.workspace import resolve_run

    cfg = ValidationConfig.from_yaml(config) if config else ValidationConfig()  # a bad file fails before the run
    run_dir = resolve_run(run, home)
    out(render_validation(validate_run(run_dir, config=cfg, workers=workers, progress=progress, judge=judge), run_dir))


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
        out(f"no runs under {runs_dir(home)}; create one with `lbdata generate`")
        return
    counts = {}
    for name in names:
        with Ledger.open(runs_dir(home) / name) as ledger:
            counts[name] = {**ledger.counts(), "per_1k": format_per_1k(run_cost(ledger).per_1k_accepted)}
    out(runs_listing(counts, style="plain" if plain else "wide" if wide else "table"))


def batches(
    run: RunArg,
    cancel: Annotated[bool, typer.Option("--cancel", help="cancel the run's batches that have not ended")] = False,
    api_key: ApiKeyOpt = None,
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
            out(f"run {run} has no batches; `lbdata generate --batch` sends a run through the Batch API")
            return
        if cancel:
            from lbdata.teachers.batch import cancel_run_batches

            for batch_id, status in cancel_run_batches(ledger, api_key):
                out(f"{batch_id}: {status}")
            rows = ledger.iter_batches()
    table = Table("batch", "state", "requests", "done", "failed", "MB", "cost $", "read back", "created")
    for r in rows:
        table.add_row(r["batch_id"] or f"({r['submission']}, not created)", r["status"], str(r.get("requests", 0)),
                      str(r.get("completed", 0)), str(r.get("failed", 0)), f"{r.get('bytes', 0) / 1e6:.1f}",
                      f"{r.get('cost_usd', 0.0):.4f}", "yes" if r["collected"] else "no", r["created_at"][:19])
    Console().print(table)


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

    from lbdata.judge import backs_of
    from lbdata.judgments import run_judgments, trace_judgments
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
            out("no traces match" + (f" the verdicts of validator settings {config_hash}; the run also has verdicts "
                                     "of other settings: pass --config FILE, the YAML given to `lbdata validate`"
                                     if others else ""))
        judges = ledger.judge_names()
        judged = run_judgments(ledger) if judges else {}
        for trace, problem, verdict in items:
            has_backs = trace.variant != "plain" and bool(backs_of(trace.text))
            judgments = trace_judgments(judges, judged.get(trace.id)) if judges and has_backs else None
            console.print(render_trace(trace, problem, verdict, judgments))


def schemas(
    check: Annotated[bool, typer.Option("--check", help="fail if schemas/ differs from records.py")] = False,
    out_dir: Annotated[Path | None, typer.Option("--out", help="folder to write (default: the project's schemas/)")]
    = None,
) -> None:
    """Write (or check) the JSON Schemas of lbdata's records."""
    from lbdata.errors import LbdataError, UsageError
    from lbdata.records import drifted_schemas, json_schemas
    from lbdata.resources import resource_dir

    target = out_dir or resource_dir("schemas")
    if check:
        drifted = drifted_schemas(target)
        if drifted:
            raise LbdataError(f"schemas out of date: {', '.join(drifted)}; run `lbdata schemas` to regenerate")
        out(f"schemas up to date ({len(json_schemas())} files in {target})")
        return
    if target.exists() and not target.is_dir():
        raise UsageError(f"{target} is a file; pass --out with a folder for the schemas")
    try:
        target.mkdir(parents=True, exist_ok=True)
        for name, text in json_schemas().items():
            (target / name).write_text(text)
    except OSError as exc:
        raise UsageError(f"cannot write the schemas to {target} ({exc.strerror or exc}); pass --out with a writable "
                         "folder") from None
    out(f"wrote {len(json_schemas())} schemas to {target}")


# `lbdata sources …`
sources_app = typer.Typer(help="Look at problem sources: sample problems with their images.", no_args_is_help=True)


@sources_app.command("show")
def sources_show(
    spec: Annotated[str, typer.Argument(help="synthetic[:family,…] | hf:ID[@split] | jsonl:PATH | parquet:PATH | "
                                        "DIR[@split]")] = "synthetic",
    n: Annotated[int, typer.Option("--n", help="number of problems to show", min=1, callback=int64)] = 8,
    out_dir: Annotated[Path, typer.Option("--out", help="folder for the images and listing.jsonl")]
    = Path("lbdata-samples"),
    seed: Annotated[int, typer.Option(help="seed of the synthetic source", callback=int64)] = 0,
) -> None:
    """Write the first N problems of a source: their images, listing.jsonl, and a table on stdout."""
    import itertools
    import json

    from lbdata.errors import UsageError
    from lbdata.records import BadRow
    from lbdata.sources import load_source

    source = load_source(spec, seed=seed)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        listing = (out_dir / "listing.jsonl").open("w", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write to {out_dir}: {exc.strerror}; pass a writable folder with --out") from exc
    with listing:
        for row in itertools.islice(source, n):
            if isinstance(row, BadRow):
                listing.write(json.dumps({"bad_row": row.model_dump(mode="json")}) + "\n")
                out(f"{row.key:<22} {'(bad row)':<16} {row.reason}: {row.detail}")
                continue
            p = row.problem
            stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in p.id)
            files = []
            for k, (ref, data) in enumerate(zip(p.images, row.images, strict=True)):
                files.append(f"{stem}-{k}.{ref.ext}")
                (out_dir / files[-1]).write_bytes(data)
            family = p.meta.get("family", p.source)
            listing.write(json.dumps({"id": p.id, "family": family, "question": p.question, "answer": p.answer,
                                      "choices": p.choices, "images": files, "meta": p.meta}, ensure_ascii=False) + "\n")
            question = p.question.split("\n", 1)[0]
            question = question if len(question) <= 60 else question[:57] + "..."
            out(f"{p.id:<22} {family:<16} {question:<60} {p.answer}")
    out(f"wrote the images and listing.jsonl to {out_dir}")
