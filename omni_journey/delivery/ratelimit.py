"""Provider rate limits: a token bucket per provider, with the clock and the sleep
injected (tests never sleep), in-process (:class:`TokenBucket`) or shared by every
dispatcher of a PostgreSQL store (:class:`SharedTokenBucket`, the one writer of
``provider_rate_limits``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine, text

__all__ = ["SharedTokenBucket", "TokenBucket", "bucket_for", "take_tokens"]


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up (default: one second's worth).

    ``acquire(n)`` takes ``n`` tokens at once and sleeps off any debt, so a batch of
    ``n`` messages may exceed the burst but the average rate holds. A rate of ``None``
    (or 0) means unlimited.
    """

    def __init__(
        self,
        rate: float | None,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate if rate and rate > 0 else None
        self.burst = burst if burst is not None else max(1.0, self.rate or 1.0)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self, n: int = 1) -> float:
        """Take ``n`` tokens; returns how long it slept."""
        if self.rate is None or n <= 0:
            return 0.0
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= n
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait


class SharedTokenBucket:
    """A token bucket per provider that holds for every dispatcher on one PostgreSQL
    store together (``OMNI_RATE_LIMITS`` is then the provider's rate, not each
    process's): the tokens live in the ``provider_rate_limits`` row of the provider,
    refilled and debited by one atomic statement on the database's clock.

    The in-process part is the fast path: each trip to the store takes at least
    ``lease`` seconds' worth of tokens (one round trip for many small acquisitions),
    kept here for the next ones. Tokens a process took and never used are simply not
    sent: the sum of all processes stays under the rate. Like :class:`TokenBucket`,
    ``acquire(n)`` sleeps off any debt and returns how long it slept.
    """

    def __init__(
        self,
        engine: Engine,
        provider: str,
        rate: float,
        *,
        burst: float | None = None,
        lease: float = 0.05,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.engine = engine
        self.provider = provider
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self.lease = max(1.0, rate * lease)
        self._sleep = sleep
        self._tokens = 0.0  # taken from the store, not used yet
        self._lock = threading.Lock()

    def acquire(self, n: int = 1) -> float:
        if n <= 0:
            return 0.0
        with self._lock:
            if self._tokens >= n:
                self._tokens -= n
                return 0.0
            take = max(float(n) - self._tokens, self.lease)
            left = take_tokens(self.engine, self.provider, take, self.rate, self.burst)
            self._tokens += take - n
            wait = -left / self.rate if left < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait


_TAKE = text(
    "INSERT INTO provider_rate_limits (provider, tokens, stamp) "
    "VALUES (:provider, :burst - :n, extract(epoch FROM clock_timestamp())) "
    "ON CONFLICT (provider) DO UPDATE SET "
    "tokens = LEAST(:burst, provider_rate_limits.tokens + :rate * "
    "GREATEST(0, extract(epoch FROM clock_timestamp()) - provider_rate_limits.stamp)) - :n, "
    "stamp = extract(epoch FROM clock_timestamp()) "
    "RETURNING tokens"
)


def take_tokens(engine: Engine, provider: str, n: float, rate: float, burst: float) -> float:
    """Refill ``provider``'s stored bucket for the time since its last use and take
    ``n`` tokens, in one statement (the row is locked while it runs, so concurrent
    dispatchers debit it one after the other); the tokens left (negative: owed, to be
    slept off by the taker)."""
    with engine.begin() as connection:
        left = connection.execute(
            _TAKE, {"provider": provider, "n": n, "rate": rate, "burst": burst}
        ).scalar_one()
    return float(left)


def limits_shared(engine: Engine) -> bool:
    """Do the rate limits hold for every dispatcher of this store together? On
    PostgreSQL, yes (one token bucket per provider in the store); on SQLite they are
    per process."""
    return engine.dialect.name == "postgresql"


def bucket_for(
    engine: Engine,
    provider: str,
    rate: float | None,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> TokenBucket | SharedTokenBucket:
    """The rate limit of ``provider`` for one dispatch pass: shared by every dispatcher
    of a PostgreSQL store, in-process on SQLite (one machine, one writer at a time) and
    when the provider has no limit."""
    if rate and rate > 0 and limits_shared(engine):
        return SharedTokenBucket(engine, provider, rate, sleep=sleep)
    return TokenBucket(rate, clock=clock, sleep=sleep)
