"""A local OpenAI-compatible chat-completions server for tests and benchmarks (127.0.0.1 only).

It speaks just enough HTTP/1.1 (keep-alive, Content-Length bodies) on plain asyncio to be fast on a
small machine, logs every request, injects latency and faults, and answers with Look-Back traces that
pass the validators for the variant the prompt asks for — when asked nicely: the gold answer is
taken from the prompt's reference-answer line (``--reveal-answer``), else ``42``.

Faults are rules tried in order on each request; the first that matches (``match`` is a substring of
the user text, ``None`` matches all) and still has ``times`` left (-1: unlimited) applies:

    rate_limit    429 with Retry-After (``retry_after`` seconds) and x-ratelimit-* headers
    quota         429 insufficient_quota (cannot succeed)
    server_error  500
    timeout       no answer for ``hang_s`` seconds, then the connection closes
    empty         200 with an empty body
    malformed     200 with a truncated JSON body
    no_choices    200 with a chat completion that has no choices
    length        200, finish_reason=length, a cut-off trace
    bad_trace     200 with a trace the validators reject (empty, filler <back>)
    bad_judgment  200 with a judge answer that is not the judge's JSON shape
    unauthorized  401;  unknown_model  404;  bad_request  400;  context  400 context_length_exceeded

Batch lines may also meet (matched the same way):

    batch_failed  the line lands in the error file (resubmittable)
    batch_expired the line lands in the error file with code batch_expired

Files and Batches calls may meet (``match`` is a substring of ``"METHOD /path"``, e.g. ``"GET /v1/batches/"``):

    api_error     500 without doing anything
    create_lost   the batch is created, then the answer is a 500 (a response lost on its way back)

``provider_usage=True`` reports usage the way the provider does: images counted in GPT-4o tiles, and
``prompt_tokens_details.cached_tokens`` from a prefix cache (prompts of 1,024 tokens or more; the
longest earlier-seen prefix, in 128-token steps). A judge prompt (``prompts/judge/``) is answered with
one claim per back segment, supported unless the back contains ``judge_refute``. ``n`` > 1 returns n choices unless ``supports_n``
is off. The Files and Batches endpoints (``POST /v1/files``, ``GET /v1/files/{id}/content``,
``POST /v1/batches``, ``GET /v1/batches[/{id}]``, ``POST /v1/batches/{id}/cancel``) run batches in the
background after ``batch_delay_s``, answering each line as the chat endpoint would.

Use in-process (``with FakeOpenAI(latency_s=0.1) as server: server.url``) or as a subprocess
(``python -m tests.fake_openai_server --port 0 --latency 0.1 --log FILE``; the first stdout line is
``listening <url>``). ``POST /_faults`` replaces the fault rules, ``GET /_log`` returns the log.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import io
import json
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests",
            500: "Internal Server Error"}
_CACHE_MIN, _CACHE_STEP = 1024, 128
_ANSWER = re.compile(r"Reference answer[^:\n]*:\s*(.+)")
_BASE = re.compile(r"\[BEGIN BASE TRACE\]\n(.*?)\n\[END BASE TRACE\]", re.S)
_JUDGED_BACK = re.compile(r"\[BEGIN BACK \d+\]\n(.*?)\n\[END BACK \d+\]", re.S)
_BOXED = re.compile(r"\\boxed\{(.*)\}\s*$", re.S)


@dataclass
class Fault:
    kind: str
    match: str | None = None
    times: int = 1
    retry_after: float | None = None


@dataclass
class Entry:
    n: int
    t_recv: float
    t_done: float = 0.0
    status: int = 0
    fault: str | None = None
    key: str = ""
    model: str = ""
    seed: int | None = None
    max_tokens: int | None = None
    text: str = ""
    images: list[dict[str, Any]] = field(default_factory=list)
    authorization_ok: bool = True
    completed: bool = False


def _instructions() -> dict[str, str]:
    from lbdata.prompts import format_instruction

    return {v: format_instruction(v) for v in ("semantic_back", "solution_back", "plain")}


def write_trace(variant: str, answer: str) -> str:
    """A Look-Back trace for ``variant`` that boxes ``answer`` and passes the validators."""
    if variant == "plain":
        return (
            "<think> Reading the figure, I take the values shown next to each marked element and combine them "
            f"step by step as the question asks. </think> \\boxed{{{answer}}}"
        )
    if variant == "solution_back":
        return (
            "<think> Reading the figure, the marked elements carry the values needed here, and combining them "
            f"step by step as the question asks, so the answer is {answer}. </think> "
            "<back> Checking this against the image, the first bar labelled A reaches the gridline at 7 on the "
            "vertical axis and the second bar labelled B stops at 3, which are the values the reasoning used. </back> "
            "<think> The check agrees with every value used in the reasoning, so the first answer stands. </think> "
            f"\\boxed{{{answer}}}"
        )
    return (
        "<think> The question asks for a quantity that has to be read from the figure, so I first locate the "
        "relevant elements and note what each of them shows before combining anything. </think> "
        "<back> Looking at the image again, the bar labelled A reaches the gridline at 7 on the vertical axis, "
        "and the red square to its left carries the label B with the value 3. </back> "
        "<think> Using those two readings, the remaining arithmetic is direct and gives the result below. </think> "
        f"\\boxed{{{answer}}}"
    )


def insert_backs(variant: str, base: str, answer: str | None) -> str:
    """The base trace with one <back> placed for ``variant``, its reasoning otherwise unchanged."""
    body = re.sub(r"</?think>", " ", base)
    m = _BOXED.search(body)
    final = m.group(1) if m else (answer or "42")
    reasoning = " ".join(body[: m.start()].split()) if m else " ".join(body.split())
    back = ("<back> Looking at the image again, the bar labelled A reaches the gridline at 7 on the vertical "
            "axis and the label B sits next to the value 3. </back>")
    if variant == "solution_back":
        return f"<think> {reasoning} </think> {back} <think> The check confirms this answer. </think> \\boxed{{{final}}}"
    sentences = re.split(r"(?<=[.;])\s+", reasoning)
    cut = max(1, len(sentences) // 2)
    first, second = " ".join(sentences[:cut]), " ".join(sentences[cut:]) or "So the computation is complete."
    return f"<think> {first} </think> {back} <think> {second} </think> \\boxed{{{final}}}"


class FakeOpenAI:
    """The server. ``start()`` runs it in a daemon thread; ``serve_forever()`` in the current loop."""

    def __init__(
        self,
        *,
        latency_s: float = 0.0,
        models: tuple[str, ...] = ("fake-teacher",),
        api_key: str | None = None,
        faults: list[Fault] | None = None,
        log_path: str | None = None,
        rate_limit_headers: bool | dict[str, str] = False,
        hang_s: float = 30.0,
        port: int = 0,
        provider_usage: bool = False,
        supports_n: bool = True,
        batch_delay_s: float = 0.0,
        judge_refute: str | None = None,
    ):
        self.judge_refute = judge_refute
        self.latency_s = latency_s
        self.models = models
        self.api_key = api_key
        self.faults: list[Fault] = list(faults or [])
        self.log: list[Entry] = []
        self.log_path = log_path
        self.rate_limit_headers = rate_limit_headers
        self.hang_s = hang_s
        self.port = port
        self.provider_usage = provider_usage
        self.supports_n = supports_n
        self.batch_delay_s = batch_delay_s
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self._prefixes: set[bytes] = set()
        self._instructions = _instructions()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._log_fh = open(log_path, "a", buffering=1) if log_path else None  # noqa: SIM115

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def _start_server(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]

    def start(self) -> FakeOpenAI:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self._start_server())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True, name="fake-openai")
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._server is not None:
            async def close() -> None:
                self._server.close()
                for task in asyncio.all_tasks():
                    if task is not asyncio.current_task():
                        task.cancel()

            asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread is not None:
                self._thread.join(5)
        if self._log_fh is not None:
            self._log_fh.close()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def serve_forever(self) -> None:
        await self._start_server()
        print(f"listening {self.url}", flush=True)
        async with self._server:
            await self._server.serve_forever()

    def set_faults(self, faults: list[Fault]) -> None:
        with self._lock:
            self.faults = list(faults)

    def completed(self) -> list[Entry]:
        return [e for e in self.log if e.completed]

    # ------------------------------------------------------------------ HTTP
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                method, path, _ = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while True:
                    h = await reader.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = h.decode("latin-1").partition(":")
                    headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                keep = await self._dispatch(method, path, headers, body, writer)
                if not keep or headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError, ValueError):
            return
        finally:
            with contextlib.suppress(Exception):  # the peer may be gone already
                writer.close()

    @staticmethod
    def _write(writer: asyncio.StreamWriter, status: int, body: bytes, extra: dict[str, str] | None = None,
               content_type: str = "application/json") -> None:
        head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", f"Content-Type: {content_type}",
                f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in (extra or {}).items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)

    async def _dispatch(self, method: str, path: str, headers: dict[str, str], body: bytes,
                        writer: asyncio.StreamWriter) -> bool:
        if method == "GET" and path.rstrip("/").endswith("/models"):
            data = {"object": "list", "data": [{"id": m, "object": "model", "owned_by": "fake"} for m in self.models]}
            self._write(writer, 200, json.dumps(data).encode())
        elif method == "GET" and path == "/_log":
            self._write(writer, 200, json.dumps([asdict(e) for e in self.log]).encode())
        elif method == "POST" and path == "/_faults":
            self.set_faults([Fault(**f) for f in json.loads(body or b"[]")])
            self._write(writer, 200, b"{}")
        elif method == "POST" and path.split("?", 1)[0].rstrip("/").endswith("/chat/completions"):
            return await self._chat(headers, body, writer)
        elif "/files" in path or "/batches" in path:
            status, data, raw = self._batch_api(method, path.split("?", 1)[0].rstrip("/"), headers, body)
            self._write(writer, status, raw if raw is not None else json.dumps(data).encode(),
                        content_type="application/octet-stream" if raw is not None else "application/json")
        else:
            self._write(writer, 404, json.dumps({"error": {"message": f"no route {path}"}}).encode())
        await writer.drain()
        return True

    def _fault_for(self, text: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times != 0 and (fault.match is None or fault.match in text):
                    if fault.times > 0:
                        fault.times -= 1
                    return fault
        return None

    async def _chat(self, headers: dict[str, str], raw: bytes, writer: asyncio.StreamWriter) -> bool:
        entry = Entry(n=len(self.log), t_recv=time.time())
        self.log.append(entry)
        try:
            body = json.loads(raw)
        except ValueError:
            return self._finish(entry, writer, 400, {"error": {"message": "body is not JSON"}})
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            entry.authorization_ok = False
            return self._finish(entry, writer, 401, _error("Incorrect API key provided.", "invalid_api_key"))
        result = await self._complete(entry, body)
        if result is None:  # a hung request: the connection closes without an answer
            return False
        status, data, extra, raw_body = result
        return self._finish(entry, writer, status, data, extra, raw_body)

    async def _complete(self, entry: Entry, body: dict[str, Any], *, batch: bool = False):
        """(status, JSON answer, extra headers, raw body) of one chat request, or None for a hang."""
        entry.key = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        entry.model = body.get("model", "")
        entry.seed = body.get("seed")
        entry.max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
        texts: list[str] = []
        for message in body.get("messages", []):
            content = message.get("content")
            parts = [{"type": "text", "text": content}] if isinstance(content, str) else (content or [])
            for part in parts:
                if part.get("type") == "text":
                    texts.append(part["text"])
                elif part.get("type") == "image_url":
                    entry.images.append(_describe_image(part["image_url"]))
        text = entry.text = "\n".join(texts)
        if entry.model not in self.models:
            return 404, _error(f"The model `{entry.model}` does not exist.", "model_not_found"), None, None
        fault = self._fault_for(text)
        entry.fault = fault.kind if fault else None
        if self.latency_s and not batch:
            await asyncio.sleep(self.latency_s)
        kind = fault.kind if fault else None
        if kind in ("batch_failed", "batch_expired") and batch:
            return kind, None, None, None
        if kind == "timeout":
            await asyncio.sleep(self.hang_s)
            return None
        if kind == "rate_limit":
            extra = {"Retry-After": f"{fault.retry_after if fault.retry_after is not None else 0.05:g}",
                     "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "20ms"}
            return 429, _error("Rate limit reached.", "rate_limit_exceeded"), extra, None
        if kind == "quota":
            return 429, _error("You exceeded your current quota.", "insufficient_quota"), None, None
        if kind in ("server_error", "batch_failed", "batch_expired"):
            return 500, _error("The server had an error.", None), None, None
        if kind == "unauthorized":
            return 401, _error("Incorrect API key provided.", "invalid_api_key"), None, None
        if kind == "unknown_model":
            return 404, _error(f"The model `{entry.model}` does not exist.", "model_not_found"), None, None
        if kind == "bad_request":
            return 400, _error("Invalid value for 'messages'.", "invalid_value"), None, None
        if kind == "context":
            return 400, _error("This model's maximum context length is 128 tokens.", "context_length_exceeded"), None, None
        if kind == "empty":
            return 200, None, None, b""
        if kind == "malformed":
            return 200, None, None, b'{"id": "chatcmpl-1", "choices": [{"mess'
        if kind == "no_choices":
            return 200, {"id": "chatcmpl-x", "object": "chat.completion", "created": 0, "model": entry.model,
                         "choices": []}, None, None
        answer_match = _ANSWER.search(text)
        answer = answer_match.group(1).strip() if answer_match else "42"
        variant = next((v for v, ins in self._instructions.items() if ins in text), "semantic_back")
        base = _BASE.search(text)
        judged = _JUDGED_BACK.findall(text)
        if kind == "bad_judgment":
            content = "The image looks consistent with the trace."
        elif judged:
            content = json.dumps({"claims": [
                {"claim": b, "supported": not (self.judge_refute and self.judge_refute in b)} for b in judged]})
        elif kind == "bad_trace":
            content = ("<think> Let me look. </think> <back> Let me look back at the image. </back> "
                       f"<think> Done. </think> \\boxed{{{answer}}}")
        elif base:
            content = insert_backs(variant, base.group(1), answer if answer_match else None)
        else:
            content = write_trace(variant, answer)
        finish = "stop"
        if kind == "length":
            content, finish = content[: len(content) // 3], "length"
        n = max(1, int(body.get("n") or 1)) if self.supports_n else 1
        choices = [{"index": i, "message": {"role": "assistant", "content": content}, "finish_reason": finish}
                   for i in range(n)]
        usage = self._usage(body, text, entry) | {"completion_tokens": n * (len(content) // 4)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        data = {
            "id": f"chatcmpl-{entry.n}",
            "object": "chat.completion",
            "created": int(entry.t_recv),
            "model": entry.model,
            "choices": choices,
            "usage": usage,
        }
        extra = None
        if isinstance(self.rate_limit_headers, dict):
            extra = dict(self.rate_limit_headers)
        elif self.rate_limit_headers:
            extra = {"x-ratelimit-limit-requests": "1000000", "x-ratelimit-remaining-requests": "999999",
                     "x-ratelimit-reset-requests": "1ms", "x-ratelimit-limit-tokens": "1000000000",
                     "x-ratelimit-remaining-tokens": "999999000", "x-ratelimit-reset-tokens": "1ms"}
        return 200, data, extra, None

    def _usage(self, body: dict[str, Any], text: str, entry: Entry) -> dict[str, Any]:
        if not self.provider_usage:
            return {"prompt_tokens": len(text) // 4 + 85 * len(entry.images)}
        units = _prompt_units(body, entry.images)
        cached = 0
        with self._lock:
            h = hashlib.sha256()
            for i, unit in enumerate(units, 1):
                h.update(unit)
                if i >= _CACHE_MIN and (i - _CACHE_MIN) % _CACHE_STEP == 0:
                    digest = h.digest()
                    if digest in self._prefixes:
                        cached = i
                    self._prefixes.add(digest)
        if len(units) < _CACHE_MIN:
            cached = 0
        return {"prompt_tokens": len(units), "prompt_tokens_details": {"cached_tokens": cached}}

    # ------------------------------------------------------------------ Files and Batches
    def _batch_api(self, method: str, path: str, headers: dict[str, str], body: bytes):
        """(status, JSON, raw bytes) of a Files or Batches call."""
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            return 401, _error("Incorrect API key provided.", "invalid_api_key"), None
        parts = path.split("/")
        fault = self._api_fault(f"{method} {path}")
        if fault is not None and fault.kind == "api_error":
            return 500, _error("The server had an error while processing your request.", "server_error"), None
        if fault is not None and fault.kind == "create_lost" and method == "POST" and path.endswith("/batches"):
            self._batch_api(method, path, headers, body)
            return 500, _error("The server had an error while processing your request.", "server_error"), None
        if method == "POST" and path.endswith("/files"):
            form = _multipart(headers, body)
            if "file" not in form:
                return 400, _error("No file in the upload.", "invalid_request"), None
            file_id = f"file-{len(self.files) + 1}"
            self.files[file_id] = form["file"][1]
            return 200, {"id": file_id, "object": "file", "bytes": len(form["file"][1]), "created_at": int(time.time()),
                         "filename": form["file"][0] or "upload.jsonl", "purpose": form.get("purpose", (None, b""))[1].decode(),
                         "status": "processed"}, None
        if method == "GET" and path.endswith("/content") and parts[-2] in self.files:
            return 200, None, self.files[parts[-2]]
        if method == "POST" and path.endswith("/batches"):
            request = json.loads(body)
            if request.get("input_file_id") not in self.files:
                return 400, _error("No such input file.", "invalid_request"), None
            batch_id = f"batch_{len(self.batches) + 1}"
            lines = [ln for ln in self.files[request["input_file_id"]].splitlines() if ln.strip()]
            batch = {"id": batch_id, "object": "batch", "endpoint": request.get("endpoint"), "errors": None,
                     "input_file_id": request["input_file_id"], "completion_window": request.get("completion_window"),
                     "status": "validating", "output_file_id": None, "error_file_id": None,
                     "created_at": int(time.time()), "metadata": request.get("metadata"),
                     "request_counts": {"total": len(lines), "completed": 0, "failed": 0}}
            self.batches[batch_id] = batch
            asyncio.get_running_loop().create_task(self._run_batch(batch, lines))
            return 200, batch, None
        if method == "GET" and path.endswith("/batches"):
            return 200, {"object": "list", "data": list(self.batches.values())[::-1], "has_more": False}, None
        if method == "GET" and parts[-1] in self.batches:
            return 200, self.batches[parts[-1]], None
        if method == "POST" and path.endswith("/cancel") and parts[-2] in self.batches:
            batch = self.batches[parts[-2]]
            if batch["status"] in ("validating", "in_progress"):
                batch["status"] = "cancelling"
            return 200, batch, None
        return 404, _error(f"no route {method} {path}", None), None

    def _api_fault(self, text: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.kind in ("api_error", "create_lost") and fault.times != 0 and (
                        fault.match is None or fault.match in text):
                    if fault.times > 0:
                        fault.times -= 1
                    return fault
        return None

    async def _run_batch(self, batch: dict[str, Any], lines: list[bytes]) -> None:
        await asyncio.sleep(self.batch_delay_s)
        if batch["status"] == "cancelling":
            batch["status"] = "cancelled"
            return
        batch["status"] = "in_progress"
        out, errors = [], []
        for raw in lines:
            if batch["status"] == "cancelling":
                break
            line = json.loads(raw)
            entry = Entry(n=len(self.log), t_recv=time.time())
            self.log.append(entry)
            result = await self._complete(entry, line["body"], batch=True)
            entry.t_done, entry.completed = time.time(), True
            if self._log_fh is not None:
                self._log_fh.write(json.dumps(asdict(entry) | {"batch": batch["id"]}) + "\n")
            status, data = (result[0], result[1]) if result is not None else (500, None)
            if status in ("batch_failed", "batch_expired"):
                code = "batch_expired" if status == "batch_expired" else "server_error"
                errors.append({"id": f"req_{entry.n}", "custom_id": line["custom_id"], "response": None,
                               "error": {"code": code, "message": f"fake {code}"}})
                batch["request_counts"]["failed"] += 1
                continue
            entry.status = status
            record = {"id": f"req_{entry.n}", "custom_id": line["custom_id"],
                      "response": {"status_code": status, "request_id": f"r{entry.n}", "body": data}, "error": None}
            (out if status == 200 else errors).append(record)
            batch["request_counts"]["completed" if status == 200 else "failed"] += 1
        for kind, records in (("output_file_id", out), ("error_file_id", errors)):
            if records:
                file_id = f"file-{len(self.files) + 1}"
                self.files[file_id] = "".join(json.dumps(r) + "\n" for r in records).encode()
                batch[kind] = file_id
        expired = any((e.get("error") or {}).get("code") == "batch_expired" for e in errors)
        batch["status"] = ("cancelled" if batch["status"] == "cancelling" else "expired" if expired else "completed")

    def _finish(self, entry: Entry, writer: asyncio.StreamWriter, status: int, data: Any,
                extra: dict[str, str] | None = None, raw_body: bytes | None = None) -> bool:
        body = raw_body if raw_body is not None else json.dumps(data).encode()
        self._write(writer, status, body, extra)
        entry.status = status
        entry.t_done = time.time()
        entry.completed = True
        if self._log_fh is not None:
            self._log_fh.write(json.dumps(asdict(entry)) + "\n")
        return True


def _prompt_units(body: dict[str, Any], images: list[dict[str, Any]]) -> list[bytes]:
    """The prompt as the provider would count it, one item per token: 4 characters of text a token, each
    image as GPT-4o bills it (tiles at its detail). Items are bytes so a prefix can be hashed."""
    from lbdata.pricing import ImageBilling, image_tokens

    billing = ImageBilling(scheme="tiles", base=85, tile=170)
    units: list[bytes] = []
    pictures = iter(images)
    for message in body.get("messages", []):
        units.append(f"<{message.get('role')}>".encode())
        content = message.get("content")
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else (content or [])
        for part in parts:
            if part.get("type") == "text":
                t = part["text"]
                units.extend(t[i:i + 4].encode() for i in range(0, len(t), 4))
            elif part.get("type") == "image_url":
                image = next(pictures)
                n = image_tokens(image.get("width") or 512, image.get("height") or 512, image.get("detail") or "auto",
                                 billing)
                units.extend(f"img:{image.get('sha256')}:{i}".encode() for i in range(n))
    return units


def _multipart(headers: dict[str, str], body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """name -> (filename, bytes) of a multipart/form-data body."""
    m = re.search(r'boundary="?([^";]+)"?', headers.get("content-type", ""))
    if not m:
        return {}
    out: dict[str, tuple[str | None, bytes]] = {}
    for chunk in body.split(b"--" + m.group(1).encode()):
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            continue
        name = re.search(rb'name="([^"]*)"', head)
        filename = re.search(rb'filename="([^"]*)"', head)
        if name:
            out[name.group(1).decode()] = (filename.group(1).decode() if filename else None,
                                           data[:-2] if data.endswith(b"\r\n") else data)
    return out


def _error(message: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}


def _describe_image(image_url: dict[str, Any]) -> dict[str, Any]:
    url = image_url.get("url", "")
    head, _, payload = url.partition(",")
    out: dict[str, Any] = {"prefix": head, "detail": image_url.get("detail")}
    if head.startswith("data:") and head.endswith(";base64"):
        data = base64.b64decode(payload)
        out["sha256"] = hashlib.sha256(data).hexdigest()
        out["bytes"] = len(data)
        try:
            from PIL import Image

            with Image.open(io.BytesIO(data)) as im:
                out["width"], out["height"] = im.size
        except Exception:  # noqa: BLE001 - a broken image is recorded as such
            out["width"] = out["height"] = None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--log", default=None, help="append one JSON line per answered request")
    parser.add_argument("--models", default="fake-teacher", help="comma-separated served model names")
    parser.add_argument("--api-key", default=None, help="require this bearer key")
    parser.add_argument("--faults", default="[]", help="JSON list of fault rules")
    parser.add_argument("--rate-limit-headers", action="store_true", help="send x-ratelimit-* headers")
    parser.add_argument("--provider-usage", action="store_true", help="GPT-4o image tokens and prefix-cache hits")
    parser.add_argument("--batch-delay", type=float, default=0.0, help="seconds before a batch starts running")
    args = parser.parse_args()
    server = FakeOpenAI(
        latency_s=args.latency,
        models=tuple(args.models.split(",")),
        api_key=args.api_key,
        faults=[Fault(**f) for f in json.loads(args.faults)],
        log_path=args.log,
        rate_limit_headers=args.rate_limit_headers,
        port=args.port,
        provider_usage=args.provider_usage,
        batch_delay_s=args.batch_delay,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(server.serve_forever())


if __name__ == "__main__":
    main()


def base_trace(i: int) -> str:
    """A plain reasoning trace for problem ``i`` of ``write_problems`` (insert-mode tests)."""
    return (
        f"<think> The figure shows a bar chart with two bars, and the question asks for {i} plus one. "
        "First I read the height of the left bar against the vertical axis and note the value it reaches. "
        "Then I read the right bar in the same way and check which gridline it stops at. "
        f"Adding one to {i} as the question asks gives the total; so the answer is {i + 1}. </think> "
        f"\\boxed{{{i + 1}}}"
    )


def write_problems(folder, n: int, *, with_traces: bool = False, size: tuple[int, int] = (96, 64), vary: bool = True):
    """A jsonl source of ``n`` problems (``What is i+1?``, one small PNG each); returns its path.

    ``vary`` widens image ``i`` by ``i % 7`` pixels; without it every image has ``size`` (colours differ).
    """
    from pathlib import Path

    from PIL import Image

    folder = Path(folder)
    (folder / "img").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        Image.new("RGB", (size[0] + (i % 7 if vary else 0), size[1]), ((37 * i) % 256, (91 * i) % 256, 120)).save(folder / "img" / f"{i}.png")
        row = {"id": f"p{i}", "images": [f"img/{i}.png"], "problem": f"What is {i}+1?", "answer": str(i + 1)}
        if with_traces:
            row["rollout"] = base_trace(i)
        rows.append(row)
    path = folder / "problems.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
