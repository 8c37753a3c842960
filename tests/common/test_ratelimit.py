"""The token buckets behind every rate limit, on an injected clock (no sleeping, no timing)."""

from __future__ import annotations

import pytest

from mosaic_memory.common.ratelimit import AccessGuard, TokenBuckets
from mosaic_memory.config import LimitSettings
from mosaic_memory.errors import AuthenticationFailed, RateLimited


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refill_at_the_rate() -> None:
    clock = Clock()
    buckets = TokenBuckets(clock)
    assert [buckets.take("k", 60, 3) for _ in range(3)] == [0, 0, 0]
    assert buckets.take("k", 60, 3) == 1  # one a second: the next in 1 s
    assert buckets.wait("k", 60, 3) == 1
    clock.now += 0.5
    assert buckets.take("k", 60, 3) == 1  # still under one token: rounded up, never 0
    clock.now += 0.5
    assert buckets.take("k", 60, 3) == 0
    assert buckets.take("other", 60, 3) == 0  # each key its own bucket
    clock.now += 3600
    assert [buckets.take("k", 60, 3) for _ in range(4)] == [0, 0, 0, 1]  # refilled to the burst, no more
    assert buckets.take("slow", 6, 1) == 0 and buckets.take("slow", 6, 1) == 10


def test_buckets_are_bounded_least_recently_used_first() -> None:
    buckets = TokenBuckets(Clock(), max_buckets=2)
    buckets.take("a", 60, 1)
    buckets.take("b", 60, 1)
    buckets.take("a", 60, 1)  # a is spent and recently used
    buckets.take("c", 60, 1)  # b goes
    assert buckets.wait("a", 60, 1) == 1 and buckets.wait("b", 60, 1) == 0


async def test_guard_counts_only_failures_and_off_means_off() -> None:
    clock = Clock()
    guard = AccessGuard(clock)
    limits = LimitSettings(auth_failures_per_minute=6, auth_failure_burst=2)

    async def fail() -> str:
        raise AuthenticationFailed("no")

    async def succeed() -> str:
        return "principal"

    assert await guard.authenticate(limits, "1.2.3.4", "mm_aaaaaaaa", succeed) == "principal"
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            await guard.authenticate(limits, "1.2.3.4", "mm_aaaaaaaa", fail)
    with pytest.raises(RateLimited) as refused:
        await guard.authenticate(limits, "1.2.3.4", "mm_aaaaaaaa", succeed)
    assert refused.value.extra == {"retry_after": 10}
    assert await guard.authenticate(limits, "5.6.7.8", "mm_aaaaaaaa", succeed) == "principal"
    clock.now += 10
    assert await guard.authenticate(limits, "1.2.3.4", "mm_aaaaaaaa", succeed) == "principal"
    off = LimitSettings(auth_failures_per_minute=0, requests_per_minute=0)
    for _ in range(50):
        with pytest.raises(AuthenticationFailed):
            await guard.authenticate(off, "9.9.9.9", "mm_bbbbbbbb", fail)
        guard.admit(off, "key")
