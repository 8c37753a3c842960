"""Rate limits of one process: token buckets per API key and per (client, key prefix).

The one place where the service counts callers (``limits`` in the settings, docs/security.md):

* every authenticated request takes a token from its key's bucket (``requests_per_minute``);
* every *failed* authentication that presented a credential takes one from the bucket of the
  client address and the credential's key prefix (``auth_failures_per_minute``). When that is
  empty, further attempts from that client on that prefix are answered 429 before the key is even
  looked up, so guessing the secret of a known prefix runs at the refill rate. Other keys, and
  the same key from other clients, are not affected: a guesser cannot lock its owner out.

Buckets live in memory, bounded (least recently used dropped first); each replica counts alone.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

from mosaic_memory.config import LimitSettings
from mosaic_memory.errors import AuthenticationFailed, RateLimited

__all__ = ["AccessGuard", "TokenBuckets"]

T = TypeVar("T")

_MAX_BUCKETS = 10_000


class TokenBuckets:
    """Token buckets by key: ``burst`` tokens each, refilled at ``per_minute`` a minute."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_buckets: int = _MAX_BUCKETS) -> None:
        self.clock = clock
        self.max_buckets = max_buckets
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)

    def _level(self, key: Hashable, per_minute: int, burst: int) -> float:
        now = self.clock()
        if key in self._buckets:  # a key still asking stays: a flood of others evicts the idle first
            self._buckets.move_to_end(key)
        tokens, at = self._buckets.get(key, (float(burst), now))
        return min(float(burst), tokens + (now - at) * per_minute / 60.0)

    def _store(self, key: Hashable, tokens: float) -> None:
        self._buckets[key] = (tokens, self.clock())
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_buckets:
            self._buckets.popitem(last=False)

    def wait(self, key: Hashable, per_minute: int, burst: int) -> int:
        """Seconds until ``key`` has a token (0: it has one now). Takes nothing."""
        tokens = self._level(key, per_minute, burst)
        return 0 if tokens >= 1 else max(1, math.ceil((1 - tokens) * 60.0 / per_minute))

    def take(self, key: Hashable, per_minute: int, burst: int) -> int:
        """Take a token; returns 0, or (taking nothing) the seconds until one is there."""
        tokens = self._level(key, per_minute, burst)
        if tokens < 1:
            return max(1, math.ceil((1 - tokens) * 60.0 / per_minute))
        self._store(key, tokens - 1)
        return 0


class AccessGuard:
    """Authentication under the limits: wraps the call that resolves a credential."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.requests = TokenBuckets(clock)
        self.failures = TokenBuckets(clock)

    async def authenticate(
        self, limits: LimitSettings, client: str, prefix: str, resolve: Callable[[], Awaitable[T]]
    ) -> T:
        """``await resolve()`` unless ``client`` has spent its failures on ``prefix``.

        Raises RateLimited (429) when it has; AuthenticationFailed from ``resolve`` is counted."""
        per_minute, burst = limits.auth_failures_per_minute, limits.auth_failure_burst
        if per_minute:
            wait = self.failures.wait((client, prefix), per_minute, burst)
            if wait:
                raise RateLimited(f"too many failed authentications for key prefix {prefix!r}; retry in {wait} s", wait)
        try:
            return await resolve()
        except AuthenticationFailed:
            if per_minute:
                self.failures.take((client, prefix), per_minute, burst)
            raise

    def admit(self, limits: LimitSettings, key: Hashable) -> None:
        """Take one request from ``key``'s budget. Raises RateLimited (429) when it is spent."""
        if not limits.requests_per_minute:
            return
        wait = self.requests.take(key, limits.requests_per_minute, limits.request_burst)
        if wait:
            raise RateLimited(f"this API key is over its {limits.requests_per_minute} requests a minute", wait)
