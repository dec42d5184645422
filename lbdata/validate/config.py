"""``ValidationConfig``: the thresholds of the validators, loadable from a flat YAML file.

The ledger keys verdicts by (trace id, ``config.config_hash``): changing a threshold, or a rule
(``RULES_VERSION``), gives a new hash, and ``lbdata validate`` then re-validates every trace once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lbdata.errors import ConfigError, error_reason
from lbdata.hashing import content_hash
from lbdata.resources import read_yaml_mapping

RULES_VERSION = 4
"""Bumped whenever a rule changes behaviour, so old verdicts are not mistaken for current ones."""


class ValidationConfig(BaseModel):
    """Thresholds for ``validate_trace`` (defaults follow the issue that defined the rules)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_backs: int = Field(default=3, ge=1, description="most <back> segments a back-variant trace may have")
    min_words_before_back: int = Field(
        default=12, ge=0, description="semantic_back: fewest words in the think before the first <back>"
    )
    min_rethink_words: int = Field(
        default=5, ge=0, description="fewest words in the think after the last <back>"
    )
    min_back_words: int = Field(default=8, ge=1, description="fewest words in a <back> (fewer: back_empty)")
    copy_ngram: int = Field(default=5, ge=2, description="n of the word n-grams that back_copy compares")
    max_copy_share: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="back_copy when more than this share of a back's n-grams already appear before it",
    )
    min_insert_overlap: float = Field(
        default=0.9,
        ge=0.0,
        le=1.0,
        description="insert mode: least token overlap between the non-back text and the base trace",
    )
    max_repeat_share: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        description="back_repetitive, think_filler, rethink_filler above this share said again (repeats of the "
        "most repeated content word, or repeated 4-word phrases)",
    )
    min_word_share: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        description="back_low_information below this share of real words (not bare numbers or single letters)",
    )
    min_content_words: int = Field(
        default=3, ge=0, description="back_low_information below this many distinct content words in a back"
    )
    max_filler_share: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="think_filler, rethink_filler above this share of filler words (hmm, okay, 嗯, ...)",
    )
    answer_timeout_s: float = Field(
        default=2.0, gt=0.0, description="time limit of one sympy answer comparison (a timeout is no match)"
    )

    @property
    def config_hash(self) -> str:
        """Content hash of the fields and the rules version: the key of verdicts in the ledger."""
        return content_hash({"rules_version": RULES_VERSION, **self.model_dump(mode="json")})

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> ValidationConfig:
        """Load a flat YAML mapping of field names; an unknown key or bad value is a ConfigError naming it."""
        p = Path(path)
        data = read_yaml_mapping(p, what="validation config", hint="threshold: value pairs, e.g. `max_backs: 2`")
        return cls.from_dict(data, origin=str(p))

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, origin: str = "validation config") -> ValidationConfig:
        """The config of a mapping of field names; an unknown key or a refused value is one ``ConfigError`` line
        naming the key and the fix."""
        unknown = sorted((key for key in data if key not in cls.model_fields), key=str)
        if unknown:
            raise ConfigError(
                f"unknown key {unknown[0]!r} in {origin}; valid keys: {', '.join(cls.model_fields)}"
            )
        try:
            return cls(**data)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(x) for x in err["loc"])
            default = cls.model_fields[key].default if key in cls.model_fields else None
            raise ConfigError(f"bad value for {key!r} in {origin}: {error_reason(err)}; fix it, or remove the key "
                              f"for the default ({default})") from None
