"""Commands on corpus versions: ``build``, ``versions``, ``diff``, ``export``, ``push``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lbdata.cli.options import Flag, HomeOpt, ProgressOpt, Settings, out, settings_options
from lbdata.cli.run import short_variants
from lbdata.corpus import BuildConfig

CorpusArg = Annotated[
    str, typer.Argument(help="corpus version: NAME@VERSION (a unique prefix will do), NAME@latest or NAME")
]


def back_variants(spec: str) -> list[str]:
    """The corpus configs of ``--variant``: back variants only (plain rows are mixed into each)."""
    from lbdata.errors import UsageError
    from lbdata.records import parse_variants

    variants = parse_variants(spec)
    if "plain" in variants:
        raise UsageError("plain is not a corpus config; plain rows are mixed into each back config "
                         "(see --reflection-rate); use --variant semantic,solution")
    return variants


BUILD_FLAGS = (
    Flag("variants", ("--variant",), type=str, param="variant", to_model=back_variants, to_cli=short_variants),
    "reflection_rate", "test_size", "seed", "per_problem", "license", "judge",
    Flag("require_judged", ("--require-judged",)),
)


@settings_options(BuildConfig, *BUILD_FLAGS)
def build(
    runs: Annotated[list[str], typer.Argument(help="run names under the home (unique prefixes will do), or run "
                                              "directories")],
    name: Annotated[str, typer.Option("--name", help="corpus name (folder under corpora/)")],
    settings: Settings,
    validate_config: Annotated[
        Path | None, typer.Option(help="validator thresholds YAML (default: the built-in thresholds)")
    ] = None,
    home: HomeOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """Build a corpus version from the accepted traces of one or more runs."""
    from lbdata.corpus import build_corpus
    from lbdata.errors import UsageError
    from lbdata.render import render_build

    config = settings.build()
    if config.require_judged and config.judge is None:
        raise UsageError("--require-judged needs --judge NAME (the judge whose answers are required)")
    out(render_build(build_corpus(runs, name, config, validate_config=validate_config, home=home, progress=progress)))


def versions(
    name: Annotated[str, typer.Argument(help="corpus name")],
    home: HomeOpt = None,
) -> None:
    """List the versions of a corpus, oldest first; the last one is NAME@latest."""
    from lbdata.corpus import list_corpora, list_versions
    from lbdata.render import render_versions
    from lbdata.workspace import match_name

    items = list_versions(name, home)
    if not items:
        name = match_name(name, list_corpora(home), "corpus", "build one with `lbdata build RUN --name NAME`")
        items = list_versions(name, home)
    out(render_versions(items))


def diff(
    a: Annotated[str, typer.Argument(help="the older version, NAME@VERSION")],
    b: Annotated[str, typer.Argument(help="the newer version, NAME@VERSION")],
    home: HomeOpt = None,
) -> None:
    """Rows added, removed and changed between two corpus versions (a row is keyed by config and problem;
    `lbdata view A --diff B` shows the same rows)."""
    from lbdata.corpus import diff_versions
    from lbdata.render import render_diff

    out(render_diff(diff_versions(a, b, home)))


def export(
    corpus: CorpusArg,
    fmt: Annotated[str, typer.Option("--format", help="trl-sft | trl-grpo | llamafactory | easyr1 | verl")],
    out_dir: Annotated[Path, typer.Option("--out", help="an empty or new folder to write")],
    config: Annotated[str | None, typer.Option(help="only these configs (comma-separated; default: all)")] = None,
    home: HomeOpt = None,
) -> None:
    """Write a corpus version in the layout a trainer reads, checking the format's contract on every row."""
    from lbdata.export import export_corpus
    from lbdata.records import parse_variants

    configs = parse_variants(config) if config else None
    res = export_corpus(corpus, fmt, out_dir, configs=configs, home=home)
    for cfg, per in res.rows.items():
        out(f"{cfg:<14} " + "  ".join(f"{split} {n} rows" for split, n in per.items()))
    out(f"wrote      {res.out} ({res.format})")


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
            out(f"{size:>12,}  {path}")
    out(res.message)
    if res.url:
        out(f"commit     {res.url}")
