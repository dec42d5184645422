"""Benchmark presets: how one benchmark's rows become problems (``eval_presets.yaml``, data, not code).

``mathvista`` or ``mathvista:parquet:PATH`` maps a benchmark's columns and prompt handling (choices to
letters, yes/no gold, question templates) onto the canonical ``image/question/answer/choices/id`` row
that ``FileSource`` turns into problems.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lbdata.errors import ConfigError, SourceError
from lbdata.sources.files import FileSource

PRESETS_FILE = Path(__file__).parent.parent / "eval_presets.yaml"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


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
    from jinja2 import Environment, StrictUndefined

    return Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


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

