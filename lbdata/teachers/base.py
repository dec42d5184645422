"""The teacher protocol: an async ``generate(request) -> TeacherResponse``.

A teacher turns one ``TraceRequest`` (a problem, its images, a variant and mode) into the text of
a trace. The engine in ``lbdata.generate`` owns concurrency, retries, caching and the ledger; a
teacher only writes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from lbdata.records import Problem, TeacherInfo, Usage


@dataclass(frozen=True)
class TraceRequest:
    problem: Problem
    images: list[bytes]
    variant: str  # semantic_back | solution_back | plain
    mode: str = "write"  # write | insert
    sample: int = 0
    attempt: int = 0
    base_trace: str | None = None  # insert mode: the reasoning to place <back> segments into
    reveal_answer: bool = False
    seed: int = 0  # derived from the trace id: the same request always gets the same seed


@dataclass(frozen=True)
class TeacherResponse:
    text: str
    usage: Usage = Usage()
    finish_reason: str | None = "stop"


class Teacher(ABC):
    """Base class of every teacher. Subclasses set ``name`` and implement ``generate``."""

    name: ClassVar[str]

    @property
    @abstractmethod
    def info(self) -> TeacherInfo:
        """Backend, model and output-shaping parameters (never secrets)."""

    @abstractmethod
    def prompt_hash(self, variant: str, mode: str) -> str:
        """Hash of the prompt templates used for this variant and mode."""

    @abstractmethod
    async def generate(self, request: TraceRequest) -> TeacherResponse:
        """Write one trace. Raise ``lbdata.errors.TeacherError`` for a request that can never succeed."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
