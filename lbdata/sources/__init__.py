"""Problem sources: the built-in synthetic source, local files, and Hugging Face datasets.

``load_source(spec)`` maps a spec to a source:

- ``synthetic`` — Pillow-drawn problems with exact answers (offline default);
- ``hf:<dataset-id>[@split]`` — a Hugging Face dataset (``datasets.load_dataset``);
- ``jsonl:PATH`` / ``parquet:PATH`` — local files; images as paths (relative to the file), bytes or dicts;
- ``DIR[@split]``: a folder written by ``Dataset.save_to_disk`` (``@split`` picks a split of a DatasetDict).
"""

from __future__ import annotations

from typing import Any

from lbdata.errors import UsageError
from lbdata.sources.base import Source, SourceRow

_FILE_ONLY = ("image_roots", "max_image_pixels", "max_image_bytes")
KINDS = ("synthetic", "hf:<dataset-id>[@split]", "jsonl:PATH", "parquet:PATH",
         "DIR[@split] (a folder written by Dataset.save_to_disk)")


def load_source(spec: str, *, seed: int = 0, columns: dict[str, str] | None = None, **options: Any) -> Source:
    """Open the source named by ``spec``. Unknown specs raise a one-line error listing the valid kinds."""
    spec = spec.strip()
    if spec == "synthetic" or spec.startswith("synthetic:"):
        from lbdata.sources.synthetic import SyntheticSource

        families = spec.split(":", 1)[1].split(",") if ":" in spec else None
        for name in _FILE_ONLY:  # the synthetic source draws its images; it reads no files
            options.pop(name, None)
        return SyntheticSource(seed=seed, families=families, **options)
    from lbdata.sources.files import split_saved_spec

    if spec.startswith(("hf:", "jsonl:", "parquet:")) or split_saved_spec(spec)[0] is not None:
        from lbdata.sources.files import FileSource

        return FileSource(spec, columns=columns, **options)
    raise UsageError(f"unknown source {spec!r}; valid sources: {', '.join(KINDS)}")


__all__ = ["KINDS", "Source", "SourceRow", "load_source"]
