"""A served model: evaluation prompts sent to an OpenAI-compatible server through the teacher backend."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from lbdata.errors import UsageError
from lbdata.eval.data import EvalItem
from lbdata.eval.generators import FAILED, TOP_P, Generation, GenerationParams
from lbdata.hashing import content_hash
from lbdata.prompts import SYSTEM_PROMPT
from lbdata.teachers.openai import OpenAITeacher

log = logging.getLogger(__name__)


class EvalRequests(OpenAITeacher):
    """The teacher backend sending evaluation prompts: the problem's question *is* the prompt."""

    def render_text(self, request):
        return request.problem.question

    def messages(self, request):
        return [{"role": "system", "content": SYSTEM_PROMPT}, *super().messages(request)]


class ServedModel:
    """A model behind an OpenAI-compatible server (vLLM or ``lbdata serve`` serving the trained model).

    Requests go through the OpenAI teacher backend (``lbdata.teachers.openai``): its client, its error
    classification and its image encoding (base64 data URLs resized into lbdata's pixel band). The
    messages are the evaluation's — system prompt, then the images and the prompt — not a teacher
    prompt. A batch is sent concurrently through the teachers' request sender (``lbdata.generate.sender``):
    a request that may succeed again (429, 5xx, timeout) is tried up to ``max_attempts`` times, with
    backoff and jitter or the server's Retry-After; one that can never succeed (a prompt too long, a
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

    def _teacher(self, params: GenerationParams) -> EvalRequests:
        sampling = params.temperature > 0
        return EvalRequests(
            self.served_model, base_url=self.base_url, api_key=self._api_key, temperature=params.temperature,
            top_p=TOP_P if sampling else None, max_tokens=params.max_new_tokens, timeout=self.timeout,
        )

    def generate(self, items: Sequence[EvalItem], prompts: Sequence[str], params: GenerationParams) -> list[Generation]:
        import asyncio

        return asyncio.run(self._generate(items, prompts, params))

    async def _generate(self, items, prompts, params: GenerationParams) -> list[Generation]:
        import asyncio

        from lbdata.generate.sender import RetryPolicy, Sender

        teacher = self._teacher(params)
        sender = Sender(teacher, policy=RetryPolicy(retries=self.max_attempts - 1))
        try:
            return list(await asyncio.gather(*(self._one(sender, it, p, params) for it, p in zip(items, prompts, strict=True))))
        finally:
            await teacher.aclose()

    async def _one(self, sender, item: EvalItem, prompt: str, params: GenerationParams) -> Generation:
        """One prompt through the sender: its retry policy (backoff with jitter, Retry-After) and rate limiter."""
        from lbdata.errors import RequestFailed, TeacherError
        from lbdata.generate.sender import RetriesExhausted, Spend
        from lbdata.teachers.base import TraceRequest

        request = TraceRequest(
            problem=item.problem.model_copy(update={"question": prompt}), images=item.images, variant="plain",
            seed=params.seed,
        )
        try:
            response, _ = await sender.send(request, Spend())
        except RetriesExhausted as exc:
            raise TeacherError(
                f"{self.base_url} kept failing for {item.problem.id} ({exc.error}) after {exc.tries} "
                "attempts; check the server, then re-run the same command (answered problems are kept)"
            ) from None
        except RequestFailed as exc:
            log.warning("%s: %s; recorded as a failed request", item.problem.id, exc)
            return Generation(text="", tokens=None, finish_reason=FAILED, error=str(exc))
        tokens = response.usage.completion_tokens or None
        return Generation(text=response.text, tokens=tokens, finish_reason=response.finish_reason)
