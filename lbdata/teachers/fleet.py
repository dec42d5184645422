"""Spread one teacher's requests over several OpenAI-compatible servers (a fleet of vLLM or SGLang replicas).

``Fleet.acquire()`` hands out the endpoint with the fewest requests in flight (ties go to the one that
has sent least), never more than ``cap`` in flight on one endpoint; ``Fleet.release(endpoint, outcome)``
returns it and records how it went. An endpoint that stops answering is *cooled down*: a refused or
lost connection cools it at once, a streak of ``STREAK`` server errors or timeouts cools it too. While
it cools, the others take its requests; when the cooldown ends, one probe request may go to it, and a
success brings it back (a failure cools it again, for twice as long, up to ``MAX_COOLDOWN_S``). When
every endpoint is cooling, the one whose cooldown ends first is used anyway, so a fleet of one behaves
like a single server and the engine's retries and backoff decide.

The fleet knows nothing of HTTP: the teacher sends, and tells the fleet which outcome it saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any, Literal

from lbdata.secrets import redact_url

Outcome = Literal["ok", "down", "error", "other"]
"""ok: answered. down: connection refused or lost. error: 5xx or timeout. other: a failure that says
nothing about the endpoint's health (429, a bad request)."""

STREAK = 3
"""Consecutive server errors or timeouts that cool an endpoint down."""
COOLDOWN_S = 5.0
"""First cooldown of an endpoint; each further one in a row doubles it."""
MAX_COOLDOWN_S = 120.0


@dataclass
class Endpoint:
    """One server of the fleet and its counts."""

    url: str | None  # None: the provider's default base URL
    client: Any = None  # the HTTP client for this server (made by the teacher, per event loop)
    in_flight: int = 0
    sent: int = 0
    ok: int = 0
    failed: int = 0
    cooldowns: int = 0
    streak: int = 0
    cool_until: float = 0.0
    probing: bool = False  # cooldown over: one request at a time until one succeeds
    _cool_s: float = COOLDOWN_S

    @property
    def label(self) -> str:
        return redact_url(self.url) if self.url else "default"

    def cooling(self, now: float) -> bool:
        return now < self.cool_until

    def counts(self, now: float | None = None) -> dict[str, Any]:
        now = time.monotonic() if now is None else now
        state = "cooling" if self.cooling(now) else "probing" if self.probing else "up"
        return {"sent": self.sent, "ok": self.ok, "failed": self.failed, "cooldowns": self.cooldowns,
                "in_flight": self.in_flight, "state": state}


class Fleet:
    """Least-load spreading with a per-endpoint in-flight cap and cooldowns for endpoints that stop answering."""

    def __init__(self, urls: list[str | None], *, cap: int | None = None):
        if not urls:
            raise ValueError("a fleet needs at least one endpoint")
        self.endpoints = [Endpoint(url) for url in urls]
        self.cap = cap
        self._freed: asyncio.Event | None = None

    def __len__(self) -> int:
        return len(self.endpoints)

    def _room(self, ep: Endpoint) -> bool:
        if ep.probing:
            return ep.in_flight == 0
        return self.cap is None or ep.in_flight < self.cap

    def _pick(self, now: float, avoid: set[int]) -> Endpoint | None:
        usable = [e for i, e in enumerate(self.endpoints) if not e.cooling(now) and i not in avoid]
        if not usable:  # everything cools (or was tried): the endpoint back soonest
            usable = [min(self.endpoints, key=lambda e: e.cool_until)]
        room = [e for e in usable if self._room(e)]
        if not room:
            return None
        return min(room, key=lambda e: (e.in_flight, e.sent))

    async def acquire(self, avoid: set[int] | None = None) -> Endpoint:
        """The least-loaded usable endpoint, waiting while all usable ones are at their cap. ``avoid``: indexes
        of endpoints already tried for this request (used only when nothing else is up)."""
        while True:
            now = time.monotonic()
            ep = self._pick(now, avoid or set())
            if ep is not None:
                ep.in_flight += 1
                ep.sent += 1
                return ep
            if self._freed is None:
                self._freed = asyncio.Event()
            waking = [e.cool_until - now for e in self.endpoints if e.cooling(now)]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._freed.wait(), min(waking) if waking else None)

    def index(self, ep: Endpoint) -> int:
        return self.endpoints.index(ep)

    def release(self, ep: Endpoint, outcome: Outcome) -> None:
        """Give ``ep`` back after one request, recording its ``outcome``."""
        now = time.monotonic()
        ep.in_flight -= 1
        if outcome == "ok":
            ep.ok += 1
            ep.streak = 0
            ep.probing = False
            ep._cool_s = COOLDOWN_S
        else:
            ep.failed += 1
            if outcome == "down" or (outcome == "error" and ep.streak + 1 >= STREAK) or (
                    outcome == "error" and ep.probing):
                self._cool(ep, now)
            elif outcome == "error":
                ep.streak += 1
        self._wake()

    def _cool(self, ep: Endpoint, now: float) -> None:
        if len(self.endpoints) == 1:  # nowhere else to send: the engine's backoff paces the retries
            return
        if not ep.cooling(now):
            ep.cooldowns += 1
            ep.cool_until = now + ep._cool_s
            ep._cool_s = min(ep._cool_s * 2, MAX_COOLDOWN_S)
        ep.streak = 0
        ep.probing = True  # when the cooldown ends, one request at a time until one succeeds

    def _wake(self) -> None:
        if self._freed is not None:  # everyone waiting looks again
            self._freed.set()
            self._freed = None

    def has_other(self, avoid: set[int]) -> bool:
        """Whether an endpoint outside ``avoid`` is up (not cooling), i.e. a failed request may go elsewhere."""
        now = time.monotonic()
        return any(not e.cooling(now) for i, e in enumerate(self.endpoints) if i not in avoid)

    def counts(self) -> dict[str, dict[str, Any]]:
        """Per-endpoint counts: sent, ok, failed, cooldowns, in flight, state (up, cooling, probing)."""
        now = time.monotonic()
        return {e.label: e.counts(now) for e in self.endpoints}

    def reset_loop(self) -> None:
        """Forget the event-loop-bound parts (clients, waiters) after the loop that made them ends."""
        self._freed = None
        for e in self.endpoints:
            e.client = None
            e.in_flight = 0


def read_endpoints(values: list[str]) -> list[str]:
    """Base URLs from ``--base-url`` values: each a URL, or a file with one URL a line (``#`` comments)."""
    from pathlib import Path

    from lbdata.errors import UsageError

    urls: list[str] = []
    for value in values:
        if value.startswith(("http://", "https://")):
            urls.append(value.rstrip("/"))
            continue
        path = Path(value)
        if not path.is_file():
            shown = "(not shown: it holds '@')" if "@" in value else repr(value)  # user:password@host is no URL to redact
            raise UsageError(f"--base-url {shown} is neither an http(s) URL nor a file of URLs; "
                             "pass e.g. http://10.0.0.5:8000/v1 or a text file with one URL a line")
        try:
            text = path.read_text(encoding="utf-8-sig")  # -sig: a byte-order mark from a Windows editor is no URL
        except (OSError, UnicodeDecodeError) as exc:
            reason = "it is not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else exc.strerror
            raise UsageError(f"--base-url {value}: cannot read it ({reason}); pass a URL or a text file of URLs, "
                             "one a line") from None
        for n, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            if not line.startswith(("http://", "https://")):
                shown = "(not shown: it holds '@')" if "@" in line else repr(line)
                raise UsageError(f"{path}:{n}: {shown} is not an http(s) URL; write one URL a line, "
                                 "e.g. http://10.0.0.5:8000/v1")
            urls.append(line.rstrip("/"))
    if values and not urls:
        raise UsageError("--base-url names no server; give at least one http(s) URL")
    return list(dict.fromkeys(urls))
