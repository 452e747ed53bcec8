"""/analytics' TTL cache on a clock the test moves: concurrent requests share one
computation, an answer is reused until the TTL has passed and not after, and a failure
is not cached. (tests/test_analytics.py checks the same against a live Prometheus.)"""

from __future__ import annotations

import asyncio

import pytest

from app.analytics.cache import TTLCache
from tests.support.clock import FakeClock


def test_concurrent_requests_share_one_computation_until_the_ttl_passes() -> None:
    clock = FakeClock()
    cache = TTLCache(3.0, clock=clock)
    computed: list[float] = []

    async def compute() -> float:
        computed.append(clock())
        await asyncio.sleep(0)  # let every waiter join the one flight
        return clock()

    async def scenario() -> None:
        burst = await asyncio.gather(*(cache.get("realtime", compute) for _ in range(8)))
        assert len(computed) == 1
        assert {value for value, _ in burst} == {computed[0]}
        assert [cached for _, cached in burst] == [False] * 8  # all waited for the flight

        clock.advance(2.9)
        assert await cache.get("realtime", compute) == (computed[0], True)
        clock.advance(0.2)  # 3.1 s after the answer: expired
        value, cached = await cache.get("realtime", compute)
        assert (cached, len(computed), value) == (False, 2, computed[1])
        # Another key is another answer.
        assert (await cache.get("performance", compute))[1] is False
        assert len(computed) == 3

    asyncio.run(scenario())


def test_a_failure_is_not_cached() -> None:
    cache = TTLCache(3.0, clock=FakeClock())
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("prometheus: connection refused")
        return "answer"

    async def scenario() -> None:
        with pytest.raises(ConnectionError):
            await cache.get("realtime", flaky)
        assert await cache.get("realtime", flaky) == ("answer", False)
        assert await cache.get("realtime", flaky) == ("answer", True)

    asyncio.run(scenario())


def test_a_zero_ttl_caches_nothing() -> None:
    cache = TTLCache(0, clock=FakeClock())
    calls = 0

    async def compute() -> int:
        nonlocal calls
        calls += 1
        return calls

    async def scenario() -> None:
        assert await cache.get("k", compute) == (1, False)
        assert await cache.get("k", compute) == (2, False)

    asyncio.run(scenario())
