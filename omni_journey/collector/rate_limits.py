"""Rate limits on the Segment Spec endpoints: a token bucket per write key.

Each accepted write key may make ``OMNI_COLLECTOR_RATE_LIMIT`` requests a second on
average, with bursts of up to ``OMNI_COLLECTOR_RATE_BURST``; past that a request is
refused with 429 ``rate-limited`` and a ``Retry-After`` header (whole seconds) before
anything is stored (before its body is read, for a key in the Authorization header).
Segment's and RudderStack's client libraries wait and retry a 429, so a source that
sends too fast slows down and loses nothing.
Requests whose write key is missing or refused are counted per client address instead,
so guessing keys is slowed down too. A batch counts as one request, as at Segment.

Buckets live in the process (one collector process, one set of buckets); there are at
most :data:`MAX_BUCKETS` of them, the least recently used forgotten first, so a flood
from many addresses cannot grow memory without bound. With several collector processes
behind a load balancer, each process enforces the limit on its own.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from omni_journey.collector.refusals import RequestRefused

__all__ = ["MAX_BUCKETS", "RateLimiter"]

MAX_BUCKETS = 10_000


class RateLimiter:
    """Token buckets by key (``key:<write key>`` or ``ip:<address>``), refilled at
    ``rate`` tokens a second up to ``burst``; ``rate`` 0 means no limit."""

    def __init__(
        self, rate: float, burst: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = max(1.0, burst)
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at
        self._lock = threading.Lock()

    def wait_needed(self, key: str) -> float:
        """Take one token for ``key``: 0.0 if there was one, else the seconds until
        there is (nothing is taken then)."""
        if self.rate <= 0:
            return 0.0
        with self._lock:
            now = self._clock()
            tokens, at = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            wait = 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate
            self._buckets[key] = (tokens - 1.0 if wait == 0.0 else tokens, now)
            while len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
        return wait

    def check(self, key: str) -> None:
        """Take one token for ``key`` or raise 429 ``rate-limited`` with ``Retry-After``."""
        wait = self.wait_needed(key)
        if wait > 0:
            raise RequestRefused(
                429,
                "rate-limited",
                "too many requests for this write key; retry after the Retry-After seconds",
                retry_after=max(1, math.ceil(wait)),
            )
