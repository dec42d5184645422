"""GPT-4o and every OpenAI-compatible server (vLLM, SGLang, Ollama, LM Studio, ``transformers serve``).

``OpenAITeacher`` renders the teacher prompt of a variant and mode (``prompts/teacher/<variant>.<mode>.jinja``),
sends the problem's images as base64 data URLs — resized into the pixel band shared with training and
evaluation (``lbdata.images``) — and makes one chat-completions call through the official ``openai``
client. The user turn is ordered for the provider's prompt cache: the images, then the text every variant,
sample and attempt of a problem shares (rules, question, options, base trace, reference answer), then
the variant's own task last (``prefix_order``). With several base URLs the requests are spread over
the servers by ``lbdata.teachers.fleet``, and a request whose server stopped answering goes to
another one at once. ``TraceRequest.n`` > 1 asks for several samples in one request (``n``). It
classifies what goes wrong: ``TeacherError`` for what can never succeed (authentication,
permission, unknown model, bad request), ``TransientError`` for what may succeed again (429, 5xx,
timeouts, lost connections, empty or malformed bodies), ``RequestFailed`` for one request that cannot
succeed while the others can (a prompt too long for the model, a content filter). Retries, caching,
rate limits and prices belong to the engine (``lbdata.generate``).

The API key is read from ``api_key`` or ``OPENAI_API_KEY`` and lives only inside the client: it is in
no ``TeacherInfo``, request key, log line or error message.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import os
import re
from typing import Any, ClassVar, Literal

import jinja2
from PIL import Image

from lbdata.errors import RequestFailed, TeacherError, UsageError
from lbdata.hashing import content_hash
from lbdata.images import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS, fit_pixels, resize_image, sniff_mime
from lbdata.prompts import format_instruction, template_hash
from lbdata.records import TeacherInfo, Usage
from lbdata.secrets import redact_text, redact_url
from lbdata.sources.base import encode_png
from lbdata.teachers.base import RemoteTeacher, RequestEstimate, TeacherResponse, TraceRequest, TransientError
from lbdata.templates import environment

log = logging.getLogger(__name__)

Detail = Literal["auto", "low", "high"]
# Models that take max_completion_tokens and no temperature (OpenAI's reasoning models).
_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")
_RETRYABLE_STATUS = {408, 409, 425, 429}
_INLINE_IMAGE_BYTES = 256 * 1024  # larger images are decoded, resized and encoded in a worker thread
_CONTEXT_MARKERS = ("context_length_exceeded", "maximum context length", "context length", "too many tokens")


class MissingApiKey(TeacherError):
    """No API key for the OpenAI API (a dry run does without one)."""


def teacher_template(variant: str, mode: str) -> str:
    """Relative path (under ``prompts/``) of the teacher template of a variant and mode."""
    return f"teacher/{variant}.{mode}.jinja"


class OpenAITeacher(RemoteTeacher):
    """A chat-completions model behind the OpenAI API or any OpenAI-compatible server."""

    name: ClassVar[str] = "openai"

    def __init__(
        self,
        model: str = "gpt-4o",
        *,
        base_url: str | list[str] | None = None,
        api_key: str | None = None,
        detail: Detail = "auto",
        temperature: float = 0.7,
        top_p: float | None = None,
        max_tokens: int = 4096,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        timeout: float = 300.0,
        endpoint_concurrency: int | None = None,
        prefix_order: bool = True,
    ):
        if detail not in ("auto", "low", "high"):
            raise UsageError(f"unknown image detail {detail!r}; use auto, low or high")
        if max_tokens < 1:
            raise UsageError("max_tokens must be at least 1")
        from lbdata.teachers.fleet import Fleet

        urls = [_check_base_url(u).rstrip("/") for u in ([base_url] if isinstance(base_url, str) else base_url or [])]
        if endpoint_concurrency is not None and endpoint_concurrency < 1:
            raise UsageError("endpoint_concurrency must be at least 1")
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            if not urls:
                raise MissingApiKey(
                    "no OpenAI API key: set OPENAI_API_KEY (or pass --api-key); "
                    "for a self-hosted server pass --base-url http://HOST:PORT/v1"
                )
            key = "EMPTY"  # self-hosted servers usually accept any key
        self.model = model
        self.base_url = urls[0] if len(urls) == 1 else None
        self.fleet = Fleet(list(urls) or [None], cap=endpoint_concurrency)
        self.prefix_order = prefix_order
        self.detail = detail
        self.temperature = temperature
        self.top_p = top_p
        self.max_tokens = max_tokens
        self.min_pixels = min_pixels or DEFAULT_MIN_PIXELS
        self.max_pixels = max_pixels or DEFAULT_MAX_PIXELS
        fit_pixels(28, 28, self.min_pixels, self.max_pixels)  # validates the band now, not per request
        self.timeout = timeout
        self.reasoning = model.startswith(_REASONING_PREFIXES)
        self._key = key
        self._env = environment("prompts")
        self._templates: dict[tuple[str, str], jinja2.Template] = {}
        self._rendered: dict[tuple, str] = {}

    # ------------------------------------------------------------------ identity
    @property
    def info(self) -> TeacherInfo:
        params: dict[str, Any] = {
            "max_tokens": self.max_tokens,
            "detail": self.detail,
            "min_pixels": self.min_pixels,
            "max_pixels": self.max_pixels,
        }
        if not self.reasoning:
            params["temperature"] = self.temperature
        if self.top_p is not None:
            params["top_p"] = self.top_p
        if not self.prefix_order:
            params["prefix_order"] = False
        return TeacherInfo(backend="openai", model=self.model, params=params)

    def prompt_hash(self, variant: str, mode: str) -> str:
        return template_hash(teacher_template(variant, mode), "teacher/_problem.jinja", f"instructions/{variant}.txt")

    @property
    def where(self) -> str:
        if len(self.fleet) > 1:
            return f"the {len(self.fleet)} servers of --base-url"
        return redact_url(self.base_url) if self.base_url else "the OpenAI API"

    def endpoint_counts(self) -> dict[str, dict[str, Any]]:
        return self.fleet.counts() if len(self.fleet) > 1 else {}

    # ------------------------------------------------------------------ rendering
    def _template(self, variant: str, mode: str) -> jinja2.Template:
        key = (variant, mode)
        if key not in self._templates:
            try:
                self._templates[key] = self._env.get_template(teacher_template(variant, mode))
            except jinja2.TemplateNotFound:
                raise UsageError(
                    f"no teacher prompt for variant {variant} in {mode} mode (prompts/{teacher_template(variant, mode)}); "
                    + ("insert mode places <back> segments, so use a back variant" if mode == "insert" else "")
                ) from None
        return self._templates[key]

    def render_text(self, request: TraceRequest) -> str:
        """The text part of the user turn (memoised: the key, the estimate and the send all need it)."""
        problem = request.problem
        memo_key = (problem.id, problem.question, problem.answer, tuple(problem.choices or ()), request.variant,
                    request.mode, request.reveal_answer, request.base_trace)
        text = self._rendered.get(memo_key)
        if text is None:
            if len(self._rendered) >= 1024:
                self._rendered.clear()
            text = self._rendered[memo_key] = self._render(request)
        return text

    def _render(self, request: TraceRequest) -> str:
        problem = request.problem
        if request.mode == "insert" and not request.base_trace:
            raise RequestFailed("no_base_trace: insert mode needs a base trace for this problem")
        choices = (
            [{"letter": chr(ord("A") + i), "text": c} for i, c in enumerate(problem.choices)] if problem.choices else None
        )
        variables = {
            "question": problem.question.strip(),
            "choices": choices,
            "n_images": len(problem.images),
            "instruction": format_instruction(request.variant),
            "answer": problem.answer if request.reveal_answer else None,
            "base_trace": (request.base_trace or "").strip() if request.mode == "insert" else "",
        }
        task = self._template(request.variant, request.mode).render(**variables)  # this variant's own part
        shared = self._env.get_template("teacher/_problem.jinja").render(**variables)  # every variant of the problem shares it
        parts = (shared, task) if self.prefix_order else (task, shared)
        return "\n\n".join(p.strip() for p in parts)

    def _sizes(self, request: TraceRequest) -> list[tuple[int, int]]:
        try:
            return [fit_pixels(r.width, r.height, self.min_pixels, self.max_pixels) for r in request.problem.images]
        except UsageError as exc:
            raise RequestFailed(f"image_unusable: {exc}") from None

    def _completion_limit(self, request: TraceRequest) -> int:
        return request.max_tokens or self.max_tokens

    def _params(self, request: TraceRequest) -> dict[str, Any]:
        params: dict[str, Any] = {"seed": request.seed}
        if request.n > 1:
            params["n"] = request.n
        limit = self._completion_limit(request)
        if self.reasoning:
            params["max_completion_tokens"] = limit
        else:
            params["max_tokens"] = limit
            params["temperature"] = self.temperature
        if self.top_p is not None:
            params["top_p"] = self.top_p
        return params

    def request_key(self, request: TraceRequest) -> str:
        sizes = self._sizes(request)
        images = [[ref.sha256, w, h] for ref, (w, h) in zip(request.problem.images, sizes, strict=True)]
        return content_hash(
            {
                "model": self.model,
                "params": self._params(request),
                "detail": self.detail,
                "images": images,
                "text": self.render_text(request),
            },
            32,
        )

    def estimate(self, request: TraceRequest) -> RequestEstimate:
        text = self.render_text(request)
        return RequestEstimate(
            text_tokens=len(text) // 4 + 8,
            images=tuple((w, h, self.detail) for w, h in self._sizes(request)),
            max_completion_tokens=self._completion_limit(request),
        )

    def _image_part(self, data: bytes, ref: Any, size: tuple[int, int]) -> dict[str, Any]:
        sniffed = sniff_mime(data)  # the bytes say what they are; a file name's extension may lie
        if size == (ref.width, ref.height) and sniffed is not None:
            payload, mime = data, sniffed
        else:
            with Image.open(io.BytesIO(data)) as im:
                payload = encode_png(resize_image(im, self.min_pixels, self.max_pixels))
            mime = "image/png"
        url = f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"
        return {"type": "image_url", "image_url": {"url": url, "detail": self.detail}}

    def messages(self, request: TraceRequest) -> list[dict[str, Any]]:
        """The chat messages of a request: one user turn, the images first, then the prompt text."""
        sizes = self._sizes(request)
        try:
            parts = [
                self._image_part(data, ref, size)
                for data, ref, size in zip(request.images, request.problem.images, sizes, strict=True)
            ]
        except OSError as exc:
            raise RequestFailed(f"image_unusable: {exc}") from None
        parts.append({"type": "text", "text": self.render_text(request)})
        return [{"role": "user", "content": parts}]

    def chat_body(self, request: TraceRequest) -> dict[str, Any]:
        """The JSON body of the chat-completions request (what is sent online and written to a batch file)."""
        return {"model": self.model, "messages": self.messages(request), **self._params(request)}

    # ------------------------------------------------------------------ sending
    def client(self, endpoint: Any = None) -> Any:
        """The ``openai.AsyncOpenAI`` client of ``endpoint`` (default: the first), made once per event loop."""
        ep = endpoint or self.fleet.endpoints[0]
        if ep.client is None:
            from urllib.parse import parse_qsl, urlsplit, urlunsplit

            import openai

            # A query in --base-url (`…/v1?api-version=…`, as gateways use) goes on every request; left in the
            # base URL the client would join paths after it (`/v1/?api-version=…/chat/completions`).
            parts = urlsplit(ep.url) if ep.url else None
            base = urlunsplit(parts._replace(query="")) if parts and parts.query else ep.url
            query = dict(parse_qsl(parts.query)) if parts and parts.query else None
            ep.client = openai.AsyncOpenAI(api_key=self._key, base_url=base, default_query=query,
                                           timeout=self.timeout, max_retries=0)
        return ep.client

    def _scrub(self, text: str) -> str:
        text = text.replace(self._key, "***") if self._key and self._key != "EMPTY" else text
        return _LONE_SURROGATE.sub("\ufffd", redact_text(text))  # it may be stored: text only

    async def generate(self, request: TraceRequest) -> TeacherResponse:
        import httpx2
        import openai

        if sum(len(b) for b in request.images) > _INLINE_IMAGE_BYTES:
            body = await asyncio.to_thread(self.chat_body, request)  # resizing big images off the loop
        else:
            body = self.chat_body(request)
        fleet = self.fleet
        tried: set[int] = set()
        while True:
            ep = await fleet.acquire(tried)
            try:
                # The client's transport, auth, timeouts and error classes, without the typed-params transform
                # and model construction of chat.completions.create: lbdata builds the JSON body itself and
                # reads the JSON answer itself (about 0.7 ms less CPU per request; see benchmarks/generate_http.py).
                raw = await self.client(ep).post("/chat/completions", body=body, cast_to=httpx2.Response)
            except openai.APITimeoutError:
                error: Exception = TransientError("timeout", f"no answer within {self.timeout:g}s")
                outcome = "error"
            except openai.APIConnectionError as exc:
                error, outcome = TransientError("connection_error", self._scrub(str(exc.__cause__ or exc))), "down"
            except openai.APIStatusError as exc:
                error = self._status_error(exc)
                outcome = "error" if exc.status_code >= 500 else "other"
                if len(fleet) > 1 and type(error) is TeacherError:  # say which server of the fleet refused
                    error = TeacherError(str(error).replace(
                        self.where, f"{ep.label} (one of the {len(fleet)} servers of --base-url)"))
            except BaseException:
                fleet.release(ep, "other")
                raise
            else:
                try:
                    response = self._response(raw)
                except TransientError as exc:  # a 200 that is no answer: the server is broken, not the request
                    error, outcome = exc, "error"
                except BaseException:
                    fleet.release(ep, "ok")
                    raise
                else:
                    fleet.release(ep, "ok")
                    return response
            fleet.release(ep, outcome)
            tried.add(fleet.index(ep))
            if outcome == "other" or not fleet.has_other(tried):
                raise error from None
            log.info("%s did not answer (%s); sending the request to another server", ep.label, error)

    def _response(self, raw: Any) -> TeacherResponse:
        rate_limits = {k: v for k, v in raw.headers.items() if k.startswith("x-ratelimit-")}
        return read_response(raw.content, rate_limits)

    def _status_error(self, exc: Any) -> Exception:
        status = exc.status_code
        message = self._scrub(str(getattr(exc, "message", "") or exc))[:300]
        if status == 429 and exc.code == "insufficient_quota":
            return TeacherError(f"{self.where} says the account is out of quota ({message}); add credit, then re-run")
        if status in _RETRYABLE_STATUS:
            retry_after = _retry_after(exc.response.headers)
            reason = "rate_limited" if status == 429 else "server_busy"
            return TransientError(reason, f"{status} {message}", retry_after=retry_after)
        if status >= 500:
            return TransientError("server_error", f"{status} {message}", retry_after=_retry_after(exc.response.headers))
        if status == 401:
            return TeacherError(
                f"{self.where} rejected the API key (401: {message}); set OPENAI_API_KEY or --api-key to a valid key"
            )
        if status == 403:
            return TeacherError(
                f"{self.where} refused access (403: {message}); check that the key may use model {self.model!r}"
            )
        if status == 404:
            hint = f"`curl {self.where}/models` lists the served models" if self.base_url else "check the model name"
            return TeacherError(f"unknown model {self.model!r} at {self.where} (404: {message}); {hint}")
        if status in (400, 413, 422) and any(m in message.lower() for m in _CONTEXT_MARKERS):
            return RequestFailed(f"context_too_long: {message}")
        return TeacherError(
            f"{self.where} refused the request ({status}: {message}); check the teacher options "
            f"(--max-tokens, --detail, --temperature) and that model {self.model!r} accepts images"
        )

    async def aclose(self) -> None:
        for ep in self.fleet.endpoints:
            if ep.client is not None:
                await ep.client.close()
        self.fleet.reset_loop()


def read_response(content: bytes, rate_limits: dict[str, str] | None = None) -> TeacherResponse:
    """The ``TeacherResponse`` of a chat-completion body (an online answer or a batch output line's body)."""
    text, finish, usage, choices = _read_completion(content)
    rate_limits = rate_limits or {}
    if len(choices) > 1:  # n > 1: the engine judges every choice on its own
        return TeacherResponse(text=text or "", usage=usage, finish_reason=finish, rate_limits=rate_limits,
                               choices=choices)
    if finish == "content_filter":
        raise RequestFailed("content_filter: the server's content filter stopped the answer")
    if not text or not text.strip():
        if finish == "length":
            return TeacherResponse(text="", usage=usage, finish_reason="length", rate_limits=rate_limits)
        raise TransientError("empty_response", f"no text in the answer (finish_reason={finish})")
    return TeacherResponse(text=text, usage=usage, finish_reason=finish, rate_limits=rate_limits)


def _check_base_url(url: str) -> str:
    """``url`` if it is an http(s) URL with a host and a valid port, else a one-line error (that masks it:
    a malformed address is no URL to redact, and may hold a password)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError when out of range or not a number
    except ValueError:
        ok = False
    if not ok:
        shown = redact_text(url) if "://" in url or "@" not in url else "(not shown: it holds '@')"
        raise UsageError(f"--base-url {shown} is not an http(s) URL with a host; pass e.g. "
                         "--base-url http://127.0.0.1:8000/v1")
    return url


def _read_completion(content: bytes) -> tuple[str | None, str | None, Usage, tuple[tuple[str, str | None], ...]]:
    """(text, finish_reason, usage, every choice's (text, finish_reason)) of a chat-completion body;
    ``TransientError`` when it is not one."""
    if not content.strip():
        raise TransientError("empty_response", "the server answered 200 with an empty body")
    try:
        data = json.loads(content)
    except ValueError:
        raise TransientError("malformed_response", "the body is not JSON") from None
    choices = data.get("choices") if isinstance(data, dict) else None
    if not choices:
        raise TransientError("empty_response", "the completion has no choices")
    try:
        read = []
        for choice in sorted(choices, key=lambda c: c.get("index") or 0):
            message = choice.get("message") or {}
            text = message.get("content")
            if text is not None and not isinstance(text, str):
                raise TransientError("malformed_response", "the message content is not text")
            read.append((text, choice.get("finish_reason")))
        counts = data.get("usage") or {}
        details = counts.get("prompt_tokens_details") or {}
        prompt = max(0, int(counts.get("prompt_tokens") or 0))  # a buggy server's impossible counts are clamped:
        usage = Usage(  # the answer was paid for, and throwing it away would pay for it again
            prompt_tokens=prompt,
            completion_tokens=max(0, int(counts.get("completion_tokens") or 0)),
            cached_tokens=min(prompt, max(0, int(details.get("cached_tokens") or 0))),
            requests=1,
        )
    except (AttributeError, TypeError, ValueError, OverflowError):  # OverflowError: a count of 1e400
        raise TransientError("malformed_response", "the body is not a chat completion") from None
    if b"\\u" in content:  # only a \uXXXX escape can put a lone surrogate into the text
        read = [(_LONE_SURROGATE.sub("\ufffd", t) if t else t, f) for t, f in read]
    text, finish = read[0]
    return text, finish, usage, tuple((t or "", f) for t, f in read)


# A lone ``\udXXX`` escape is valid JSON but not text: such an answer could not be stored (nor written to any
# file), so it is kept with U+FFFD in its place, as a decoder does with bytes that are not UTF-8.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _retry_after(headers: Any) -> float | None:
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name) if headers is not None else None
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            continue
    return None
