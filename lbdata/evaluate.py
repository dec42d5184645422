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
"""

from __future__ import annotations

import io
import json
import logging
import re
import statistics
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lbdata import __version__
from lbdata.errors import ConfigError, SourceError, UsageError
from lbdata.hashing import content_hash, sha256_bytes
from lbdata.progress import ProgressBar
from lbdata.prompts import SYSTEM_PROMPT, user_prompt
from lbdata.records import BadRow, Problem, parse_variant
from lbdata.sources import load_source
from lbdata.sources.base import Source, SourceRow
from lbdata.sources.files import FileSource

log = logging.getLogger(__name__)

PRESETS_FILE = Path(__file__).with_name("eval_presets.yaml")
RESULTS_FILE = "results.jsonl"
SUMMARY_JSON = "summary.json"
SUMMARY_MD = "summary.md"
CONFIG_FILE = "config.json"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
FAILED = "error"
"""``finish_reason`` of a request that got no response (counted as failed, not as a wrong answer)."""
TOP_P = 0.95  # the paper's vLLM sampling (used only when temperature > 0)
_SOURCE_KINDS = ("synthetic", "hf:", "jsonl:", "parquet:")


# ============================================================================ presets


class EvalPreset(BaseModel):
    """How one benchmark's rows become problems: column names, question template, gold mapping."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="preset name, used as the dataset name in results")
    description: str = Field(description="one line shown by `lbdata eval presets`")
    source: str | None = Field(default=None, description="default source spec; None when there is none")
    source_hint: str | None = Field(default=None, description="where to get the data without a default source")
    layout: Literal["columns", "messages"] = Field(
        default="columns",
        description="`columns`: one column per field; `messages`: LLaMA-Factory messages + images, the first "
        "user turn is the question and the first assistant turn the gold answer",
    )
    messages: str = Field(default="messages", description="the messages column (layout `messages`)")
    image: str = Field(default="image", description="the image column (one image or a list)")
    question: str | None = Field(default=None, description="the question column (layout `columns`)")
    answer: str | None = Field(default=None, description="the gold answer column (layout `columns`)")
    choices: str | None = Field(default=None, description="the multiple-choice options column (a list)")
    id: str | None = Field(default=None, description="a unique id column; absent: the row number is the key")
    truncate_question_at: str | None = Field(
        default=None, description="cut the question at the first occurrence of this text (dropped)"
    )
    question_template: str | None = Field(
        default=None,
        description="Jinja text building the question from the raw columns, `question` and `choice_lines`",
    )
    answer_map: dict[str, str] | None = Field(
        default=None, description="gold value -> gold answer; a value missing from the map makes the row bad"
    )
    answer_to_letter: bool = Field(
        default=False, description="multiple choice: the gold option text becomes its letter"
    )

    @model_validator(mode="after")
    def _check(self) -> EvalPreset:
        if self.layout == "columns" and not (self.question and self.answer):
            raise ValueError("layout `columns` needs `question` and `answer` columns")
        if self.layout == "messages" and (self.question or self.answer):
            raise ValueError("layout `messages` takes the question and answer from the messages; drop them")
        if self.answer_to_letter and not self.choices:
            raise ValueError("`answer_to_letter` needs a `choices` column")
        if self.question_template is not None:
            self._template()  # a syntax error is reported when the presets load
        return self

    def _template(self):
        return _jinja_env().from_string(self.question_template or "")

    def roles(self) -> list[str]:
        """The fields this preset yields, as FileSource column roles."""
        return ["image", "question", "answer"] + (["choices"] if self.choices else []) + (["id"] if self.id else [])

    def raw_columns(self) -> list[str]:
        """Every raw column the preset reads (checked against the source before any row is read)."""
        from jinja2 import meta

        cols = [self.image] + ([self.messages] if self.layout == "messages" else [self.question, self.answer])
        cols += [c for c in (self.choices, self.id) if c]
        if self.question_template:
            variables = meta.find_undeclared_variables(_jinja_env().parse(self.question_template))
            cols += sorted(variables - {"question", "choice_lines"})
        return list(dict.fromkeys(c for c in cols if c))

    def canonical_row(self, row: dict[str, Any]) -> dict[str, Any]:
        """One raw row as ``{image, question, answer[, choices][, id]}``; None marks a missing field."""
        if self.layout == "messages":
            question, answer = _from_messages(row.get(self.messages))
        else:
            question, answer = row.get(self.question or ""), row.get(self.answer or "")
        choices = row.get(self.choices) if self.choices else None
        if question is not None and self.truncate_question_at:
            question = str(question).split(self.truncate_question_at, 1)[0]
        if question is not None and self.question_template:
            lines = "\n".join(f"({LETTERS[i]}) {c}" for i, c in enumerate(choices or [])) if isinstance(choices, list) else ""
            question = self._template().render({**row, "question": question, "choice_lines": lines})
        if answer is not None and self.answer_map is not None:
            answer = self.answer_map.get(str(answer).strip())
        if answer is not None and self.answer_to_letter and isinstance(choices, list) and choices:
            texts = [str(c).strip() for c in choices]
            if str(answer).strip() in texts:
                answer = LETTERS[texts.index(str(answer).strip())]
        out = {"image": row.get(self.image), "question": question, "answer": answer}
        if self.choices:
            out["choices"] = choices
        if self.id:
            out["id"] = row.get(self.id)
        return out


@lru_cache(maxsize=1)
def _jinja_env():
    from lbdata.templates import environment

    return environment("text")


def _message_text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type", "text") == "text"]
        return "".join(parts)
    return None


def _from_messages(messages: Any) -> tuple[str | None, str | None]:
    """(first user turn, first assistant turn) of LLaMA-Factory / OpenAI-style messages."""
    question = answer = None
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, dict):
            continue
        role = message.get("role", message.get("from"))
        content = _message_text(message.get("content", message.get("value")))
        if role in ("user", "human") and question is None:
            question = content
        elif role in ("assistant", "gpt") and answer is None and question is not None:
            answer = content
    return question, answer


@lru_cache(maxsize=1)
def load_presets() -> dict[str, EvalPreset]:
    """The presets of ``eval_presets.yaml``, validated (an unknown key names the preset and the key)."""
    data = yaml.safe_load(PRESETS_FILE.read_text(encoding="utf-8"))
    out: dict[str, EvalPreset] = {}
    for name, body in (data.get("presets") or {}).items():
        if name in ("synthetic", "hf", "jsonl", "parquet"):
            raise ConfigError(f"eval preset {name!r} in {PRESETS_FILE} shadows a source kind; rename it")
        try:
            out[name] = EvalPreset(name=name, **body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(preset)"
            raise ConfigError(f"eval preset {name!r} in {PRESETS_FILE}: {where}: {first['msg']}; fix that key") from None
    return out


class PresetSource(FileSource):
    """A file or Hub source whose rows pass through an ``EvalPreset`` before they become problems.

    Image decoding, bad-row accounting and id handling are ``FileSource``'s; the preset only turns each
    raw row into the canonical ``image/question/answer/choices/id`` row first.
    """

    def __init__(self, spec: str, preset: EvalPreset):
        self.preset = preset
        super().__init__(spec, columns={role: role for role in preset.roles()})

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "preset": self.preset.name}

    def _column_names(self) -> list[str]:
        raw = super()._column_names()
        missing = [c for c in self.preset.raw_columns() if c not in raw]
        if missing:
            raise SourceError(
                f"{self.spec} lacks column(s) {', '.join(map(repr, missing))} that preset {self.preset.name!r} "
                f"reads; its columns are: {', '.join(raw)}; use a copy with the benchmark's layout or no preset"
            )
        return self.preset.roles()

    def _raw_rows(self) -> Iterator[tuple[str, dict[str, Any] | None, str]]:
        for key, row, error in super()._raw_rows():
            yield key, (self.preset.canonical_row(row) if row is not None else None), error


# ============================================================================ data


@dataclass(frozen=True)
class EvalItem:
    """One problem to evaluate and the dataset it is counted under."""

    dataset: str
    problem: Problem
    images: list[bytes]


@dataclass
class EvalData:
    items: list[EvalItem]
    skipped: dict[str, dict[str, int]] = field(default_factory=dict)  # dataset -> bad-row reason -> count
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)  # dataset -> source description

    @property
    def datasets(self) -> list[str]:
        return list(self.skipped)


def _starts_spec(piece: str) -> bool:
    head = piece.split(":", 1)[0]
    return (
        piece.startswith(_SOURCE_KINDS)
        or head in load_presets()
        or Path(piece.split("@", 1)[0]).is_dir()
    )


def split_data_specs(values: Sequence[str]) -> list[str]:
    """``--data`` values split on commas, keeping ``synthetic:bar_chart,geometry`` in one piece."""
    out: list[str] = []
    for value in values:
        for piece in (p.strip() for p in value.split(",")):
            if not piece:
                continue
            if out and not _starts_spec(piece):
                out[-1] = f"{out[-1]},{piece}"
            else:
                out.append(piece)
    if not out:
        raise UsageError("no data given; pass --data SOURCE, e.g. --data synthetic or --data mathvista")
    return out


def open_eval_source(spec: str, *, seed: int = 0) -> tuple[str, Source]:
    """(dataset name, source) for a ``--data`` spec: a preset, ``PRESET:SOURCE`` or a plain source spec."""
    head, sep, rest = spec.partition(":")
    presets = load_presets()
    if head in presets:
        preset = presets[head]
        source_spec = rest if sep else preset.source
        if not source_spec:
            raise UsageError(f"preset {head!r} has no default source; {preset.source_hint or 'pass ' + head + ':SOURCE'}")
        if source_spec.startswith("synthetic"):
            raise UsageError(f"preset {head!r} maps benchmark columns; use plain --data {source_spec} instead")
        return head, PresetSource(source_spec, preset)
    source = load_source(spec, seed=seed)
    return source.name, source


def load_eval_data(specs: Sequence[str], *, limit: int | None = None, seed: int = 0) -> EvalData:
    """Read the problems of every spec (at most ``limit`` per dataset); bad rows are counted, not lost."""
    data = EvalData(items=[])
    for spec in specs:
        if spec.startswith("synthetic") and limit is None:
            raise UsageError("the synthetic source is endless; pass --limit N")
        name, source = open_eval_source(spec, seed=seed)
        if name in data.skipped:
            name = spec
        skipped: Counter[str] = Counter()
        n = 0
        for row in source:
            if limit is not None and n >= limit:
                break
            if isinstance(row, BadRow):
                skipped[row.reason] += 1
                continue
            data.items.append(EvalItem(name, row.problem, row.images))
            n += 1
        data.skipped[name] = dict(skipped)
        data.sources[name] = source.describe()
        if n == 0:
            log.warning("no usable problems in %s (%s)", spec, dict(skipped) or "empty")
    return data


# ============================================================================ generation backends


@dataclass(frozen=True)
class GenerationParams:
    """How responses are sampled: greedy at temperature 0 (the paper's evaluation), else top-p 0.95."""

    max_new_tokens: int = 2048
    temperature: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise UsageError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise UsageError(f"temperature must be >= 0, got {self.temperature}")


@dataclass(frozen=True)
class Generation:
    """One response: its text, its length in tokens (when known) and why it stopped."""

    text: str
    tokens: int | None
    finish_reason: str | None  # "stop", "length", "error" (no response: the request failed), or None when unknown
    error: str | None = None  # why the request failed (finish_reason "error")


class Generator(Protocol):
    """Something that answers prompts about images: a local checkpoint or a served model."""

    label: str  # the model name written into every result row

    def fingerprint(self) -> str:
        """What identifies the model's weights for resuming (a path is not enough after retraining)."""
        ...

    def generate(self, items: Sequence[EvalItem], prompts: Sequence[str], params: GenerationParams) -> list[Generation]:
        ...


def chat_messages(prompt: str, n_images: int) -> list[dict[str, Any]]:
    """The paper's conversation: the system prompt, then a user turn of the image(s) and the prompt."""
    return [
        {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
        {"role": "user", "content": [*({"type": "image"} for _ in range(n_images)), {"type": "text", "text": prompt}]},
    ]


def open_images(blobs: Sequence[bytes]):
    """Encoded image bytes as RGB PIL images (the processor then applies lbdata's pixel band)."""
    from PIL import Image

    from lbdata.images import to_rgb

    out = []
    for blob in blobs:
        with Image.open(io.BytesIO(blob)) as im:
            im.load()
            out.append(to_rgb(im))
    return out


def model_fingerprint(path: str | Path) -> str:
    """A cheap content fingerprint of a checkpoint: config and, per weight file, size, head and tail bytes."""
    root = Path(path)
    parts: list[str] = []
    for p in sorted(root.glob("*.json")) + sorted(root.glob("*.safetensors")):
        size = p.stat().st_size
        with p.open("rb") as fh:
            head = fh.read(1 << 20)
            fh.seek(max(0, size - (1 << 20)))
            tail = fh.read()
        parts.append(f"{p.name}:{size}:{sha256_bytes(head)}:{sha256_bytes(tail)}")
    return content_hash(parts)


class LocalModel:
    """A checkpoint directory run with transformers: batched generation with left padding, CPU or GPU.

    The processor comes from ``lbdata.train.processor.load_processor`` (image-only, lbdata's pixel
    band, never a bare tokenizer); the model from ``AutoModelForImageTextToText``. On a GPU the weights
    load in bfloat16, on a CPU in float32.
    """

    def __init__(self, path: str | Path, *, device: str | None = None, attn_implementation: str | None = None):
        import torch
        from transformers import AutoModelForImageTextToText

        from lbdata.train.processor import load_processor

        self.path = Path(path)
        if not (self.path / "config.json").is_file():
            raise UsageError(f"{self.path} is not a model directory (no config.json); pass a checkpoint folder")
        self.label = str(path)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        self.processor = load_processor(self.path)
        self.processor.tokenizer.padding_side = "left"
        kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
        self.model = AutoModelForImageTextToText.from_pretrained(self.path, dtype=dtype, **kwargs).to(self.device).eval()
        eos = self.model.generation_config.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos]) | {self.processor.tokenizer.eos_token_id}
        self.eos_ids.discard(None)

    def fingerprint(self) -> str:
        return model_fingerprint(self.path)

    def generation_config(self, params: GenerationParams):
        """The model's generation config with the evaluation's sampling (no repetition penalty)."""
        import copy

        config = copy.deepcopy(self.model.generation_config)
        sampling = params.temperature > 0
        config.do_sample = sampling
        config.temperature = params.temperature if sampling else None
        config.top_p = TOP_P if sampling else None
        config.top_k = None
        config.repetition_penalty = 1.0
        config.max_new_tokens = params.max_new_tokens
        config.pad_token_id = self.processor.tokenizer.pad_token_id
        return config

    def encode(self, prompts: Sequence[str], images: Sequence[Sequence[bytes]]):
        texts = [
            self.processor.apply_chat_template(chat_messages(p, len(imgs)), add_generation_prompt=True, tokenize=False)
            for p, imgs in zip(prompts, images, strict=True)
        ]
        pil = [open_images(imgs) for imgs in images]
        return self.processor(text=texts, images=pil, padding=True, return_tensors="pt").to(self.device)

    def generate(self, items: Sequence[EvalItem], prompts: Sequence[str], params: GenerationParams) -> list[Generation]:
        import torch

        inputs = self.encode(prompts, [it.images for it in items])
        if params.temperature > 0:
            torch.manual_seed(params.seed)
        with torch.inference_mode():
            out = self.model.generate(**inputs, generation_config=self.generation_config(params))
        new = out[:, inputs["input_ids"].shape[1] :].tolist()
        results = []
        for ids in new:
            stop = next((i for i, t in enumerate(ids) if t in self.eos_ids), None)
            content = ids if stop is None else ids[:stop]
            text = self.processor.tokenizer.decode(content, skip_special_tokens=True)
            results.append(Generation(text=text, tokens=len(content), finish_reason="length" if stop is None else "stop"))
        return results


class ServedModel:
    """A model behind an OpenAI-compatible server (vLLM or ``lbdata serve`` serving the trained model).

    Requests go through the OpenAI teacher backend (``lbdata.teachers.openai``): its client, its error
    classification and its image encoding (base64 data URLs resized into lbdata's pixel band). The
    messages are the evaluation's — system prompt, then the images and the prompt — not a teacher
    prompt. A batch is sent concurrently; a request that may succeed again (429, 5xx, timeout) is
    retried with backoff up to ``max_attempts`` times; one that can never succeed (a prompt too long, a
    refused request) is recorded with finish reason ``error`` and its message: a failed request, counted
    apart from wrong answers and asked again when the evaluation is re-run.
    """

    def __init__(
        self, base_url: str, served_model: str, *, api_key: str | None = None, max_attempts: int = 4,
        timeout: float = 600.0,
    ):
        if max_attempts < 1:
            raise UsageError(f"max_attempts must be at least 1, got {max_attempts}")
        self.base_url = base_url.rstrip("/")
        self.served_model = served_model
        self.label = served_model
        self.max_attempts = max_attempts
        self.timeout = timeout
        self._api_key = api_key

    def fingerprint(self) -> str:
        return content_hash({"base_url": self.base_url, "model": self.served_model})

    def _teacher(self, params: GenerationParams):
        from lbdata.teachers.openai import OpenAITeacher

        class _EvalRequests(OpenAITeacher):
            """The teacher backend sending evaluation prompts: the problem's question *is* the prompt."""

            def render_text(self, request):
                return request.problem.question

            def messages(self, request):
                return [{"role": "system", "content": SYSTEM_PROMPT}, *super().messages(request)]

        sampling = params.temperature > 0
        return _EvalRequests(
            self.served_model, base_url=self.base_url, api_key=self._api_key, temperature=params.temperature,
            top_p=TOP_P if sampling else None, max_tokens=params.max_new_tokens, timeout=self.timeout,
        )

    def generate(self, items: Sequence[EvalItem], prompts: Sequence[str], params: GenerationParams) -> list[Generation]:
        import asyncio

        return asyncio.run(self._generate(items, prompts, params))

    async def _generate(self, items, prompts, params: GenerationParams) -> list[Generation]:
        import asyncio

        teacher = self._teacher(params)
        try:
            return list(await asyncio.gather(*(self._one(teacher, it, p, params) for it, p in zip(items, prompts, strict=True))))
        finally:
            await teacher.aclose()

    async def _one(self, teacher, item: EvalItem, prompt: str, params: GenerationParams) -> Generation:
        import asyncio

        from lbdata.errors import RequestFailed, TeacherError
        from lbdata.teachers.base import TraceRequest, TransientError

        request = TraceRequest(
            problem=item.problem.model_copy(update={"question": prompt}), images=item.images, variant="plain",
            seed=params.seed,
        )
        attempt = 0
        while True:
            try:
                response = await teacher.generate(request)
            except TransientError as exc:
                attempt += 1
                if attempt >= self.max_attempts:
                    raise TeacherError(
                        f"{self.base_url} kept failing for {item.problem.id} ({exc}) after {self.max_attempts} "
                        "attempts; check the server, then re-run the same command (answered problems are kept)"
                    ) from None
                await asyncio.sleep(exc.retry_after if exc.retry_after is not None else min(30.0, 2.0 ** (attempt - 1)))
                continue
            except RequestFailed as exc:
                log.warning("%s: %s; recorded as a failed request", item.problem.id, exc)
                return Generation(text="", tokens=None, finish_reason=FAILED, error=str(exc))
            tokens = response.usage.completion_tokens or None
            return Generation(text=response.text, tokens=tokens, finish_reason=response.finish_reason)


# ============================================================================ scoring


class EvalRow(BaseModel):
    """One response and its score: a line of ``results.jsonl``."""

    model_config = ConfigDict(extra="forbid")

    problem_id: str = Field(description="the problem's id; insert mode matches base traces on it")
    dataset: str = Field(description="dataset (preset or source) name the row is counted under")
    question: str = Field(description="the question, without the format instruction")
    prompt: str = Field(description="the user-turn text the model saw: question and format instruction")
    gold: str = Field(description="the gold answer")
    choices: list[str] | None = Field(default=None, description="multiple-choice option texts, A first")
    response: str = Field(description="the model's full response (the base trace for insert mode)")
    pred: str | None = Field(default=None, description="content of the last \\boxed{} of the response")
    correct: bool = Field(description="answers_match(gold, pred, choices)")
    has_back: bool = Field(description="the response has at least one <back> segment")
    back_count: int = Field(ge=0, description="number of <back> segments")
    back_positions: list[float] = Field(
        default_factory=list, description="where each <back> starts, as a fraction of the response length"
    )
    well_formed: bool = Field(description="format_ok(response, variant): the variant's format, tags and box")
    finish_reason: str | None = Field(
        default=None, description="stop | length | error (the request failed: no response) | None when unknown"
    )
    error: str | None = Field(
        default=None, description="why the request failed; such a row counts as failed, not as a wrong answer"
    )
    response_tokens: int | None = Field(default=None, description="response length in tokens, when known")
    response_chars: int = Field(ge=0, description="response length in characters")
    variant: str = Field(description="semantic_back | solution_back | plain")
    model: str = Field(description="model path or served model name")


def score_response(item: EvalItem, prompt: str, generation: Generation, *, variant: str, model: str) -> EvalRow:
    """Score one response with the validators' public API (no second parser, no second matcher)."""
    from lbdata.validate import answers_match, format_ok, parse_trace

    text = generation.text
    parsed = parse_trace(text)
    problem = item.problem
    pred = parsed.answer
    backs = parsed.backs
    return EvalRow(
        problem_id=problem.id,
        dataset=item.dataset,
        question=problem.question,
        prompt=prompt,
        gold=problem.answer,
        choices=problem.choices,
        response=text,
        pred=pred,
        correct=bool(pred) and answers_match(problem.answer, pred, choices=problem.choices),
        has_back=bool(backs),
        back_count=len(backs),
        back_positions=[round(b.span[0] / len(text), 4) for b in backs] if text else [],
        well_formed=format_ok(text, variant, question=problem.question),
        finish_reason=generation.finish_reason,
        error=generation.error,
        response_tokens=generation.tokens,
        response_chars=len(text),
        variant=variant,
        model=model,
    )


# ============================================================================ report


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarize_rows(rows: Sequence[EvalRow], skipped: dict[str, int] | None = None) -> dict[str, Any]:
    """The metrics of one dataset (or of all rows): rates are fractions in [0, 1]; None when undefined.

    ``n`` counts every problem asked; ``failed`` the requests that got no response (a served model's
    error), which are not wrong answers: every rate is over the ``answered`` rows.
    """
    n = len(rows)
    failed = [r for r in rows if r.finish_reason == FAILED]
    rows = [r for r in rows if r.finish_reason != FAILED]
    positions = [p for r in rows for p in r.back_positions]
    with_back = [r for r in rows if r.has_back]
    without = [r for r in rows if not r.has_back]
    tokens = [r.response_tokens for r in rows if r.response_tokens is not None]
    histogram = [0] * 10
    for p in positions:
        histogram[min(int(p * 10), 9)] += 1
    return {
        "n": n,
        "answered": len(rows),
        "failed": len(failed),
        "skipped": sum((skipped or {}).values()),
        "skipped_by_reason": dict(sorted((skipped or {}).items())),
        "accuracy": _mean([float(r.correct) for r in rows]),
        "trigger_rate": _mean([float(r.has_back) for r in rows]),
        "well_formed_rate": _mean([float(r.well_formed) for r in rows]),
        "mean_backs": _mean([float(r.back_count) for r in rows]),
        "back_position_mean": _mean(positions),
        "back_position_median": statistics.median(positions) if positions else None,
        "back_position_histogram": histogram,
        "accuracy_with_back": _mean([float(r.correct) for r in with_back]),
        "accuracy_without_back": _mean([float(r.correct) for r in without]),
        "mean_response_tokens": _mean(tokens) if len(tokens) == len(rows) else None,
        "mean_response_chars": _mean([float(r.response_chars) for r in rows]),
        "truncated_rate": _mean([float(r.finish_reason == "length") for r in rows]),
    }


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _num(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _length(s: dict[str, Any]) -> str:
    if s.get("mean_response_tokens") is not None:
        return f"{s['mean_response_tokens']:.0f} tok"
    return "–" if s.get("mean_response_chars") is None else f"{s['mean_response_chars']:.0f} ch"


@dataclass
class EvalReport:
    """Every scored response of an evaluation, with its settings; ``summary()`` computes the metrics."""

    model: str
    variant: str
    params: dict[str, Any]
    rows: list[EvalRow]
    skipped: dict[str, dict[str, int]] = field(default_factory=dict)
    datasets: list[str] = field(default_factory=list)

    def by_dataset(self) -> dict[str, list[EvalRow]]:
        names = list(dict.fromkeys([*self.datasets, *(r.dataset for r in self.rows)]))
        return {name: [r for r in self.rows if r.dataset == name] for name in names}

    def summary(self) -> dict[str, Any]:
        groups = self.by_dataset()
        out: dict[str, Any] = {
            "model": self.model,
            "variant": self.variant,
            "params": self.params,
            "lbdata_version": __version__,
            "datasets": {name: summarize_rows(rows, self.skipped.get(name)) for name, rows in groups.items()},
        }
        if len(groups) > 1:
            every_skip: Counter[str] = Counter()
            for s in self.skipped.values():
                every_skip.update(s)
            out["overall"] = summarize_rows(self.rows, dict(every_skip))
        return out

    def to_markdown(self) -> str:
        return summary_markdown(self.summary())

    def write(self, out_dir: str | Path) -> Path:
        """Write ``results.jsonl`` (rows in dataset order), ``summary.json`` and ``summary.md``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        ordered = [r for rows in self.by_dataset().values() for r in rows]
        tmp = out / (RESULTS_FILE + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for row in ordered:
                fh.write(row.model_dump_json() + "\n")
        tmp.replace(out / RESULTS_FILE)
        summary = self.summary()
        (out / SUMMARY_JSON).write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        (out / SUMMARY_MD).write_text(summary_markdown(summary), encoding="utf-8")
        return out


def summary_markdown(summary: dict[str, Any]) -> str:
    """A Markdown table of a ``summary.json`` (percentages for rates)."""
    lines = [
        f"# Evaluation of {summary['model']}",
        "",
        f"Variant `{summary['variant']}`; max new tokens {summary['params'].get('max_new_tokens')}, "
        f"temperature {summary['params'].get('temperature')}.",
        "",
        "| dataset | n | accuracy % | trigger % | well-formed % | backs / response | back position "
        "| acc. with back % | acc. without back % | mean length | truncated % | failed | skipped |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows = list(summary["datasets"].items())
    if "overall" in summary:
        rows.append(("**all**", summary["overall"]))
    for name, s in rows:
        lines.append(
            f"| {name} | {s['n']} | {_pct(s['accuracy'])} | {_pct(s['trigger_rate'])} | {_pct(s['well_formed_rate'])} "
            f"| {_num(s['mean_backs'])} | {_num(s['back_position_mean'])} | {_pct(s['accuracy_with_back'])} "
            f"| {_pct(s['accuracy_without_back'])} | {_length(s)} | {_pct(s['truncated_rate'])} | {s.get('failed', 0)} "
            f"| {s['skipped']} |"
        )
    lines += [
        "",
        "Back position: where a `<back>` starts, as a fraction of the response (0 = start, 1 = end).",
        "Failed: requests that got no response (a served model's error, kept in results.jsonl with the message); "
        "rates are over the answered problems, and re-running the same command asks the failed ones again.",
        "",
    ]
    return "\n".join(lines)


def read_results(path: str | Path) -> list[EvalRow]:
    """The rows of a ``results.jsonl`` (or of the one inside a folder)."""
    p = Path(path)
    if p.is_dir():
        p = p / RESULTS_FILE
    if not p.is_file():
        raise UsageError(f"no {RESULTS_FILE} at {p}; pass an evaluation folder written by `lbdata eval`")
    rows = []
    with p.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    rows.append(EvalRow.model_validate_json(line))
                except ValidationError as exc:
                    raise UsageError(f"{p}:{lineno} is not an evaluation row ({exc.errors()[0]['msg']})") from None
    return rows


def read_summary(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if p.is_dir():
        p = p / SUMMARY_JSON
    if not p.is_file():
        raise UsageError(f"no {SUMMARY_JSON} at {p}; pass an evaluation folder written by `lbdata eval`")
    return json.loads(p.read_text(encoding="utf-8"))


def compare_reports(a: str | Path, b: str | Path, *more: str | Path) -> str:
    """Evaluations side by side, per dataset, as Markdown.

    Two: one table, a row per dataset, with B minus A in the Δ columns. Three or more (base, SFT, GRPO):
    a table per dataset, a row per metric and a column per evaluation, with the change from the first
    in brackets.
    """
    if more:
        return compare_many([a, b, *more])
    sa, sb = read_summary(a), read_summary(b)
    names = list(dict.fromkeys([*sa["datasets"], *sb["datasets"]]))
    if "overall" in sa and "overall" in sb:
        names.append("overall")

    def get(s: dict[str, Any], name: str) -> dict[str, Any] | None:
        return s.get("overall") if name == "overall" else s["datasets"].get(name)

    def delta(x: float | None, y: float | None, scale: float = 100.0, digits: int = 1) -> str:
        if x is None or y is None:
            return "–"
        return f"{scale * (y - x):+.{digits}f}"

    lines = [
        f"A: {sa['model']} ({sa['variant']}) — {a}",
        f"B: {sb['model']} ({sb['variant']}) — {b}",
        "",
        "| dataset | n A | n B | accuracy % A | accuracy % B | Δ | trigger % A | trigger % B | Δ "
        "| well-formed % A | well-formed % B | backs / resp. A | backs / resp. B | length A | length B |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    empty: dict[str, Any] = {}
    for name in names:
        x, y = get(sa, name) or empty, get(sb, name) or empty
        label = "**all**" if name == "overall" else name
        lines.append(
            f"| {label} | {x.get('n', '–')} | {y.get('n', '–')} "
            f"| {_pct(x.get('accuracy'))} | {_pct(y.get('accuracy'))} | {delta(x.get('accuracy'), y.get('accuracy'))} "
            f"| {_pct(x.get('trigger_rate'))} | {_pct(y.get('trigger_rate'))} "
            f"| {delta(x.get('trigger_rate'), y.get('trigger_rate'))} "
            f"| {_pct(x.get('well_formed_rate'))} | {_pct(y.get('well_formed_rate'))} "
            f"| {_num(x.get('mean_backs'))} | {_num(y.get('mean_backs'))} | {_length(x) if x else '–'} "
            f"| {_length(y) if y else '–'} |"
        )
    return "\n".join(lines) + "\n"


COMPARED = (
    ("n", "n", None),
    ("failed", "failed requests", None),
    ("accuracy", "accuracy %", "pct"),
    ("trigger_rate", "trigger %", "pct"),
    ("well_formed_rate", "well-formed %", "pct"),
    ("mean_backs", "backs / response", "num"),
    ("truncated_rate", "truncated %", "pct"),
)
"""The metrics of ``compare_many``: summary key, row label, and how a value and its change are shown."""


def _column_name(path: str | Path) -> str:
    p = Path(path)
    return (p.parent if p.suffix == ".json" else p).name or str(p)


def compare_many(paths: Sequence[str | Path]) -> str:
    """Several evaluations, a column each: one table per dataset, change from the first in brackets."""
    summaries = [read_summary(p) for p in paths]
    names = list(dict.fromkeys(name for s in summaries for name in s["datasets"]))
    if all("overall" in s for s in summaries):
        names.append("overall")
    columns = [_column_name(p) for p in paths]
    lines = [f"{col}: {s['model']} ({s['variant']}) — {p}" for col, s, p in zip(columns, summaries, paths, strict=True)]

    def show(value: Any, kind: str | None, base: Any, first: bool) -> str:
        if value is None:
            return "–"
        if kind is None:
            return str(value)
        text = _pct(value) if kind == "pct" else _num(value)
        if first or base is None:
            return text
        change = 100 * (value - base) if kind == "pct" else value - base
        return f"{text} ({change:+.1f})" if kind == "pct" else f"{text} ({change:+.2f})"

    for name in names:
        stats = [(s.get("overall") if name == "overall" else s["datasets"].get(name)) or {} for s in summaries]
        lines += ["", f"| {'all datasets' if name == 'overall' else name} | " + " | ".join(columns) + " |",
                  "|---|" + "---:|" * len(columns)]
        for key, label, kind in COMPARED:
            cells = [show(st.get(key), kind, stats[0].get(key), i == 0) for i, st in enumerate(stats)]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lengths = [_length(st) if st else "–" for st in stats]
        lines.append("| mean length | " + " | ".join(lengths) + " |")
    return "\n".join(lines) + "\n"


# ============================================================================ the evaluation loop


def _as_generator(model_or_client: Any) -> Generator:
    if isinstance(model_or_client, str | Path):
        return LocalModel(model_or_client)
    return model_or_client


def _as_items(problems: Iterable[Any], skipped: dict[str, dict[str, int]]) -> list[EvalItem]:
    items: list[EvalItem] = []
    for p in problems:
        if isinstance(p, EvalItem):
            items.append(p)
        elif isinstance(p, SourceRow):
            items.append(EvalItem(p.problem.source, p.problem, p.images))
        elif isinstance(p, BadRow):
            skipped.setdefault(p.source, {})
            skipped[p.source][p.reason] = skipped[p.source].get(p.reason, 0) + 1
        else:
            raise UsageError(f"cannot evaluate a {type(p).__name__}; pass EvalItem or SourceRow objects")
    return items


def _eval_stats(rows: list[EvalRow]) -> str:
    """Running accuracy and trigger rate."""
    if not rows:
        return ""
    acc = sum(r.correct for r in rows) / len(rows)
    trig = sum(r.has_back for r in rows) / len(rows)
    return f"acc {100 * acc:.1f}%  back {100 * trig:.1f}%"


def _identity(generator: Generator, variant: str, params: GenerationParams) -> dict[str, Any]:
    """What makes two responses to the same problem interchangeable (a resumed run must match it)."""
    return {
        "model": generator.label,
        "fingerprint": generator.fingerprint(),
        "variant": variant,
        "max_new_tokens": params.max_new_tokens,
        "temperature": params.temperature,
        "seed": params.seed,
    }


def _drop_cut_line(path: Path) -> None:
    """Cut a last line left without its newline by a crash, so the next append starts on a line of its own."""
    data = path.read_bytes() if path.exists() else b""
    if data and not data.endswith(b"\n"):
        with path.open("rb+") as fh:
            fh.truncate(data.rfind(b"\n") + 1)


def _resume(out: Path, identity: dict[str, Any]) -> list[EvalRow]:
    """Rows already answered in ``out`` by an evaluation with the same settings; [] for a new folder."""
    config_path = out / CONFIG_FILE
    if not config_path.exists():
        return []
    previous = json.loads(config_path.read_text(encoding="utf-8")).get("identity")
    if previous != identity:
        changed = sorted(k for k in identity if (previous or {}).get(k) != identity[k])
        raise UsageError(
            f"{out} holds an evaluation with other settings (different {', '.join(changed)}); "
            "pass another --out or delete that folder"
        )
    rows: dict[tuple[str, str], EvalRow] = {}
    path = out / RESULTS_FILE
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                row = EvalRow.model_validate_json(line)
            except ValidationError:  # a line cut short by a crash: that problem is answered again
                log.warning("ignoring an unreadable line of %s", path)
                continue
            if row.finish_reason == FAILED:  # failed requests are asked again
                continue
            rows.setdefault((row.dataset, row.problem_id), row)  # two evals into one folder: count it once
    return list(rows.values())


def evaluate(
    model_or_client: Any,
    problems: Iterable[Any],
    variant: str,
    *,
    max_new_tokens: int = 2048,
    temperature: float = 0.0,
    seed: int = 0,
    batch_size: int = 8,
    out_dir: str | Path | None = None,
    skipped: dict[str, dict[str, int]] | None = None,
    progress: bool = False,
) -> EvalReport:
    """Generate a response for every problem, score it, and return the report.

    ``model_or_client``: a checkpoint path (run locally with transformers), a ``LocalModel`` or a
    ``ServedModel``, or anything with the ``Generator`` interface. ``problems``: ``EvalItem``,
    ``SourceRow`` (counted under ``problem.source``) or ``BadRow`` (counted as skipped) objects, e.g.
    ``load_eval_data([...]).items`` or ``itertools.islice(load_source("synthetic", seed=1), 50)``.
    ``variant``: ``semantic``, ``solution`` or ``none``/``plain``. With ``out_dir`` the rows are
    appended to ``results.jsonl`` as batches finish and a re-run with the same model and generation
    settings resumes (more problems or datasets extend it); at the end ``results.jsonl`` is rewritten
    with this evaluation's rows, in problem order, and the summary files are written.
    """
    if batch_size < 1:
        raise UsageError(f"batch_size must be at least 1, got {batch_size}")
    variant = parse_variant(variant)
    params = GenerationParams(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
    skipped = {k: dict(v) for k, v in (skipped or {}).items()}
    items = _as_items(problems, skipped)
    order = {(it.dataset, it.problem.id): i for i, it in enumerate(items)}
    datasets = list(dict.fromkeys([*skipped, *(it.dataset for it in items)]))
    generator = _as_generator(model_or_client)

    identity = _identity(generator, variant, params)
    rows: list[EvalRow] = []
    results_fh = None
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        rows = [r for r in _resume(out, identity) if (r.dataset, r.problem_id) in order]
        done = {(r.dataset, r.problem_id) for r in rows}
        if rows:
            log.info("resuming %s: %d of %d problems already answered", out, len(done), len(items))
        items = [it for it in items if (it.dataset, it.problem.id) not in done]
        config = {"identity": identity, "params": {"batch_size": batch_size}, "lbdata_version": __version__}
        tmp = out / (CONFIG_FILE + ".tmp")
        tmp.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        tmp.replace(out / CONFIG_FILE)  # whole or not at all: a kill never leaves half a config
        _drop_cut_line(out / RESULTS_FILE)
        results_fh = (out / RESULTS_FILE).open("a", encoding="utf-8")

    bar = ProgressBar("eval", len(items) + len(rows), enabled=progress, completed=len(rows), unit="responses")
    started = time.monotonic()
    try:
        for start in range(0, len(items), batch_size):
            batch = items[start : start + batch_size]
            prompts = [user_prompt(it.problem.question, variant) for it in batch]
            generations = generator.generate(batch, prompts, params)
            new = [
                score_response(it, prompt, gen, variant=variant, model=generator.label)
                for it, prompt, gen in zip(batch, prompts, generations, strict=True)
            ]
            rows.extend(new)
            if results_fh is not None:
                results_fh.writelines(r.model_dump_json() + "\n" for r in new)
                results_fh.flush()
            bar.update(completed=len(rows), stats=lambda: _eval_stats(rows))
    finally:
        bar.close()
        if results_fh is not None:
            results_fh.close()
    log.info("evaluated %d responses in %.1fs", len(rows), time.monotonic() - started)

    rows.sort(key=lambda r: order.get((r.dataset, r.problem_id), len(order)))
    report = EvalReport(
        model=generator.label,
        variant=variant,
        params={"max_new_tokens": max_new_tokens, "temperature": temperature, "seed": seed},
        rows=rows,
        skipped=skipped,
        datasets=datasets,
    )
    if out_dir is not None:
        report.write(out_dir)
    return report


def default_out_dir(
    home: str | Path, generator: Generator, variant: str, params: GenerationParams, datasets: list[str]
) -> Path:
    """``<home>/evals/<model>-<variant>-<hash>``: the same settings give the same folder, so a re-run resumes."""
    variant = parse_variant(variant)
    identity = {**_identity(generator, variant, params), "datasets": datasets}
    slug = re.sub(r"[^A-Za-z0-9]+", "-", generator.label.rstrip("/").split("/")[-1]).strip("-").lower()[:40] or "model"
    return Path(home) / "evals" / f"{slug}-{variant}-{content_hash(identity, 8)}"
