"""Prompt templates from ``prompts/``: teacher prompts (variant × mode) and model-facing instructions.

The model-facing instruction is what the trained model sees after the question, per variant; the
same text is used in corpora, training prompts and evaluation. Every rendered prompt carries the hash
of the template text that produced it, recorded on each trace.
"""

from __future__ import annotations

from functools import cache

from lbdata.hashing import sha256_text
from lbdata.records import parse_variant
from lbdata.resources import resource_path


@cache
def _read(relpath: str) -> str:
    return resource_path("prompts", relpath).read_text(encoding="utf-8").strip()


def format_instruction(variant: str) -> str:
    """The model-facing format instruction of a variant (``semantic_back``, ``solution_back``, ``plain``)."""
    return _read(f"instructions/{parse_variant(variant)}.txt")


def user_prompt(question: str, variant: str) -> str:
    """The user-turn text the model sees: the question, then the variant's format instruction."""
    return f"{question.strip()} {format_instruction(variant)}"


def template_hash(*relpaths: str) -> str:
    """Hash of one or more template files' text (16 hex digits)."""
    return sha256_text("\n\x00".join(_read(p) for p in relpaths))[:16]


SYSTEM_PROMPT = "You are a helpful assistant."
