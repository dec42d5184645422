"""Evaluate a model: accuracy, how often it looks back, where its backs sit, how long it talks.

``evaluate(model_or_client, problems, variant)`` sends every problem to a model — a local checkpoint
run with transformers (batched, CPU or GPU) or a served model behind an OpenAI-compatible API — with
the prompt of the paper's evaluation: system "You are a helpful assistant.", a user turn of the image
then the question followed by the variant's model-facing format instruction. Each response is scored
with ``lbdata.validate`` (``answers_match`` on the last ``\\boxed{}``, ``parse_trace`` for the
segments, ``format_ok`` for the well-formed rate) and becomes one ``EvalRow``. ``EvalReport`` holds
the rows and writes ``results.jsonl`` (one row per response: the format ``generate --mode insert
--base-traces`` reads, so a model's own rollouts become the next round's base traces),
``summary.json`` and ``summary.md``; ``compare_reports`` puts two of them side by side.

Benchmarks come through presets (``eval_presets.yaml``, data, not code): ``mathvista`` or
``mathvista:parquet:PATH`` maps a benchmark's columns and prompt handling (choices to letters, yes/no
gold, question templates) onto problems; any other ``load_source`` spec is used as it is.

An evaluation with an output folder is resumable: rows are appended as batches finish, and re-running
the same command skips the problems already answered.

Modules, in the order of the data flow: ``config`` (``EvalConfig``: every setting of an evaluation,
with its default, bound and help text; ``lbdata eval`` derives its options from it), ``presets``
(benchmark column mapping), ``data`` (``--data`` specs into ``EvalItem``s), ``generators`` (the
``Generator`` interface, ``LocalModel``), ``served`` (``ServedModel``: an OpenAI-compatible server),
``scoring`` (``EvalRow``), ``report`` (metrics, summary files, comparisons) and ``loop``
(``evaluate``: batches, resume, report).
"""

from __future__ import annotations

import importlib
from typing import Any

# module -> the public names it defines, imported on first use: `lbdata --help` needs only EvalConfig, and
# importing this package must not load the sources, presets and scoring it does not ask for.
_EXPORTS: dict[str, tuple[str, ...]] = {
    "lbdata.eval.config": ("EvalConfig",),
    "lbdata.eval.data": ("EvalData", "EvalItem", "load_eval_data", "open_eval_source", "split_data_specs"),
    "lbdata.eval.generators": (
        "FAILED", "TOP_P", "Generation", "GenerationParams", "Generator", "LocalModel", "chat_messages",
        "model_fingerprint", "open_images",
    ),
    "lbdata.eval.loop": ("CONFIG_FILE", "default_out_dir", "evaluate"),
    "lbdata.eval.presets": ("LETTERS", "PRESETS_FILE", "EvalPreset", "PresetSource", "load_presets"),
    "lbdata.eval.report": (
        "COMPARED", "RESULTS_FILE", "SUMMARY_JSON", "SUMMARY_MD", "EvalReport", "compare_many", "compare_reports",
        "read_results", "read_summary", "summarize_rows", "summary_markdown",
    ),
    "lbdata.eval.scoring": ("EvalRow", "score_response"),
    "lbdata.eval.served": ("EvalRequests", "ServedModel"),
}
_HOME = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'lbdata.eval' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOME])


__all__ = sorted(_HOME, key=lambda name: (not name.isupper(), name))
