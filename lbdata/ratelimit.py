"""Token buckets for requests and tokens per minute, kept in step with the server's own accounting.

A ``TokenBucket`` refills at ``per_minute / 60`` per second and holds at most one second's worth
(``burst_s``), so a limit of 600 RPM lets 10 requests start at once and then one every 100 ms — the
way hosted APIs enforce their minute limits over shorter windows. A request larger than the bucket
(a long prompt against a small TPM) waits for a full bucket and leaves the bucket in debt, so the
average rate still holds.

``RateLimiter`` pairs an RPM and a TPM bucket, lowers their limits to the server's
``x-ratelimit-limit-*`` headers and their levels to ``x-ratelimit-remaining-*`` when responses carry
them, and pauses everything for a ``Retry-After``. With no limit configured and no headers seen, a
bucket costs one comparison per request.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(value: str) -> float | None:
    """Seconds in an ``x-ratelimit-reset-*`` value such as ``1s``, ``6m0s``, ``20ms`` or ``0.5``."""
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        return None
    return sum(float(n) * _UNIT_S[u] for n, u in parts)


class TokenBucket:
    """A bucket of ``per_minute`` units per minute (``None``: unlimited)."""

    def __init__(self, per_minute: float | None = None, *, burst_s: float = 1.0):
        self.burst_s = burst_s
        self.per_minute: float | None = None
        self.rate = 0.0
        self.capacity = 0.0
        self.level = 0.0
        self._stamp = time.monotonic()
        self.paused_until = 0.0
        if per_minute is not None:
            self.set_limit(per_minute)

    def set_limit(self, per_minute: float) -> None:
        if per_minute <= 0:
            raise ValueError("a rate limit must be positive")
        first = self.per_minute is None
        self._refill(time.monotonic())
        self.per_minute = float(per_minute)
        self.rate = self.per_minute / 60.0
        self.capacity = max(1.0, self.rate * self.burst_s)
        self.level = self.capacity if first else min(self.level, self.capacity)

    def _refill(self, now: float) -> None:
        if self.per_minute is not None:
            self.level = min(self.capacity, self.level + (now - self._stamp) * self.rate)
        self._stamp = now

    async def take(self, n: float = 1.0) -> None:
        """Wait until ``n`` units (at most a full bucket) are there, then take ``n``."""
        while True:
            now = time.monotonic()
            if now < self.paused_until:
                await asyncio.sleep(self.paused_until - now)
                continue
            if self.per_minute is None:
                return
            self._refill(now)
            need = min(n, self.capacity)
            if self.level >= need:
                self.level -= n
                return
            await asyncio.sleep(max(0.001, (need - self.level) / self.rate))

    def give(self, n: float) -> None:
        """Return ``n`` units (negative: take more) after the true size of a request is known."""
        if self.per_minute is not None:
            self.level = min(self.capacity, self.level + n)

    def observe(self, limit: float | None, remaining: float | None) -> None:
        """Follow the server: a lower limit replaces ours; our level never exceeds what it has left."""
        if limit is not None and limit > 0 and (self.per_minute is None or limit < self.per_minute):
            self.set_limit(limit)
        if remaining is not None and self.per_minute is not None:
            self._refill(time.monotonic())
            self.level = min(self.level, remaining)

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, time.monotonic() + seconds)


def _number(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


class RateLimiter:
    """Requests-per-minute and tokens-per-minute buckets for one teacher."""

    def __init__(self, rpm: float | None = None, tpm: float | None = None):
        self.requests = TokenBucket(rpm)
        self.tokens = TokenBucket(tpm)

    async def acquire(self, tokens: int) -> None:
        """Wait for room for one request of ``tokens`` (prompt + completion limit) tokens."""
        await self.requests.take(1)
        await self.tokens.take(tokens)

    def settle(self, estimated: int, actual: int) -> None:
        """Correct the token bucket once the request's real token count is known."""
        self.tokens.give(estimated - actual)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Adjust to ``x-ratelimit-{limit,remaining}-{requests,tokens}`` response headers."""
        if not headers:
            return
        for kind, bucket in (("requests", self.requests), ("tokens", self.tokens)):
            remaining = _number(headers, f"x-ratelimit-remaining-{kind}")
            bucket.observe(_number(headers, f"x-ratelimit-limit-{kind}"), remaining)
            if remaining is not None and remaining < 1:
                reset = parse_duration(headers.get(f"x-ratelimit-reset-{kind}", ""))
                if reset:
                    self.requests.pause(reset)

    def pause(self, seconds: float) -> None:
        """Start nothing new for ``seconds`` (the server asked us to back off)."""
        self.requests.pause(seconds)

    def describe(self) -> dict[str, float | None]:
        return {"rpm": self.requests.per_minute, "tpm": self.tokens.per_minute}
