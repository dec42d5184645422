"""Export a corpus version in the layout a trainer reads: TRL (SFT, GRPO), LLaMA-Factory, EasyR1, verl.

``export_corpus(spec, fmt, out)`` streams every config and split of a version into ``out`` and checks
each row against its format's contract while writing (placeholders = images, column names, image
type); a row that breaks it stops the export with a ``CorpusError`` naming the row. The layouts:

- ``trl-sft``: ``<config>/<split>.parquet`` with ``messages`` (conversational, typed content blocks,
  one ``{"type": "image"}`` per image) and ``images`` (``List(Image())``), for ``SFTTrainer``.
- ``trl-grpo``: ``<config>/<split>.parquet`` with a conversational ``prompt`` (the user turn only, as
  a string: TRL inserts the image blocks), ``images``, the gold answer as ``answer`` and ``solution``,
  and the columns lbdata's rewards read (``question``, ``choices``, ``variant``, ``meta``: TRL hands
  every column to the reward functions); one row per problem.
- ``llamafactory``: ``<config>_<split>.json`` in sharegpt form (``messages`` with ``role``/``content``,
  one ``<image>`` per image at the start of the user text), ``images/<sha256>.<ext>``, and
  ``dataset_info.json`` entries named ``<corpus>_<config>_<split>``.
- ``easyr1``: ``<config>/<split>.parquet`` with ``images``, ``problem`` (one ``<image>`` per image, then
  the question with the model-facing instruction), ``answer``, and ``question``, ``choices``,
  ``variant``; one row per problem, plus ``format_prompt.jinja`` (a pass-through, since ``problem``
  already carries the instruction).
- ``verl``: ``<config>/<split>.parquet`` for upstream verl's ``RLHFDataset``: ``prompt`` as chat
  messages whose user text starts with one ``<image>`` per image, ``images``, ``data_source``
  (``<corpus>/<config>``), ``ability``, ``reward_model`` (``{"style": "rule", "ground_truth": answer}``)
  and ``extra_info`` (``index``, ``split``, ``id``, ``problem_id``, ``question``, ``choices``,
  ``variant``, ``answer``, ``meta``: what ``lbdata.train.rewards.verl_compute_score`` reads); one row
  per problem.

``meta`` is a synthetic problem's meta as JSON text (its scene facts: the format reward then checks a
back against the figure), drawn again from the problem id and kept only when the figure matches the
row's image (``lbdata.sources.synthetic.recover_meta``); null for other sources. EasyR1 hands its reward
only the response and the ground truth, so the ``easyr1`` layout carries no ``meta``.

Parquet files carry their ``datasets`` features in the schema metadata in the older spelling
(``Sequence`` / ``[{...}]`` for lists) that datasets 3.x reads as well as 4.x and later, so trainers
pinned to an older ``datasets`` load the images as images.

Every export also writes ``lbdata_export.json`` (corpus, version, format, rows per config and split).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lbdata.corpus import ROW_GROUP_SIZE, SPLITS, data_files, read_manifest, resolve_version
from lbdata.errors import CorpusError, UsageError
from lbdata.workspace import staged_dir

FORMATS: tuple[str, ...] = ("trl-sft", "trl-grpo", "llamafactory", "easyr1", "verl")
IMAGE_TOKEN = "<image>"
EXPORT_FILE = "lbdata_export.json"
EASYR1_FORMAT_PROMPT = "{{ content | trim }}\n"


@dataclass
class ExportResult:
    """Where an export went and how many rows each config and split got."""

    format: str
    out: Path
    rows: dict[str, dict[str, int]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------- row mappers
def _user_text(row: dict[str, Any]) -> str:
    texts = [b["text"] for b in row["messages"][0]["content"] if b["type"] == "text"]
    return "".join(texts)


def _reward_columns(row: dict[str, Any], config: str) -> dict[str, Any]:
    """What lbdata's rewards read besides the completion: the question, the options and the variant.

    The variant is the config's (``semantic_back`` or ``solution_back``), not the row's: an RL prompt
    carries the config's instruction even where the SFT row that supplied it is a plain trace.
    """
    return {"question": row["question"], "choices": list(row.get("choices") or []), "variant": config}


def _meta(row: dict[str, Any]) -> str | None:
    """The row's problem meta as JSON text for the format reward's figure check (synthetic problems only)."""
    from lbdata.sources.synthetic import meta_column, recover_meta

    images = row.get("images") or []
    return meta_column(recover_meta(row["problem_id"], images[0].get("bytes") if images else None))


def sft_row(row: dict[str, Any], **_: Any) -> dict[str, Any]:
    return {"messages": row["messages"], "images": row["images"]}


def grpo_row(row: dict[str, Any], *, config: str, **_: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "problem_id": row["problem_id"],
        "prompt": [{"role": "user", "content": _user_text(row)}],
        "images": row["images"],
        "answer": row["answer"],
        "solution": row["answer"],
        **_reward_columns(row, config),
        "meta": _meta(row),
    }


def easyr1_row(row: dict[str, Any], *, config: str, **_: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "images": row["images"],
        "problem": IMAGE_TOKEN * len(row["images"]) + _user_text(row),
        "answer": row["answer"],
        **_reward_columns(row, config),
    }


def verl_row(row: dict[str, Any], *, corpus: str, config: str, split: str, index: int) -> dict[str, Any]:
    return {
        "data_source": f"{corpus}/{config}",
        "prompt": [{"role": "user", "content": IMAGE_TOKEN * len(row["images"]) + _user_text(row)}],
        "images": row["images"],
        "ability": "visual_reasoning",
        "reward_model": {"style": "rule", "ground_truth": row["answer"]},
        "extra_info": {"index": index, "split": split, "id": row["id"], "problem_id": row["problem_id"],
                       "answer": row["answer"], **_reward_columns(row, config), "meta": _meta(row)},
    }


def llamafactory_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "user", "content": IMAGE_TOKEN * len(row["images"]) + _user_text(row)},
            {"role": "assistant", "content": row["trace"]},
        ],
        "images": [f"images/{im['path']}" for im in row["images"]],
    }


# ---------------------------------------------------------------------------- contracts
def check_sft_row(row: dict[str, Any]) -> list[str]:
    """TRL SFT: typed blocks, user then assistant, one image block per image, images as {bytes, path}."""
    problems = []
    msgs = row.get("messages") or []
    if [m.get("role") for m in msgs] != ["user", "assistant"]:
        problems.append("messages must be one user turn then one assistant turn")
    blocks = [b for m in msgs for b in (m.get("content") or []) if isinstance(b, dict)]
    if any(not isinstance(m.get("content"), list) for m in msgs):
        problems.append("message content must be a list of typed blocks")
    n_blocks = sum(1 for b in blocks if b.get("type") == "image")
    problems += _image_problems(row.get("images"), n_blocks, "image blocks")
    return problems


def check_grpo_row(row: dict[str, Any]) -> list[str]:
    """TRL GRPO: prompt-only conversation (no assistant turn, no answer), answer = solution, no <image> text."""
    problems = []
    prompt = row.get("prompt") or []
    if not prompt or any(m.get("role") != "user" or not isinstance(m.get("content"), str) for m in prompt):
        problems.append("prompt must be user turns with string content (TRL inserts the image blocks)")
    if any(IMAGE_TOKEN in m.get("content", "") for m in prompt):
        problems.append("prompt text must not contain <image>; TRL adds image blocks itself")
    if not row.get("solution") or row.get("answer") != row.get("solution"):
        problems.append("answer and solution must both hold the gold answer")
    problems += _reward_column_problems(row)
    problems += _image_problems(row.get("images"), len(row.get("images") or []), "images")
    return problems


def _reward_column_problems(row: dict[str, Any]) -> list[str]:
    problems = []
    if not isinstance(row.get("question"), str):
        problems.append("question must be the question text (the format reward compares the trace with it)")
    if row.get("variant") not in ("semantic_back", "solution_back"):
        problems.append(f"variant {row.get('variant')!r} is not a back variant the format reward knows")
    if not isinstance(row.get("choices"), list):
        problems.append("choices must be a list (empty when the question has no options)")
    return problems


def check_easyr1_row(row: dict[str, Any]) -> list[str]:
    """EasyR1: the problem text splits on <image> into exactly one slot per image; answer present."""
    problems = []
    if not row.get("answer"):
        problems.append("answer is empty")
    n = str(row.get("problem", "")).count(IMAGE_TOKEN)
    problems += _reward_column_problems(row)
    problems += _image_problems(row.get("images"), n, "<image> placeholders in problem")
    return problems


def check_verl_row(row: dict[str, Any]) -> list[str]:
    """verl RLHFDataset: user messages with string content whose <image> count = len(images), a ground
    truth, a data source, and the reward columns in ``extra_info``."""
    problems = []
    prompt = row.get("prompt") or []
    if not prompt or any(m.get("role") != "user" or not isinstance(m.get("content"), str) for m in prompt):
        problems.append("prompt must be user turns with string content (verl splits it on <image>)")
    if not row.get("data_source"):
        problems.append("data_source is empty")
    if not (row.get("reward_model") or {}).get("ground_truth"):
        problems.append("reward_model.ground_truth is empty")
    extra = row.get("extra_info") or {}
    if not isinstance(extra.get("index"), int):
        problems.append("extra_info.index must be the row's integer index")
    problems += _reward_column_problems(extra)
    n = sum(str(m.get("content", "")).count(IMAGE_TOKEN) for m in prompt)
    problems += _image_problems(row.get("images"), n, "<image> placeholders in prompt")
    return problems


def check_llamafactory_row(row: dict[str, Any], dataset_dir: Path | None = None) -> list[str]:
    """LLaMA-Factory sharegpt: user/assistant turns, <image> count = len(images), image files present."""
    problems = []
    msgs = row.get("messages") or []
    roles = [m.get("role") for m in msgs]
    if not roles or roles[0] != "user" or roles[-1] != "assistant" or any(
        a == b for a, b in zip(roles, roles[1:], strict=False)
    ):
        problems.append(f"roles must alternate user/assistant, got {roles}")
    n = sum(str(m.get("content", "")).count(IMAGE_TOKEN) for m in msgs)
    images = row.get("images") or []
    if n != len(images):
        problems.append(f"{n} <image> placeholders for {len(images)} images")
    if dataset_dir is not None:
        missing = [p for p in images if not (dataset_dir / p).is_file()]
        if missing:
            problems.append(f"missing image files: {missing[:3]}")
    return problems


def _image_problems(images: Any, n_placeholders: int, what: str) -> list[str]:
    if not isinstance(images, list):
        return ["images must be a list"]
    out = []
    if n_placeholders != len(images):
        out.append(f"{n_placeholders} {what} for {len(images)} images")
    if any(not isinstance(im, dict) or not im.get("bytes") for im in images):
        out.append("every image must be embedded as {bytes, path}")
    return out


# ---------------------------------------------------------------------------- features
def _features(fmt: str):
    from datasets import Features, Image, List, Value

    images = List(Image())
    reward_columns = {"question": Value("string"), "choices": List(Value("string")), "variant": Value("string")}
    if fmt == "trl-sft":
        block = {"type": Value("string"), "text": Value("string")}
        return Features({"messages": List({"role": Value("string"), "content": List(block)}), "images": images})
    if fmt == "trl-grpo":
        return Features({
            "id": Value("string"),
            "problem_id": Value("string"),
            "prompt": List({"role": Value("string"), "content": Value("string")}),
            "images": images,
            "answer": Value("string"),
            "solution": Value("string"),
            **reward_columns,
            "meta": Value("string"),
        })
    if fmt == "verl":
        return Features({
            "data_source": Value("string"),
            "prompt": List({"role": Value("string"), "content": Value("string")}),
            "images": images,
            "ability": Value("string"),
            "reward_model": {"style": Value("string"), "ground_truth": Value("string")},
            "extra_info": {"index": Value("int64"), "split": Value("string"), "id": Value("string"),
                           "problem_id": Value("string"), "answer": Value("string"), **reward_columns,
                           "meta": Value("string")},
        })
    return Features({"id": Value("string"), "images": images, "problem": Value("string"), "answer": Value("string"),
                     **reward_columns})


def legacy_feature_dict(feature: Any) -> Any:
    """``feature`` in the JSON spelling datasets 3.x reads (and 4.x+ reads back as the same features).

    datasets 4 writes ``{"_type": "List"}``, a type 3.x does not know ("Feature type 'List' not found").
    The older spelling says the same thing: a list of structs is ``[{...}]`` and any other list is
    ``{"_type": "Sequence", "feature": ...}``.
    """
    from datasets import Features, List

    if isinstance(feature, dict):
        return {k: legacy_feature_dict(v) for k, v in feature.items()}
    if isinstance(feature, List):
        if getattr(feature, "length", -1) not in (-1, None):
            raise ValueError(f"fixed-length lists have no datasets 3.x spelling here: {feature}")
        inner = feature.feature
        if isinstance(inner, dict):
            return [legacy_feature_dict(inner)]
        return {"feature": legacy_feature_dict(inner), "_type": "Sequence"}
    return Features({"x": feature}).to_dict()["x"]


def parquet_schema(features: Any):
    """The Arrow schema of ``features`` with datasets metadata that datasets 3.x and later both read."""
    meta = {"info": {"features": legacy_feature_dict(dict(features))}}
    return features.arrow_schema.with_metadata({b"huggingface": json.dumps(meta).encode()})


_PARQUET: dict[str, tuple[Callable[..., dict[str, Any]], Callable[[dict[str, Any]], list[str]], bool]] = {
    # format: (row mapper, contract check, one row per problem)
    "trl-sft": (sft_row, check_sft_row, False),
    "trl-grpo": (grpo_row, check_grpo_row, True),
    "easyr1": (easyr1_row, check_easyr1_row, True),
    "verl": (verl_row, check_verl_row, True),
}


# ---------------------------------------------------------------------------- export
def _batches(path: Path, config: str, split: str) -> Iterator[list[dict[str, Any]]]:
    import pyarrow.parquet as pq

    for f in data_files(path, config, split):
        for batch in pq.ParquetFile(f).iter_batches(batch_size=ROW_GROUP_SIZE):
            yield batch.to_pylist()


def _fail(fmt: str, row: dict[str, Any], problems: list[str]) -> CorpusError:
    return CorpusError(
        f"row {row.get('id')} breaks the {fmt} contract: {'; '.join(problems)}; "
        "fix the source rows (e.g. a literal <image> in a question) and rebuild the corpus"
    )


def _prepare_out(out: Path) -> Path:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"export folder {out} is not empty; pass a new --out DIR or remove it")
    return out


def export_corpus(
    spec: str,
    fmt: str,
    out: str | os.PathLike[str],
    *,
    configs: list[str] | None = None,
    home: str | os.PathLike[str] | None = None,
) -> ExportResult:
    """Write corpus ``spec`` (NAME@VER) in format ``fmt`` into the empty folder ``out``; see the module docstring."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; use one of: {', '.join(FORMATS)}")
    path = resolve_version(spec, home)
    manifest = read_manifest(str(path))
    selected = configs or list(manifest["configs"])
    unknown = [c for c in selected if c not in manifest["counts"]]
    if unknown:
        raise UsageError(f"corpus {manifest['name']}@{manifest['version']} has no config {unknown[0]!r}; "
                         f"it has: {', '.join(manifest['configs'])}")
    final = _prepare_out(Path(out))
    with staged_dir(final) as out:  # written whole into a hidden sibling, then renamed into place
        result = _export(path, manifest, fmt, selected, out)
    result.out = final
    return result


def _export(path: Path, manifest: dict[str, Any], fmt: str, selected: list[str], out: Path) -> ExportResult:
    result = ExportResult(format=fmt, out=out)
    parts = [(c, s) for c in selected for s in SPLITS if s in manifest["counts"][c]]
    if fmt == "llamafactory":
        _export_llamafactory(path, manifest, parts, out, result)
    else:
        for cfg, split in parts:
            _export_parquet(path, fmt, cfg, split, out, result, corpus=manifest["name"])
        if fmt == "easyr1":
            (out / "format_prompt.jinja").write_text(EASYR1_FORMAT_PROMPT)
            result.files.append("format_prompt.jinja")
    info = {"corpus": manifest["name"], "version": manifest["version"], "format": fmt, "rows": result.rows,
            "files": result.files}
    (out / EXPORT_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return result


def _export_parquet(path: Path, fmt: str, cfg: str, split: str, out: Path, result: ExportResult, *,
                    corpus: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    mapper, check, per_problem = _PARQUET[fmt]
    schema = parquet_schema(_features(fmt))
    rel = f"{cfg}/{split}.parquet"
    (out / cfg).mkdir(exist_ok=True)
    seen: set[str] = set()
    n = 0
    with pq.ParquetWriter(out / rel, schema, compression="snappy") as writer:
        for batch in _batches(path, cfg, split):
            rows = []
            for row in batch:
                if per_problem:
                    if row["problem_id"] in seen:
                        continue
                    seen.add(row["problem_id"])
                mapped = mapper(row, corpus=corpus, config=cfg, split=split, index=n + len(rows))
                problems = check(mapped)
                if problems:
                    raise _fail(fmt, row, problems)
                rows.append(mapped)
            if rows:
                writer.write_table(pa.Table.from_pylist(rows, schema=schema), row_group_size=ROW_GROUP_SIZE)
                n += len(rows)
    check_parquet_schema(out / rel, fmt)
    result.rows.setdefault(cfg, {})[split] = n
    result.files.append(rel)


_COLUMNS = {
    "trl-sft": ["messages", "images"],
    "trl-grpo": ["id", "problem_id", "prompt", "images", "answer", "solution", "question", "choices", "variant",
                 "meta"],
    "easyr1": ["id", "images", "problem", "answer", "question", "choices", "variant"],
    "verl": ["data_source", "prompt", "images", "ability", "reward_model", "extra_info"],
}


def check_parquet_schema(path: Path, fmt: str) -> None:
    """The written file has the format's columns, and ``images`` is a ``List(Image())`` the loaders decode."""
    import pyarrow.parquet as pq
    from datasets import Features, Image, List

    schema = pq.read_schema(path)
    if b'"_type": "List"' in (schema.metadata or {}).get(b"huggingface", b""):
        raise CorpusError(f"{path} spells its features with List, which datasets 3.x cannot read; "
                          "this is a bug in lbdata's exporter, please report it")
    features = Features.from_arrow_schema(schema)
    if list(features) != _COLUMNS[fmt]:
        raise CorpusError(f"{path} has columns {list(features)}, expected {_COLUMNS[fmt]} for {fmt}; "
                          "this is a bug in lbdata's exporter, please report it")
    images = features["images"]
    if not (isinstance(images, List) and isinstance(images.feature, Image)):
        raise CorpusError(f"{path}: images is {images}, not List(Image()); this is a bug in lbdata's exporter")


def llamafactory_dataset_info(file_name: str) -> dict[str, Any]:
    """The ``dataset_info.json`` entry of one sharegpt file with OpenAI-style role tags."""
    return {
        "file_name": file_name,
        "formatting": "sharegpt",
        "columns": {"messages": "messages", "images": "images"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"},
    }


def _export_llamafactory(path: Path, manifest: dict[str, Any], parts: list[tuple[str, str]], out: Path,
                         result: ExportResult) -> None:
    (out / "images").mkdir()
    info: dict[str, Any] = {}
    for cfg, split in parts:
        file_name = f"{cfg}_{split}.json"
        n = 0
        with (out / file_name).open("w", encoding="utf-8") as fh:
            fh.write("[")
            for batch in _batches(path, cfg, split):
                for row in batch:
                    for im in row["images"]:
                        target = out / "images" / im["path"]
                        if not target.exists():
                            target.write_bytes(im["bytes"])
                    mapped = llamafactory_row(row)
                    problems = check_llamafactory_row(mapped, out)
                    if problems:
                        raise _fail("llamafactory", row, problems)
                    fh.write(",\n" if n else "\n")
                    fh.write(json.dumps(mapped, ensure_ascii=False))
                    n += 1
            fh.write("\n]\n")
        info[f"{manifest['name']}_{cfg}_{split}"] = llamafactory_dataset_info(file_name)
        result.rows.setdefault(cfg, {})[split] = n
        result.files.append(file_name)
    (out / "dataset_info.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    result.files += ["dataset_info.json", "images/"]

