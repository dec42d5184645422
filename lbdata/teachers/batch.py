"""Send a run's requests through the OpenAI Batch API (or any server that speaks it), at the batch price.

``Batcher.submit(request)`` is what ``generate --batch`` awaits instead of an online call. Requests
pile up into a JSONL input file (one line per request: ``custom_id`` = the request's cache key, the
same chat body an online call sends, images encoded); a file is submitted when it reaches
``batch_max_requests`` lines or ``batch_max_bytes`` bytes, or when no new request came for
``LINGER_S`` seconds (every worker is waiting). Submitting uploads the file (purpose ``batch``) and
creates a batch with a 24 h window; the batch is polled every ``poll_interval`` seconds; when it ends,
its output and error files are read back. Every answer is priced and written to the run's request
cache under its key, in one transaction with the batch's ``collected`` mark, and handed to the
waiting request, so the engine records it exactly as an online answer. A failed or expired line (or
one a cancelled batch never ran) raises ``TransientError``: the engine retries it, and the retry goes
into the next batch. A truncated answer or a rejected trace asked again goes the same way.

Crash safety: a submission is recorded in the ledger (its keys and a local submission id, also sent
as the batch's metadata) before the batch is created, and its batch id right after. A re-run loads
the uncollected submissions and polls them instead of submitting again; one whose batch id never
reached the ledger is found again by its metadata, or submitted anew if the provider has none.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lbdata.errors import RequestFailed, TeacherError, UsageError
from lbdata.teachers.base import TeacherResponse, TraceRequest, TransientError

if TYPE_CHECKING:
    from openai.types import Batch

    from lbdata.ledger import Ledger
    from lbdata.records import Usage
    from lbdata.teachers.openai import OpenAITeacher

log = logging.getLogger(__name__)

ENDPOINT = "/v1/chat/completions"
WINDOW = "24h"
LINGER_S = 1.0
"""Submit what has piled up once no new request came for this long."""
MAX_WORKERS = 20_000
"""Requests one run keeps waiting on batches at once (the engine's workers in batch mode)."""
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
SUBMIT_TRIES = 5
OVERDUE_S = 3600.0
"""A batch still 'cancelling' this long after its cancel, or not ended this long after its window closed, is
given up: what came back is read and the rest is sent again (the provider runs nothing past the window)."""
_COLUMNS = frozenset({"submission", "batch_id", "status", "collected", "created_at"})  # the ledger's own columns


def batch_line(key: str, body: dict[str, Any]) -> bytes:
    """One input line: the request's cache key as ``custom_id``, the chat body as an online call sends it."""
    return json.dumps({"custom_id": key, "method": "POST", "url": ENDPOINT, "body": body},
                      separators=(",", ":")).encode() + b"\n"


@dataclass
class Packer:
    """Splits lines into files of at most ``max_requests`` lines and ``max_bytes`` bytes."""

    max_requests: int
    max_bytes: int
    files: list[tuple[int, int]] = field(default_factory=list)  # (lines, bytes) of every file so far

    def fits(self, size: int) -> bool:
        """Whether a line of ``size`` bytes still fits in the current file."""
        if not self.files:
            return False
        lines, used = self.files[-1]
        return lines < self.max_requests and used + size <= self.max_bytes

    def add(self, size: int) -> bool:
        """Count one line; True when it opened a new file."""
        if size > self.max_bytes:
            raise RequestFailed(f"batch_line_too_big: one request is {size:,} bytes with its images, over "
                                f"--batch-max-bytes {self.max_bytes:,}; raise it or lower --max-pixels")
        new = not self.fits(size)
        if new:
            self.files.append((0, 0))
        lines, used = self.files[-1]
        self.files[-1] = (lines + 1, used + size)
        return new


def check_teacher(teacher: Any) -> None:
    """A one-line ``UsageError`` unless ``teacher`` can send batches: OpenAI-compatible, one server."""
    from lbdata.teachers.openai import OpenAITeacher

    if not isinstance(teacher, OpenAITeacher):
        raise UsageError(f"--batch needs an OpenAI-compatible teacher, not {teacher.name!r}")
    if len(teacher.fleet) > 1:
        raise UsageError("--batch sends to one server; pass a single --base-url (or none for the OpenAI API)")


@dataclass
class _Submission:
    submission: str
    keys: list[str]
    lines: list[bytes] = field(default_factory=list)
    batch_id: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


class Batcher:
    """Collects a run's requests into batches, submits and polls them, and hands back the answers."""

    def __init__(self, teacher: OpenAITeacher, ledger: Ledger, config: Any, priced: Callable[[Usage], Usage]):
        """``config``: the run's ``GenerateConfig``; ``priced``: the engine's pricing of a reported usage."""
        check_teacher(teacher)
        self.teacher = teacher
        self.ledger = ledger
        self.priced = priced
        self.max_requests = config.batch_max_requests
        self.max_bytes = config.batch_max_bytes
        self.poll_s = config.poll_interval
        self.run_name = ledger.run_dir.name
        self.workers = min(config.batch_max_requests, MAX_WORKERS)
        self._waiting: dict[str, list[asyncio.Future[TeacherResponse]]] = {}
        self._open: dict[str, str] = {}  # request key -> submission id, for every submitted, uncollected line
        self._answers: dict[str, TeacherResponse | BaseException] = {}  # read back in this process, not yet taken
        self._pile = _Submission(uuid.uuid4().hex[:16], [])
        self._piled: set[str] = set()
        self._encoding: set[str] = set()
        self._pile_bytes = 0
        self._last_add = time.monotonic()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._counts: Counter[str] = Counter()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Resume the run's uncollected batches and start the submit-when-idle timer (inside the event loop)."""
        for row in self.ledger.iter_batches(uncollected=True):
            info = {k: v for k, v in row.items() if k not in _COLUMNS}
            sub = _Submission(row["submission"], list(row["keys"]), batch_id=row["batch_id"], info=info)
            for key in sub.keys:
                self._open[key] = sub.submission
            self._counts["resumed"] += 1
            self._spawn(self._follow(sub, resumed=True))
        self._spawn(self._linger())

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def counts(self) -> dict[str, int]:
        """submitted, resumed, lines_answered, lines_failed so far, and running: batches not read back yet."""
        return {**self._counts, "running": len(set(self._open.values()))}

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ requests
    async def submit(self, request: TraceRequest) -> TeacherResponse:
        """Answer one request through a batch (waits until its batch has ended and been read)."""
        key = self.teacher.request_key(request)
        if key in self._answers:  # read back from a batch before this request asked
            got = self._answers.pop(key)
            if isinstance(got, BaseException):
                raise got
            return got
        future: asyncio.Future[TeacherResponse] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(future)
        if key not in self._open and key not in self._piled and key not in self._encoding:
            self._encoding.add(key)  # the same request asked twice meanwhile waits for this one line
            try:
                body = await asyncio.to_thread(self.teacher.chat_body, request)
            finally:
                self._encoding.discard(key)
            self._add(key, batch_line(key, body))
        return await future

    def _add(self, key: str, line: bytes) -> None:
        if len(line) > self.max_bytes:
            self._resolve(key, RequestFailed(
                f"batch_line_too_big: one request is {len(line):,} bytes with its images, over --batch-max-bytes "
                f"{self.max_bytes:,}; raise it or lower --max-pixels"))
            return
        if self._pile.keys and (len(self._pile.keys) >= self.max_requests or self._pile_bytes + len(line) > self.max_bytes):
            self._flush()
        self._pile.keys.append(key)
        self._piled.add(key)
        self._pile.lines.append(line)
        self._pile_bytes += len(line)
        self._last_add = time.monotonic()
        if len(self._pile.keys) >= self.max_requests:
            self._flush()

    def _flush(self) -> None:
        sub, self._pile, self._pile_bytes = self._pile, _Submission(uuid.uuid4().hex[:16], []), 0
        self._piled = set()
        if sub.keys:
            for key in sub.keys:
                self._open[key] = sub.submission
            self._spawn(self._follow(sub))

    async def _linger(self) -> None:
        while True:
            await asyncio.sleep(min(LINGER_S / 4, 0.25))
            if self._pile.keys and time.monotonic() - self._last_add >= LINGER_S:
                self._flush()

    # ------------------------------------------------------------------ one batch
    async def _follow(self, sub: _Submission, resumed: bool = False) -> None:
        """Submit (unless resumed with a batch id), poll until the batch ends, read its answers back."""
        try:
            while True:
                try:
                    if sub.batch_id is None and resumed:
                        sub.batch_id = await self._find(sub)
                        if sub.batch_id is None:  # never created: its requests go out again as they are asked
                            self.ledger.delete_batch(sub.submission)
                            self._release(sub, TransientError("batch_not_submitted", "the batch was never created"))
                            return
                        self.ledger.put_batch(sub.submission, status="validating", info=sub.info,
                                              batch_id=sub.batch_id)
                    if sub.batch_id is None:
                        await self._create(sub)
                    batch = await self._poll(sub)
                    await self._collect(sub, batch)
                    return
                except TransientError as exc:
                    if sub.batch_id is None and not resumed:
                        raise
                    # The batch runs (and is billed) at the provider, or may: sending its requests again would pay
                    # twice, so a provider that does not answer for a while is waited out.
                    log.warning("batch %s: %s; looking again in %gs", sub.batch_id or sub.submission, exc, self.poll_s)
                    await asyncio.sleep(self.poll_s)
        except asyncio.CancelledError:
            raise
        except (TeacherError, RequestFailed) as exc:
            self._abandon(sub, resumed)
            self._release(sub, exc)
        except Exception as exc:  # noqa: BLE001 - the provider failed us: every request of the batch retries
            log.warning("batch %s: %s", sub.batch_id or sub.submission, exc)
            self._abandon(sub, resumed)
            self._release(sub, TransientError("batch_error", str(exc)[:300]))

    def _abandon(self, sub: _Submission, resumed: bool) -> None:
        # Never created: nothing to resume. A resumed one without an id may have been created before a kill: its
        # record stays, so that a later run can still find it by its metadata.
        if sub.batch_id is None and not resumed:
            self.ledger.delete_batch(sub.submission)

    async def _call(self, what: str, make: Any) -> Any:
        """One Batch/Files API call, retried on connection errors and 5xx; 4xx become the teacher's errors."""
        import openai

        for attempt in range(SUBMIT_TRIES):
            try:
                return await make()
            except openai.APIStatusError as exc:
                if exc.status_code == 404:  # no such endpoint (a server without the Batch API), or no such batch
                    message = self.teacher._scrub(str(getattr(exc, "message", "") or exc))[:200]
                    raise TeacherError(
                        f"{self.teacher.where} has no Batch API {what} here (404: {message}); --batch needs a server "
                        "that speaks the Batch API (the OpenAI API, ...) and the --base-url and API key the run's "
                        "batches were made with; or run without --batch") from None
                error = self.teacher._status_error(exc)
                if not isinstance(error, TransientError):
                    raise error from None
            except (openai.APIConnectionError, openai.APITimeoutError) as exc:
                error = TransientError("connection_error", str(exc))
            if attempt + 1 == SUBMIT_TRIES:
                raise error
            await asyncio.sleep(min(30.0, 0.5 * 2 ** attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _create(self, sub: _Submission) -> None:
        client = self.teacher.client()
        data = b"".join(sub.lines)
        sub.info = {"keys": sub.keys, "requests": len(sub.keys), "bytes": len(data)}
        self.ledger.put_batch(sub.submission, status="submitting", info=sub.info)
        sub.lines = []
        uploaded = await self._call("upload", lambda: client.files.create(
            file=(f"lbdata-{self.run_name}-{sub.submission}.jsonl", data, "application/jsonl"), purpose="batch"))
        sub.info["input_file_id"] = uploaded.id
        self.ledger.put_batch(sub.submission, status="submitting", info=sub.info)
        asked = False

        async def create() -> Any:
            nonlocal asked
            if asked:  # the last create may have reached the provider with its answer lost: never create twice
                page = await client.batches.list(limit=100)
                for found in page.data:
                    if (found.metadata or {}).get("lbdata_submission") == sub.submission:
                        return found
            asked = True
            return await client.batches.create(
                input_file_id=uploaded.id, endpoint=ENDPOINT, completion_window=WINDOW,
                metadata={"lbdata_run": self.run_name[:512], "lbdata_submission": sub.submission})

        batch = await self._call("create", create)
        sub.batch_id = batch.id
        self.ledger.put_batch(sub.submission, status=batch.status, info=sub.info, batch_id=batch.id)
        self._counts["submitted"] += 1
        log.info("batch %s: %d requests, %d bytes", batch.id, len(sub.keys), sub.info["bytes"])

    async def _find(self, sub: _Submission) -> str | None:
        """The batch a killed run created for ``sub`` before it could record the id (found by its metadata)."""
        client = self.teacher.client()
        page = await self._call("list", lambda: client.batches.list(limit=100))
        for batch in page.data:
            if (batch.metadata or {}).get("lbdata_submission") == sub.submission:
                return batch.id
        return None

    async def _poll(self, sub: _Submission) -> Any:
        client = self.teacher.client()
        while True:
            batch = await self._call("retrieve", lambda: client.batches.retrieve(sub.batch_id))
            counts = batch.request_counts
            sub.info.update(
                completed=counts.completed if counts else 0, failed=counts.failed if counts else 0,
                output_file_id=batch.output_file_id, error_file_id=batch.error_file_id,
            )
            self.ledger.put_batch(sub.submission, status=batch.status, info=sub.info, batch_id=sub.batch_id)
            if batch.status in TERMINAL:
                return batch
            if _overdue(batch, time.time()):
                log.warning("batch %s is still %s long after it should have ended; reading what it returned and "
                            "sending the rest again", sub.batch_id, batch.status)
                return batch
            await asyncio.sleep(self.poll_s)

    async def _lines(self, file_id: str | None) -> list[dict[str, Any]]:
        if not file_id:
            return []
        client = self.teacher.client()
        content = await self._call("content", lambda: client.files.content(file_id))
        out = []
        for raw in content.content.splitlines():
            if raw.strip():
                try:
                    line = json.loads(raw)
                except ValueError:
                    line = None
                if isinstance(line, dict) and isinstance(line.get("custom_id"), str):
                    out.append(line)
                else:
                    log.warning("batch file %s: a line that is not a result with a custom_id was skipped", file_id)
        return out

    async def _collect(self, sub: _Submission, batch: Batch) -> None:
        """Read the output and error files; cache every answer (one transaction with the collected mark)."""
        from lbdata.generate.sender import cache_entry
        from lbdata.teachers.openai import read_response

        results: dict[str, TeacherResponse | BaseException] = {}
        keys = set(sub.keys)
        for line in await self._lines(batch.error_file_id) + await self._lines(batch.output_file_id):
            key = line["custom_id"]
            if key not in keys or isinstance(results.get(key), TeacherResponse):  # an answer for it came already
                continue
            response, error = line.get("response"), line.get("error")
            response = response if isinstance(response, dict) else {}
            if error or response.get("status_code") != 200:
                error = error if isinstance(error, dict) else {"message": str(error)} if error else {}
                code = str(error.get("code") or f"status_{response.get('status_code')}")
                message = str(error.get("message") or json.dumps(response.get("body")))[:200]
                reason = "batch_expired" if "expired" in code else "batch_failed"
                results[key] = TransientError(reason, f"{code}: {message}")
                continue
            try:
                results[key] = read_response(json.dumps(response.get("body")).encode())
            except (TransientError, RequestFailed) as exc:
                results[key] = exc
        why = f"batch {batch.id} ended {batch.status} before this request ran"
        errors = (batch.errors.data if batch.errors is not None else None) or []
        if errors:  # a batch refused as a whole (its input file did not validate) says why
            why += f" ({str(errors[0].message or errors[0])[:200]})"
        missing = TransientError(f"batch_{batch.status}", why)
        cost = 0.0
        entries = []
        for key in sub.keys:
            got = results.setdefault(key, missing)
            if isinstance(got, TeacherResponse):
                usage = self.priced(got.usage)
                cost += usage.cost_usd
                entries.append((key, cache_entry(got, usage)))
        status = Counter("ok" if isinstance(r, TeacherResponse) else r.reason if isinstance(r, TransientError)
                         else str(r).split(":", 1)[0] for r in results.values())
        sub.info.update(cost_usd=cost, answered=status.pop("ok", 0), errors=dict(status))
        with self.ledger.transaction():
            for key, entry in entries:
                self.ledger.cache_put(key, entry)
            self.ledger.put_batch(sub.submission, status=batch.status, info=sub.info, batch_id=sub.batch_id,
                                  collected=True)
        self._counts["lines_answered"] += sub.info["answered"]
        self._counts["lines_failed"] += sum(status.values())
        for key in sub.keys:
            self._open.pop(key, None)
            self._resolve(key, results[key])

    def _release(self, sub: _Submission, error: BaseException) -> None:
        for key in sub.keys:
            if self._open.get(key) == sub.submission:
                del self._open[key]
            self._resolve(key, error)

    def _resolve(self, key: str, result: TeacherResponse | BaseException) -> None:
        futures = self._waiting.pop(key, [])
        if not futures:
            if isinstance(result, TeacherResponse):
                self._answers[key] = result  # a request that has not asked yet (a resumed run) takes it later
            return
        for future in futures:
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)


def _overdue(batch: Batch, now: float) -> bool:
    """Whether a batch that has not ended is stuck: cancelling for over ``OVERDUE_S``, or past its window by as much."""
    if batch.status == "cancelling" and batch.cancelling_at:
        return now > batch.cancelling_at + OVERDUE_S
    created_at = batch.created_at
    ends = batch.expires_at or (created_at + 24 * 3600 if created_at else None)
    return ends is not None and now > ends + OVERDUE_S


def cancel_run_batches(ledger: Ledger, api_key: str | None = None) -> list[tuple[str, str]]:
    """Cancel the batches of a run that have not ended, at the server the run was made with; returns
    (batch id, new status) of each."""
    from lbdata.teachers import load_teacher
    from lbdata.teachers.openai import OpenAITeacher

    config = ledger.read_config().get("config") or {}
    options = {k: v for k, v in (config.get("teacher_options") or {}).items() if k in ("base_url", "timeout")}
    teacher = load_teacher(config.get("teacher", "gpt-4o"), **options, **({"api_key": api_key} if api_key else {}))
    if not isinstance(teacher, OpenAITeacher):
        raise UsageError(f"run {ledger.run_dir.name} was not made by an OpenAI-compatible teacher; it has no batches")
    return asyncio.run(_cancel(teacher, ledger))


async def _cancel(teacher: OpenAITeacher, ledger: Ledger) -> list[tuple[str, str]]:
    import openai

    client = teacher.client()
    out = []
    try:
        for row in ledger.iter_batches(uncollected=True):
            if not row["batch_id"] or row["status"] in TERMINAL:
                continue
            try:
                batch = await client.batches.cancel(row["batch_id"])
            except openai.APIStatusError as exc:
                raise teacher._status_error(exc) from None
            except openai.APIError as exc:
                raise TeacherError(f"cannot reach {teacher.where} to cancel {row['batch_id']} ({exc}); "
                                   "check the network and the run's --base-url, then run the command again") from None
            info = {k: v for k, v in row.items() if k not in _COLUMNS}
            ledger.put_batch(row["submission"], status=batch.status, info=info, batch_id=batch.id)
            out.append((batch.id, batch.status))
    finally:
        await teacher.aclose()
    return out
