"""The teacher protocol: an async ``generate(request) -> TeacherResponse``.

A teacher turns one ``TraceRequest`` (a problem, its images, a variant and mode) into the text of
a trace. The engine in ``lbdata.generate`` owns concurrency, retries, caching and the ledger; a
teacher only writes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

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
    max_tokens: int | None = None  # overrides the teacher's own limit (raised once after a truncated answer)
    n: int = 1  # samples asked for in this one request (the server's ``n``); the answer carries them in ``choices``


@dataclass(frozen=True)
class TeacherResponse:
    text: str
    usage: Usage = Usage()
    finish_reason: str | None = "stop"
    rate_limits: Mapping[str, str] = field(default_factory=dict)  # the server's x-ratelimit-* headers
    choices: tuple[tuple[str, str | None], ...] = ()  # n > 1: (text, finish_reason) of every sample; usage covers all


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


class TransientError(Exception):
    """A request that may succeed when sent again: rate limited, a server error, a timeout, a lost
    connection, an empty or malformed body. The engine retries it with backoff; ``retry_after`` is the
    server's own hint in seconds (``Retry-After``). ``reason`` is a snake_case code for the ledger."""

    def __init__(self, reason: str, detail: str = "", *, retry_after: float | None = None):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.retry_after = retry_after


@dataclass(frozen=True)
class RequestEstimate:
    """What one request will send, known before it is sent (for rate limits, budgets and dry runs)."""

    text_tokens: int  # prompt text, estimated
    images: tuple[tuple[int, int, str], ...]  # (width, height, detail) of every image as sent
    max_completion_tokens: int  # the completion limit the request carries


class RemoteTeacher(Teacher):
    """A teacher behind a server. The engine caches its responses by ``request_key``, throttles and
    prices them from ``estimate``, retries its ``TransientError``s, and asks again once with a larger
    ``max_tokens`` after a truncated answer."""

    @abstractmethod
    def request_key(self, request: TraceRequest) -> str:
        """Content hash of the request as sent: rendered messages (images by sha256), model, parameters."""

    @abstractmethod
    def estimate(self, request: TraceRequest) -> RequestEstimate:
        """Token and image sizes of the request, without sending it."""

    @property
    def where(self) -> str:
        """The server(s) in words, for messages (never a key)."""
        return "the teacher's server"

    def endpoint_counts(self) -> dict[str, dict[str, Any]]:
        """Per-server counts when the teacher spreads requests over several servers; empty otherwise."""
        return {}
