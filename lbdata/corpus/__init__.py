"""Corpus versions: build, list, resolve, diff and load them.

``build_corpus(runs, name, config)`` turns the traces the validators accepted into a corpus version
``corpora/<name>/<version>/``: one Hugging Face config per back variant (``semantic_back``,
``solution_back``), splits ``train`` and ``test``, images embedded (``datasets.Image``), plus
``manifest.json`` and the dataset card ``README.md``. The version id is a hash of the canonical rows
and the build configuration, so the same inputs give the same id on any machine and building twice
makes no new version.

How rows are chosen, per config:

1. Dedup. Problems with the same images (sha256) and normalised question are one problem; traces
   with the same text for the same problem are one trace. At most ``per_problem`` traces per problem.
2. Units. A problem contributes up to ``per_problem`` units; unit ``j`` can be a back row (the j-th
   accepted back trace) or a plain row (the j-th accepted plain teacher trace, else the j-th back
   trace with its ``<back>`` segments removed and its thinks joined: mode ``derived``, which must
   itself validate as ``plain``).
3. Split. Problems sharing an image are grouped; whole groups go to ``test`` in seeded hash order
   until ``test_size`` of the problems are there, so no image is in both splits (the same split in
   every config).
4. Mix. Per config and split, the most rows whose back count is exactly
   ``round_half_up(reflection_rate × rows)``; which units become back rows is seeded hash order.

Plain rows keep the config's model-facing instruction in the user turn: the model trained on a config
sees one prompt and learns that not every answer needs a look back (the paper's reflection rate).
Memory stays flat as the corpus grows: the bookkeeping (one entry per verdict, problem, accepted trace,
unit and row) lives in a temporary SQLite database in the build's work folder and is read back in
index order, and rows are streamed to Parquet in fixed row groups.

Modules, in the order of a build: ``config`` (``BuildConfig``, configs, splits, file names), ``book``
(the scratch SQLite bookkeeping), ``inputs`` (pass 1: runs, verdicts, dedup), ``plan`` (pass 2:
splits by image component, the mix), ``rows`` (a row's text, messages and features), ``stats`` (the
card's statistics), ``write`` (Parquet shards), ``build`` (``build_corpus``: version id, manifest,
the version folder), ``card`` (the dataset card) and ``versions`` (list, resolve, load, diff).
"""


from __future__ import annotations

from lbdata.corpus.build import BuildResult, build_corpus
from lbdata.corpus.card import render_card, size_category
from lbdata.corpus.config import (
    CARD_FILE,
    CONFIGS,
    DATA_DIR,
    DEFAULT_REFLECTION_RATE,
    MANIFEST_FILE,
    SPLITS,
    BuildConfig,
)
from lbdata.corpus.inputs import normalise_question
from lbdata.corpus.plan import mix_counts
from lbdata.corpus.rows import (
    back_count,
    build_messages,
    corpus_features,
    derive_plain_text,
    derived_trace_id,
)
from lbdata.corpus.versions import (
    data_files,
    diff_versions,
    iter_rows,
    list_corpora,
    list_versions,
    load_corpus,
    read_manifest,
    resolve_version,
)
from lbdata.corpus.write import MAX_SHARD_BYTES, MAX_SHARD_ROWS, ROW_GROUP_SIZE, shard_name

__all__ = [
    "CARD_FILE",
    "CONFIGS",
    "DATA_DIR",
    "DEFAULT_REFLECTION_RATE",
    "MANIFEST_FILE",
    "MAX_SHARD_BYTES",
    "MAX_SHARD_ROWS",
    "ROW_GROUP_SIZE",
    "SPLITS",
    "BuildConfig",
    "BuildResult",
    "back_count",
    "build_corpus",
    "build_messages",
    "corpus_features",
    "data_files",
    "derive_plain_text",
    "derived_trace_id",
    "diff_versions",
    "iter_rows",
    "list_corpora",
    "list_versions",
    "load_corpus",
    "mix_counts",
    "normalise_question",
    "read_manifest",
    "render_card",
    "resolve_version",
    "shard_name",
    "size_category",
]
