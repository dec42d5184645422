"""Problems from local files and Hugging Face datasets, with column mapping and presets.

Specs: ``hf:<dataset-id-or-local-folder>[@split]``, ``jsonl:PATH``, ``parquet:PATH``, or a folder
written by ``datasets.Dataset.save_to_disk``. Columns are found by ``--image-col/--question-col/
--answer-col/--choices-col/--trace-col`` or, when not given, by the known layouts (EasyR1
``images/problem/answer``; ``image/question/answer``; TRL ``image/problem/solution``).

A row that cannot become a problem (no answer, an image that is missing or unreadable, a line that
is not JSON or not UTF-8, a question that is a list, a repeated id) is yielded as a ``BadRow`` with its
reason; the run goes on. Images are untrusted: a path must resolve, symlinks included, inside the
source file's folder, the saved dataset's folder or an ``image_roots`` folder (``--image-root``), and
must be a regular file; size limits are checked before decoding; see ``lbdata.images.accept_image``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import PIL.Image

from lbdata.errors import SourceError
from lbdata.hashing import sha256_bytes
from lbdata.images import (
    DEFAULT_MAX_IMAGE_BYTES,
    DEFAULT_MAX_IMAGE_PIXELS,
    ImageRejected,
    accept_image,
    read_image_file,
)
from lbdata.records import BadRow, ImageRef, Problem
from lbdata.sources.base import SourceRow, encode_png
from lbdata.sources.offline import check_hub_reachable, no_hub_message

# Candidate column names per role, in order of preference (the known public layouts).
COLUMN_CANDIDATES: dict[str, tuple[str, ...]] = {
    "image": ("images", "image", "image_path", "img"),
    "question": ("problem", "question", "query", "prompt"),
    "answer": ("answer", "solution", "ground_truth", "label", "gt"),
    "choices": ("choices", "options"),
    "id": ("id", "qid", "pid", "question_id", "uid"),
    "trace": (),
}
PRESETS: dict[str, dict[str, str]] = {
    "easyr1": {"image": "images", "question": "problem", "answer": "answer"},
    "vqa": {"image": "image", "question": "question", "answer": "answer"},
    "trl": {"image": "image", "question": "problem", "answer": "solution"},
}
ROLES = ("image", "question", "answer", "choices", "id", "trace")

_BOXED = re.compile(r"\\boxed\{(.*)\}\s*$", re.S)
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.S)
_IMAGE_TAG = re.compile(r"\s*<image>\s*")


@dataclass(frozen=True)
class RowProblem:
    """Why a raw row could not be read (the third item ``_raw_rows`` yields when the row is None)."""

    reason: str
    detail: str

    def __str__(self) -> str:
        return self.detail


def clean_answer(value: Any) -> str:
    """Gold answers as shipped by public sets: strip ``\\boxed{}`` (ViRL39K) and ``<answer>`` tags (R1-V)."""
    text = str(value).strip()
    m = _ANSWER_TAG.search(text)
    if m:
        text = m.group(1).strip()
    m = _BOXED.match(text)
    if m:
        text = m.group(1).strip()
    return text


class FileSource:
    """Rows of a local file, a saved dataset folder, or a Hugging Face dataset, as problems."""

    def __init__(
        self,
        spec: str,
        *,
        columns: dict[str, str] | None = None,
        preset: str | None = None,
        image_roots: list[str | os.PathLike[str]] | tuple[str | os.PathLike[str], ...] = (),
        max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
        max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
    ):
        self.spec = spec
        self.max_image_pixels = max_image_pixels
        self.max_image_bytes = max_image_bytes
        self.kind, self.location, self.split = _parse_spec(spec)
        mapping = dict(PRESETS[preset]) if preset else {}
        if preset and preset not in PRESETS:
            raise SourceError(f"unknown column preset {preset!r}; valid presets: {', '.join(PRESETS)}")
        for role, col in (columns or {}).items():
            if role not in ROLES:
                raise SourceError(f"unknown column role {role!r}; valid roles: {', '.join(ROLES)}")
            mapping[role] = col
        self._requested = mapping
        self._ds: Any = None  # the opened dataset (hf and saved sources), once read
        self.name = _source_name(self.kind, self.location)
        self._base_dir = Path(self.location).parent if self.kind in ("jsonl", "parquet") else Path(self.location)
        for root in image_roots:
            if not Path(root).is_dir():
                raise SourceError(f"--image-root {str(root)!r} is not a folder; pass an existing folder")
        self.image_roots = [Path(os.path.realpath(r)) for r in (*self._default_roots(), *image_roots)]
        self.columns = self._resolve_columns(self._column_names())

    # ------------------------------------------------------------------ description
    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "spec": self.spec,
            "split": self.split,
            "columns": self.columns,
            "revision": self._revision(),
        }

    def _revision(self) -> str:
        """What the rows were read from, by content: the file's sha256, or ``dataset_fingerprint``."""
        if self.kind in ("jsonl", "parquet"):
            return _file_sha256(Path(self.location))[:16]
        return dataset_fingerprint(self._dataset())

    def _default_roots(self) -> list[Path]:
        """Folders whose files the source's rows may name: the file's folder, the dataset's folder, and
        for a Hub dataset the caches its files were downloaded to."""
        roots = [self._base_dir] if self._base_dir.is_dir() else []
        if self.kind == "hf":
            import datasets.config
            from huggingface_hub import constants

            roots += [Path(datasets.config.HF_DATASETS_CACHE), Path(constants.HF_HUB_CACHE)]
        return roots

    # ------------------------------------------------------------------ columns
    def _column_names(self) -> list[str]:
        if self.kind == "jsonl":
            path = Path(self.location)
            names: dict[str, None] = {}
            for lineno, (_, line) in enumerate(_jsonl_lines(path)):
                if lineno >= 1000:
                    break
                try:
                    row = json.loads(line) if isinstance(line, str) and line.strip() else None
                except (json.JSONDecodeError, RecursionError):
                    continue
                if isinstance(row, dict):
                    names.update(dict.fromkeys(row))
            if not names:
                raise SourceError(f"{path} has no JSON rows; each line must be one JSON object")
            return list(names)
        if self.kind == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            try:
                return list(pq.ParquetFile(self.location).schema_arrow.names)
            except (pa.ArrowException, OSError) as exc:
                raise SourceError(f"{self.location} is not a Parquet file ({exc}); check the path after 'parquet:'"
                                  ) from None
        return list(self._dataset().column_names)

    def _resolve_columns(self, names: list[str]) -> dict[str, str]:
        resolved: dict[str, str] = {}
        for role in ROLES:
            if role in self._requested:
                col = self._requested[role]
                if col not in names:
                    flag = f"--{role}-col"
                    raise SourceError(
                        f"column {col!r} ({role}) is not in {self.spec}; its columns are: {', '.join(names)}; "
                        f"pass {flag} with one of them"
                    )
                resolved[role] = col
                continue
            for cand in COLUMN_CANDIDATES[role]:
                if cand in names:
                    resolved[role] = cand
                    break
        for role in ("image", "question", "answer"):
            if role not in resolved:
                raise SourceError(
                    f"{self.spec} has no {role} column (looked for {', '.join(COLUMN_CANDIDATES[role])}); "
                    f"its columns are: {', '.join(names)}; pass --{role}-col NAME"
                )
        return resolved

    # ------------------------------------------------------------------ rows
    def _dataset(self):
        if self._ds is None:
            import datasets

            try:
                if self.kind == "saved":
                    ds = datasets.load_from_disk(self.location)
                    if isinstance(ds, datasets.DatasetDict):
                        if self.split not in ds:
                            raise SourceError(
                                f"{self.location} has no split {self.split!r}; its splits are {', '.join(ds)}: "
                                f"pass --source {self.location}@SPLIT, e.g. {self.location}@{next(iter(ds))}"
                            )
                        ds = ds[self.split]
                    elif self.spec != self.location:
                        raise SourceError(f"{self.location} holds one dataset with no splits; drop the "
                                          f"'@{self.split}' and pass --source {self.location}")
                else:
                    if not Path(self.location).exists():
                        check_hub_reachable(self.location)
                    ds = datasets.load_dataset(self.location, split=self.split)
            except SourceError:
                raise
            except ConnectionError as exc:
                raise SourceError(no_hub_message(self.location, f"{type(exc).__name__}: {exc}")) from None
            except (FileNotFoundError, ValueError, datasets.exceptions.DatasetNotFoundError) as exc:
                raise SourceError(f"cannot open dataset {self.location!r} ({exc}); check the id or path") from None
            self._ds = _undecoded(ds)
        return self._ds

    def _raw_rows(self) -> Iterator[tuple[str, dict[str, Any] | None, str | RowProblem]]:
        """(key, row or None, error: a detail string for bad JSON, or a ``RowProblem``)."""
        if self.kind == "jsonl":
            for lineno, line in _jsonl_lines(Path(self.location)):
                if isinstance(line, RowProblem):
                    yield f"line{lineno}", None, line
                    continue
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    if not isinstance(row, dict):
                        raise TypeError("not an object")
                except (json.JSONDecodeError, TypeError, RecursionError) as exc:
                    yield f"line{lineno}", None, f"line {lineno} is not a JSON object ({exc})"
                    continue
                if ("\\ud" in line or "\\uD" in line) and _has_lone_surrogate(row):
                    yield f"line{lineno}", None, RowProblem(
                        "bad_encoding", f"line {lineno} holds a lone UTF-16 surrogate escape (\\ud800-\\udfff), "
                                        "which is not text and cannot be stored; fix or drop the row")
                    continue
                yield str(lineno - 1), row, ""
        elif self.kind == "parquet":
            import pyarrow.parquet as pq

            index = 0
            for batch in pq.ParquetFile(self.location).iter_batches(batch_size=256):
                yield from _batch_rows(batch, index)
                index += batch.num_rows
        else:  # Arrow batches, read as the parquet ones: a cell that is not UTF-8 spoils one row, not the run
            index = 0
            for batch in self._dataset().with_format("arrow").iter(batch_size=256):
                yield from _batch_rows(batch, index)
                index += batch.num_rows

    def __iter__(self) -> Iterator[SourceRow | BadRow]:
        seen: set[str] = set()
        for index_key, row, error in self._raw_rows():
            if row is None:
                reason, detail = (error.reason, error.detail) if isinstance(error, RowProblem) else ("bad_json", error)
                yield BadRow(source=self.name, key=index_key, reason=reason, detail=detail)
                continue
            key = str(row.get(self.columns["id"], index_key)) if "id" in self.columns else index_key
            if key in seen:
                yield BadRow(source=self.name, key=key, reason="duplicate_key", detail=f"id {key!r} repeats")
                continue
            seen.add(key)
            try:
                yield self._to_problem(key, row)
            except (ValueError, TypeError) as exc:  # a value no check above foresaw: this row only
                yield BadRow(source=self.name, key=key, reason="invalid_row", detail=f"{type(exc).__name__}: {exc}"[:500])

    def _to_problem(self, key: str, row: dict[str, Any]) -> SourceRow | BadRow:
        def bad(reason: str, detail: str) -> BadRow:
            return BadRow(source=self.name, key=key, reason=reason, detail=detail)

        question = row.get(self.columns["question"])
        if question is not None and not isinstance(question, str):
            return bad("bad_type", f"column {self.columns['question']!r} holds a {type(question).__name__}, "
                                   "not text; map a text column with --question-col")
        if question is None or not question.strip():
            return bad("missing_question", f"column {self.columns['question']!r} is empty")
        answer = row.get(self.columns["answer"])
        if answer is not None and (isinstance(answer, bool) or not isinstance(answer, str | int | float)
                                   or (isinstance(answer, float) and not math.isfinite(answer))):
            shown = repr(answer) if isinstance(answer, bool | float) else f"a {type(answer).__name__}"
            return bad("bad_type", f"column {self.columns['answer']!r} holds {shown}, not a text or number answer; "
                                   "fix the row or map another column with --answer-col")
        if answer is None or not str(answer).strip():
            return bad("missing_answer", f"column {self.columns['answer']!r} is empty")
        raw_images = row.get(self.columns["image"])
        if raw_images is None or (isinstance(raw_images, list) and not raw_images):
            return bad("missing_image", f"column {self.columns['image']!r} is empty")
        items = raw_images if isinstance(raw_images, list) else [raw_images]
        blobs: list[bytes] = []
        refs: list[ImageRef] = []
        for item in items:
            try:
                data, ext, (width, height) = accept_image(
                    self._image_bytes(item), max_pixels=self.max_image_pixels, max_bytes=self.max_image_bytes
                )
            except ImageRejected as exc:
                return bad(exc.reason, str(exc))
            except (OSError, ValueError, TypeError) as exc:
                return bad("unreadable_image", f"{type(exc).__name__}: {exc}")
            blobs.append(data)
            refs.append(ImageRef(sha256=sha256_bytes(data), ext=ext, width=width, height=height))
        choices = row.get(self.columns["choices"]) if "choices" in self.columns else None
        if choices is not None and not (isinstance(choices, list) and all(isinstance(c, str | int | float) for c in choices)):
            return bad("bad_choices", "choices must be a list of strings")
        text = _IMAGE_TAG.sub(" ", str(question)).strip()
        problem = Problem(
            id=f"{self.name}:{key}",
            images=refs,
            question=text,
            answer=clean_answer(answer),
            choices=[str(c) for c in choices] if choices else None,
            source=self.name,
            meta={"row": key},
        )
        base = row.get(self.columns["trace"]) if "trace" in self.columns else None
        return SourceRow(problem=problem, images=blobs, base_trace=str(base) if base else None)

    def _image_bytes(self, item: Any) -> bytes:
        if isinstance(item, bytes | bytearray):
            return bytes(item)
        if isinstance(item, dict):
            data, path = item.get("bytes"), item.get("path")
            if data:  # binary only: bytes(<a number>) would allocate that many zero bytes
                if not isinstance(data, bytes | bytearray | memoryview | list):
                    raise TypeError(f"image bytes must be binary data, not a {type(data).__name__}")
                return bytes(data)
            if path:
                if not isinstance(path, str):
                    raise TypeError(f"image path must be text, not a {type(path).__name__}")
                return self._image_bytes(path)
            raise ValueError("image dict has neither bytes nor path")
        if isinstance(item, str):
            path = Path(item)
            if not path.is_absolute():
                path = self._base_dir / path
            return read_image_file(path, self.image_roots, max_bytes=self.max_image_bytes)
        if isinstance(item, PIL.Image.Image):  # decoded by datasets: re-encode deterministically
            return encode_png(item)
        raise TypeError(f"unsupported image value of type {type(item).__name__}")


def _parse_spec(spec: str) -> tuple[str, str, str]:
    if spec.startswith("jsonl:") or spec.startswith("parquet:"):
        kind, _, path = spec.partition(":")
        if not os.path.isfile(path):  # False, not OSError, for a name over the system's limit
            raise SourceError(f"{kind} file {path!r} not found; check the path after '{kind}:'")
        return kind, path, "train"
    if spec.startswith("hf:"):
        rest = spec[3:]
        location, _, split = rest.partition("@")
        if not location:
            raise SourceError("hf: needs a dataset id, e.g. hf:hiyouga/geometry3k@train")
        return "hf", location, split or "train"
    location, split = split_saved_spec(spec)
    if location is not None:
        return "saved", location, split or "train"
    raise SourceError(f"cannot read source {spec!r}; use hf:ID[@split], jsonl:PATH, parquet:PATH or a dataset folder")


def split_saved_spec(spec: str) -> tuple[str | None, str | None]:
    """``(folder, split)`` of ``FOLDER`` or ``FOLDER@SPLIT`` when the folder exists, else ``(None, None)``.

    The whole spec is tried as a folder first, so a folder whose name holds an ``@`` still works.
    """
    if os.path.isdir(spec):  # os.path: False, not OSError, for a name too long for the filesystem
        return spec, None
    location, at, split = spec.rpartition("@")
    if at and location and split and os.path.isdir(location):
        return location, split
    return None, None


def _source_name(kind: str, location: str) -> str:
    if kind == "hf":
        return location.rstrip("/")
    return Path(location).stem if kind in ("jsonl", "parquet") else Path(location).name


MAX_LINE_BYTES = 256 * 1024 * 1024
"""A longer JSON Lines line is a bad row (``line_too_long``), read in bounded memory: a file without
newlines (a binary named .jsonl) would otherwise be read whole as one line."""


def _read_line(fh: Any, limit: int) -> bytes:
    return fh.readline(limit)


def _jsonl_lines(path: Path) -> Iterator[tuple[int, str | RowProblem]]:
    """(line number, text) of a JSON Lines file read as bytes: a line that is not UTF-8 becomes a
    ``bad_encoding`` problem naming the line and byte; a byte-order mark on the first line is dropped."""
    with path.open("rb") as fh:
        lineno = 0
        while raw := _read_line(fh, MAX_LINE_BYTES + 1):
            lineno += 1
            if len(raw) > MAX_LINE_BYTES:
                size = len(raw)
                while not raw.endswith(b"\n") and (raw := _read_line(fh, MAX_LINE_BYTES + 1)):  # skip the rest
                    size += len(raw)
                yield lineno, RowProblem("line_too_long", f"line {lineno} is {size:,}+ bytes, more than "
                                                          f"{MAX_LINE_BYTES:,}; is the file JSON Lines?")
                continue
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield lineno, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield lineno, RowProblem(
                    "bad_encoding",
                    f"line {lineno} is not UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
                    "re-save the file as UTF-8",
                )


def _batch_rows(batch: Any, start: int) -> Iterator[tuple[str, dict[str, Any] | None, str | RowProblem]]:
    """The rows of an Arrow record batch; a row with a string cell that is not UTF-8 (Parquet stores
    whatever bytes it was given) is a ``bad_encoding`` problem instead of an error for the whole batch."""
    try:
        rows = batch.to_pylist()
    except UnicodeDecodeError:
        rows = None
    for i in range(batch.num_rows):
        try:
            row = rows[i] if rows is not None else batch.slice(i, 1).to_pylist()[0]
        except UnicodeDecodeError as exc:
            yield str(start + i), None, RowProblem(
                "bad_encoding", f"row {start + i} holds text that is not UTF-8 ({exc.reason}); write the file "
                                "again with UTF-8 strings")
            continue
        yield str(start + i), row, ""


def _has_lone_surrogate(row: dict[str, Any]) -> bool:
    """Whether a parsed row holds a lone surrogate (only a ``\\udXXX`` escape in the line can put one there)."""
    try:
        json.dumps(row, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _file_sha256(path: Path, h: Any = None) -> str:
    h = h or hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_SAMPLE_ABOVE = 256 << 20  # Arrow files larger than this are hashed by their size and sampled blocks
_SAMPLE_BLOCKS = 64
_BLOCK = 1 << 20


def _arrow_file_digest(path: Path) -> bytes:
    """The sha256 of an Arrow file; above ``_SAMPLE_ABOVE`` bytes, of its size and ``_SAMPLE_BLOCKS`` evenly
    spaced 1 MiB blocks (the first and the last included), so a 50 GB dataset costs 64 MiB of reading."""
    size = path.stat().st_size
    if size <= _SAMPLE_ABOVE:
        return bytes.fromhex(_file_sha256(path))
    h = hashlib.sha256(f"sampled:{size}:".encode())
    stride = (size - _BLOCK) // (_SAMPLE_BLOCKS - 1)
    with path.open("rb") as fh:
        for i in range(_SAMPLE_BLOCKS):
            fh.seek(i * stride)
            h.update(fh.read(_BLOCK))
    return h.digest()


def dataset_fingerprint(ds: Any) -> str:
    """A content hash of a ``datasets.Dataset`` from its public surface: its features, its row count and
    the bytes of the Arrow files behind it (``ds.cache_files``; a file over 256 MiB by its size and 64
    sampled blocks), or of its Arrow batches when it lives in memory. The same data gives the same value
    in any folder, process or machine; other data, another (an edit of a large file that keeps its size
    and misses every sampled block keeps the value)."""
    import pyarrow as pa

    h = hashlib.sha256()
    h.update(json.dumps({"features": ds.features.to_dict(), "rows": ds.num_rows}, sort_keys=True).encode())
    if ds.cache_files:
        for f in ds.cache_files:
            h.update(_arrow_file_digest(Path(f["filename"])))
    else:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, ds.data.schema) as writer:
            for batch in ds.data.to_batches():
                writer.write_batch(batch)
        h.update(sink.getvalue().to_pybytes())
    return h.hexdigest()[:16]


def _undecoded(ds: Any) -> Any:
    """The dataset with its image columns left as ``{bytes, path}``: lbdata checks and decodes each image
    itself, so one bad image becomes a bad row instead of an error that stops the iteration."""
    import datasets

    for name, feature in ds.features.items():
        if isinstance(feature, datasets.Image) and feature.decode:
            ds = ds.cast_column(name, datasets.Image(decode=False))
        elif isinstance(feature, datasets.List | datasets.Sequence) and isinstance(feature.feature, datasets.Image):
            ds = ds.cast_column(name, datasets.List(datasets.Image(decode=False)))
    return ds
