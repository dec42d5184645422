"""One request to a server-backed teacher: cache, budget, rate limits, retries, price.

``Sender.send(request, spend)`` is the path every request to a ``RemoteTeacher`` takes, whoever asks
(the generation engine, ``lbdata judge``, ``lbdata eval --base-url``):

1. **cache** — the same request answered before (by its ``request_key``) is answered from the run's
   cache, at no cost (``cache``: the run's ledger; ``None``: never read);
2. **budget** — a request whose worst case (every completion token used) could take the spend past
   ``budget_usd`` is not sent: ``BudgetStop`` says so, and nothing is reserved;
3. **rate limits** — the ``RateLimiter``'s request and token buckets (``rpm``, ``tpm`` and the server's
   ``x-ratelimit-*`` headers) let it start;
4. **retries** — one tenacity policy (``RetryPolicy``): a ``TransientError`` (429, 5xx, timeout, lost
   connection, empty or malformed body) is sent again after exponential backoff with full jitter, or
   after the server's ``Retry-After`` (plus a little jitter, and every request pauses with it); any other
   error stops at once. After the last try it is ``RetriesExhausted`` — or a ``TeacherError`` when no
   server ever took the connection (nothing the request did: the run cannot go on);
5. **price** — the server's usage, priced by ``Pricer`` (cached prompt tokens at the cached rate, the
   batch price in batch mode), is counted in ``SendCounts`` and added to the caller's ``Spend``, with the
   answer to cache (the caller writes it, in one transaction with what it records).
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lbdata.errors import RequestFailed, TeacherError, UsageError
from lbdata.records import Usage
from lbdata.teachers.base import RemoteTeacher, RequestEstimate, TeacherResponse, TraceRequest, TransientError

if TYPE_CHECKING:
    from tenacity import RetryCallState

    from lbdata.ledger import Ledger
    from lbdata.pricing import ImageBilling, ModelPrice
    from lbdata.ratelimit import RateLimiter

log = logging.getLogger(__name__)

BACKOFF_INITIAL_S = 1.0
"""First retry waits up to this long (full jitter); each further retry doubles the ceiling."""
BACKOFF_MAX_S = 60.0
"""Ceiling of one backoff wait."""


def bump(counter: dict[str, int], key: str) -> None:
    counter[key] = counter.get(key, 0) + 1


def cache_entry(response: TeacherResponse, usage: Usage) -> dict[str, Any]:
    """What the run's request cache keeps of one answer (online or from a batch: the same entry)."""
    entry: dict[str, Any] = {"text": response.text, "finish_reason": response.finish_reason,
                             "usage": usage.model_dump(mode="json")}
    if response.choices:
        entry["choices"] = [list(c) for c in response.choices]
    return entry


class BudgetStop(Exception):
    """The next request could take the spend past its budget (nothing was sent)."""

    def __init__(self, worst_usd: float):
        super().__init__(worst_usd)
        self.worst_usd = worst_usd


class RetriesExhausted(RequestFailed):
    """A request that failed with a ``TransientError`` on every one of its ``tries``."""

    def __init__(self, error: TransientError, tries: int):
        super().__init__(f"{error.reason}: {error.detail} (gave up after {tries} tries)")
        self.error = error
        self.tries = tries


@dataclass
class Spend:
    """What one piece of work's requests cost so far (billed failures included), and the answers to cache."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    image_tokens: int = 0
    cost_usd: float = 0.0
    requests: int = 0
    cached_tokens: int = 0
    pending: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def add(self, usage: Usage) -> None:
        self.prompt_tokens += usage.prompt_tokens
        self.cached_tokens += usage.cached_tokens
        self.completion_tokens += usage.completion_tokens
        self.image_tokens = max(self.image_tokens, usage.image_tokens)
        self.cost_usd += usage.cost_usd
        self.requests += usage.requests

    def flush(self, ledger: Ledger) -> None:
        """Write the answers this spend paid for into the run's request cache."""
        for key, value in self.pending:
            ledger.cache_put(key, value)
        self.pending.clear()

    def share(self, k: int) -> Usage:
        """One of ``k`` equal shares (a request that asked for ``k`` samples with ``n``)."""
        return Usage(prompt_tokens=self.prompt_tokens // k, completion_tokens=self.completion_tokens // k,
                     image_tokens=self.image_tokens, cached_tokens=self.cached_tokens // k,
                     cost_usd=self.cost_usd / k, requests=1)

    def usage(self, cached: bool) -> Usage:
        return Usage(prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens,
                     image_tokens=self.image_tokens, cached_tokens=self.cached_tokens, cost_usd=self.cost_usd,
                     requests=self.requests, cached=cached)


@dataclass
class SendCounts:
    """What a sender did: tries sent, cache hits, retries by reason, tokens and USD of the answers."""

    requests: int = 0
    cache_hits: int = 0
    retries_by_reason: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


def load_price(model: str, prices: str | None, budget_usd: float | None) -> ModelPrice | None:
    """The price of ``model`` in the price table (``prices``: a YAML merged over lbdata's); a budget needs one."""
    from lbdata.pricing import load_prices

    price = load_prices(prices).lookup(model)
    if price is None:
        if budget_usd is not None:
            raise UsageError(
                f"no price for model {model!r} in the price table, so --budget-usd cannot be kept; "
                "add the model to a YAML file and pass --prices FILE (layout: lbdata/prices.yaml)"
            )
        log.info("no price for model %s: its spend shows as $0", model)
    return price


@dataclass(frozen=True)
class Pricer:
    """Prices a server's reported usage with a model's price (``None``: unpriced, $0)."""

    price: ModelPrice | None = None
    billing: ImageBilling | None = None  # how images become tokens (default: the price's, else ImageBilling())
    batch: bool = False  # the Batch API price

    def image_billing(self) -> ImageBilling:
        from lbdata.pricing import ImageBilling

        return self.billing or (self.price.image if self.price else ImageBilling())

    def priced(self, raw: Usage, image_tokens: int = 0, tries: int = 1) -> Usage:
        cost = self.price.cost(raw.prompt_tokens, raw.completion_tokens, cached_tokens=raw.cached_tokens,
                               batch=self.batch) if self.price else 0.0
        return Usage(prompt_tokens=raw.prompt_tokens, completion_tokens=raw.completion_tokens, image_tokens=image_tokens,
                     cached_tokens=raw.cached_tokens, cost_usd=cost, requests=tries)

    def worst(self, prompt_tokens: int, completion_tokens: int) -> float:
        return self.price.cost(prompt_tokens, completion_tokens, batch=self.batch) if self.price else 0.0


@dataclass(frozen=True)
class RetryPolicy:
    """Up to ``retries`` more tries after a ``TransientError``; backoff with full jitter, or ``Retry-After``.

    ``initial_s`` / ``max_s``: the backoff ceiling of the first retry and of any; ``None`` reads
    ``BACKOFF_INITIAL_S`` / ``BACKOFF_MAX_S`` when the policy runs."""

    retries: int = 8
    initial_s: float | None = None
    max_s: float | None = None

    def backoff(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failure without a server hint: full jitter under a ceiling
        that doubles per failure (tenacity's ``wait_random_exponential``)."""
        initial = BACKOFF_INITIAL_S if self.initial_s is None else self.initial_s
        ceiling = BACKOFF_MAX_S if self.max_s is None else self.max_s
        return random.uniform(0, min(ceiling, initial * 2.0 ** min(failures - 1, 64)))

    def delay(self, exc: BaseException, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failure: the server's Retry-After plus a little jitter,
        else ``backoff``."""
        retry_after = exc.retry_after if isinstance(exc, TransientError) else None
        if retry_after is None:
            return self.backoff(failures)
        return retry_after + random.uniform(0, min(1.0, 0.1 + 0.25 * retry_after))

    async def call(self, send: Callable[[], Awaitable[TeacherResponse]], *, pause: Callable[[float], None] | None = None,
                   on_retry: Callable[[BaseException, int], None] | None = None) -> tuple[TeacherResponse, int]:
        """``send()`` until it answers; returns (answer, tries). Raises ``RetriesExhausted`` after the last try,
        any error but a ``TransientError`` at once. Before each wait, ``pause`` gets the server's Retry-After
        (when it sent one) and ``on_retry`` the error and the number of failures so far."""
        from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

        def wait(state: RetryCallState) -> float:
            return self.delay(state.outcome.exception(), state.attempt_number)  # type: ignore[union-attr,arg-type]

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception()  # type: ignore[union-attr]
            if pause is not None and isinstance(exc, TransientError) and exc.retry_after is not None:
                pause(exc.retry_after)  # the server asked everyone to back off, not only this request
            if on_retry is not None:
                on_retry(exc, state.attempt_number)  # type: ignore[arg-type]

        tries = 0
        try:
            async for attempt in AsyncRetrying(stop=stop_after_attempt(self.retries + 1), wait=wait,
                                               retry=retry_if_exception_type(TransientError),
                                               before_sleep=before_sleep, reraise=True):
                with attempt:
                    tries += 1
                    return await send(), tries
        except TransientError as exc:
            raise RetriesExhausted(exc, tries) from None
        raise AssertionError("unreachable")  # pragma: no cover


class Sender:
    """Sends requests of one ``RemoteTeacher`` through cache, budget, rate limits and retries (see the module).

    ``cache``: the ledger whose request cache answers repeats (``None``: never read); ``budget_usd`` with
    ``spent``: the limit and what was spent before; ``submit``: where a try goes (default: the teacher;
    a ``Batcher``'s ``submit`` in batch mode, which skips the rate limiter: the Batch API has its own)."""

    def __init__(self, teacher: RemoteTeacher, *, policy: RetryPolicy | None = None, limiter: RateLimiter | None = None,
                 pricer: Pricer | None = None, cache: Ledger | None = None, budget_usd: float | None = None,
                 spent: float = 0.0, submit: Callable[[TraceRequest], Awaitable[TeacherResponse]] | None = None):
        from lbdata.ratelimit import RateLimiter

        self.teacher = teacher
        self.policy = policy or RetryPolicy()
        self.limiter = limiter or RateLimiter()
        self.pricer = pricer or Pricer()
        self.cache = cache
        self.budget_usd = budget_usd
        self.spent = spent  # USD spent, earlier work and answers from the cache included
        self.reserved = 0.0  # worst cost of the requests in flight
        self.counts = SendCounts()
        self.cancelled = False  # set by ``cancel``: a try that has not started raises instead
        self._submit = submit
        self._billing = self.pricer.image_billing()

    def cancel(self) -> None:
        """Start no more tries (the caller is stopping after a fatal error)."""
        self.cancelled = True

    async def send(self, request: TraceRequest, spend: Spend,
                   est: RequestEstimate | None = None) -> tuple[TeacherResponse, bool]:
        """One request to its answer; returns (answer with priced usage, from the cache). The usage and the
        answer to cache are added to ``spend``. Raises ``BudgetStop``, ``RetriesExhausted``, ``RequestFailed``
        or the teacher's ``TeacherError``."""
        from lbdata.pricing import images_tokens

        key = self.teacher.request_key(request)
        hit = self._cached(key, spend)
        if hit is not None:
            return hit, True
        est = est or self.teacher.estimate(request)
        image_tokens = images_tokens(est.images, self._billing)
        prompt_estimate = est.text_tokens + image_tokens
        worst = self.pricer.worst(prompt_estimate, est.max_completion_tokens * request.n)
        if self.budget_usd is not None and self.spent + self.reserved + worst > self.budget_usd:
            raise BudgetStop(worst)
        self.reserved += worst
        tokens = prompt_estimate + est.max_completion_tokens
        try:
            response, tries = await self._retrying(request, tokens)
        finally:
            self.reserved -= worst
        usage = self.pricer.priced(response.usage, image_tokens, tries)
        self.charge(usage)
        if self.limiter.tokens.per_minute is not None:
            self.limiter.settle(tokens, usage.prompt_tokens + usage.completion_tokens)
        if response.rate_limits:
            self.limiter.observe(response.rate_limits)
        spend.pending.append((key, cache_entry(response, usage)))
        spend.add(usage)
        return dataclasses.replace(response, usage=usage), False

    def charge(self, usage: Usage) -> None:
        """Count a priced usage as spent (an answer, or a paid answer that could not be used)."""
        self.spent += usage.cost_usd
        self.counts.cost_usd += usage.cost_usd
        self.counts.prompt_tokens += usage.prompt_tokens
        self.counts.cached_tokens += usage.cached_tokens
        self.counts.completion_tokens += usage.completion_tokens

    def _cached(self, key: str, spend: Spend) -> TeacherResponse | None:
        hit = self.cache.cache_get(key) if self.cache is not None else None
        if hit is None:
            return None
        self.counts.cache_hits += 1
        usage = Usage.model_validate(hit["usage"])
        self.spent += usage.cost_usd  # paid earlier but in no record yet: it will be once this one lands
        spend.add(usage)
        choices = tuple((t, f) for t, f in hit.get("choices", ()))
        return TeacherResponse(text=hit["text"], usage=usage, finish_reason=hit["finish_reason"], choices=choices)

    async def _try(self, request: TraceRequest, tokens: int) -> TeacherResponse:
        if self._submit is None:  # the Batch API has its own, larger limits
            await self.limiter.acquire(tokens)
        if self.cancelled:
            raise RequestFailed("cancelled: the run is stopping after a fatal error")
        self.counts.requests += 1
        if self._submit is not None:
            return await self._submit(request)
        return await self.teacher.generate(request)

    def _note_retry(self, exc: BaseException, failures: int) -> None:
        bump(self.counts.retries_by_reason, exc.reason if isinstance(exc, TransientError) else type(exc).__name__)
        log.info("retrying after %s (failure %d)", exc, failures)

    async def _retrying(self, request: TraceRequest, tokens: int) -> tuple[TeacherResponse, int]:
        try:
            return await self.policy.call(lambda: self._try(request, tokens), pause=self.limiter.pause,
                                          on_retry=self._note_retry)
        except RetriesExhausted as exc:
            if exc.error.reason == "connection_error":  # no server took the connection, try after try: not this request's fault
                raise TeacherError(
                    f"cannot reach {self.teacher.where} ({exc.error.detail[:200]}; gave up after {exc.tries} tries): start the "
                    "server or fix --base-url, then re-run the same command to resume") from None
            raise


__all__ = ["BACKOFF_INITIAL_S", "BACKOFF_MAX_S", "BudgetStop", "Pricer", "RetriesExhausted", "RetryPolicy", "SendCounts",
           "Sender", "Spend", "cache_entry", "load_price"]
