"""Writing a version's data: Parquet shards in fixed row groups, rows streamed from the book."""

from __future__ import annotations

import itertools
from pathlib import Path

from lbdata.corpus.config import DATA_DIR, SPLITS
from lbdata.corpus.inputs import Inputs
from lbdata.corpus.plan import iter_planned
from lbdata.corpus.rows import corpus_features, row_dict
from lbdata.progress import ProgressBar

ROW_GROUP_SIZE = 100
"""Rows per Parquet row group (fixed, so files are byte-identical; small, as rows carry images)."""
MAX_SHARD_BYTES = 500 * 1024 * 1024
"""A split is cut into shards of about this many bytes (image bytes plus trace text)..."""
MAX_SHARD_ROWS = 10_000
"""... and of at most this many rows (a Parquet writer holds metadata for every row group of its file)."""


def shard_sizes(inputs: Inputs, part: tuple[int, int]) -> list[int]:
    """Rows per shard of one config and split: about MAX_SHARD_BYTES each, at most MAX_SHARD_ROWS."""
    sizes = [0]
    size = 0
    for image_bytes, text_len in inputs.book.db.execute(
        "SELECT g.image_bytes, k.text_len FROM rows r JOIN kept k ON k.kid = r.kid JOIN groups g ON g.gseq = k.gseq "
        "WHERE r.config=? AND r.split=? ORDER BY r.ord, r.pos", part,
    ):
        est = image_bytes + text_len * 2
        if sizes[-1] and (size + est > MAX_SHARD_BYTES or sizes[-1] >= MAX_SHARD_ROWS):
            sizes.append(0)
            size = 0
        sizes[-1] += 1
        size += est
    return sizes


def planned_parts(inputs: Inputs) -> list[tuple[int, int]]:
    """(config index, split index) of every config and split that has rows, in corpus order."""
    return [tuple(p) for p in inputs.book.db.execute("SELECT DISTINCT config, split FROM rows ORDER BY config, split")]


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:05d}-of-{count:05d}.parquet"


def write_data(inputs: Inputs, n_rows: int, root: Path, *, progress: bool) -> None:
    """Stream the planned rows to ``root/data/<config>/<split>-*.parquet`` (images embedded), a bar on stderr."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = corpus_features().arrow_schema
    with ProgressBar("writing rows", n_rows, enabled=progress, unit="rows", transient=True) as bar:
        for part in planned_parts(inputs):
            cfg, split = inputs.config.variants[part[0]], SPLITS[part[1]]
            folder = root / DATA_DIR / cfg
            folder.mkdir(parents=True, exist_ok=True)
            sizes = shard_sizes(inputs, part)
            rows = iter_planned(inputs, part)
            for i, size in enumerate(sizes):
                with pq.ParquetWriter(folder / shard_name(split, i, len(sizes)), schema, compression="snappy") as w:
                    for start in range(0, size, ROW_GROUP_SIZE):
                        batch = [row_dict(inputs, r, with_images=True)
                                 for r in itertools.islice(rows, min(ROW_GROUP_SIZE, size - start))]
                        w.write_table(pa.Table.from_pylist(batch, schema=schema), row_group_size=ROW_GROUP_SIZE)
                        bar.update(advance=len(batch))
