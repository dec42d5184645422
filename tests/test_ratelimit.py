"""Token buckets: pacing, debt for big requests, the server's headers, Retry-After pauses."""

import asyncio
import time

import pytest

from lbdata.ratelimit import RateLimiter, TokenBucket, parse_duration


def _elapsed(coro) -> float:
    t0 = time.monotonic()
    asyncio.run(coro)
    return time.monotonic() - t0


@pytest.mark.parametrize(("text", "seconds"), [("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("1h2m3.5s", 3723.5),
                                               ("0.5", 0.5), ("soon", None), ("", None)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


def test_unlimited_bucket_never_waits():
    bucket = TokenBucket(None)

    async def take_many():
        for _ in range(10_000):
            await bucket.take(1)

    assert _elapsed(take_many()) < 1.0


def test_bucket_paces_after_one_second_of_burst():
    bucket = TokenBucket(6000)  # 100 per second, 100 at once

    async def take(n):
        for _ in range(n):
            await bucket.take(1)

    assert _elapsed(take(100)) < 0.2  # the burst
    assert 0.4 < _elapsed(take(50)) < 1.5  # then 100 per second


def test_a_request_bigger_than_the_bucket_goes_into_debt():
    bucket = TokenBucket(600)  # 10 per second, capacity 10

    async def go():
        await bucket.take(40)  # waits for a full bucket, then owes 30
        t0 = time.monotonic()
        await bucket.take(1)
        return time.monotonic() - t0

    assert asyncio.run(go()) > 2.5  # the debt is paid back before anything else starts


def test_server_headers_lower_the_limit_and_the_level():
    limiter = RateLimiter(rpm=6000)
    limiter.observe({"x-ratelimit-limit-requests": "600", "x-ratelimit-remaining-requests": "2",
                     "x-ratelimit-limit-tokens": "60000", "x-ratelimit-remaining-tokens": "50"})
    assert limiter.describe() == {"rpm": 600.0, "tpm": 60000.0}
    assert limiter.requests.level <= 2 and limiter.tokens.level <= 50
    limiter.observe({"x-ratelimit-limit-requests": "100000"})  # a higher server limit never raises ours
    assert limiter.describe()["rpm"] == 600.0


def test_no_remaining_requests_pauses_until_the_reset():
    limiter = RateLimiter()
    limiter.observe({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "300ms",
                     "x-ratelimit-limit-requests": "10000"})
    assert 0.25 < _elapsed(limiter.acquire(10)) < 1.0


def test_pause_holds_every_request():
    limiter = RateLimiter()
    limiter.pause(0.3)

    async def three():
        await asyncio.gather(*(limiter.acquire(1) for _ in range(3)))

    assert 0.25 < _elapsed(three()) < 1.0


def test_settle_returns_unused_tokens():
    limiter = RateLimiter(tpm=60_000)  # 1000 per second
    asyncio.run(limiter.acquire(800))
    before = limiter.tokens.level
    limiter.settle(estimated=800, actual=300)
    assert limiter.tokens.level == pytest.approx(min(limiter.tokens.capacity, before + 500), abs=5)
