"""A per-process TTL cache with single flight: while an answer is being computed,
other requests for the same key wait for it instead of querying Prometheus again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


class TTLCache:
    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._values: dict[str, tuple[float, Any]] = {}
        self._inflight: dict[str, asyncio.Task[Any]] = {}

    async def get(self, key: str, compute: Callable[[], Awaitable[Any]]) -> tuple[Any, bool]:
        """(value, from_cache). Failures are not cached: the next request tries again."""
        hit = self._values.get(key)
        if hit is not None and hit[0] > self.clock():
            return hit[1], True
        loop = asyncio.get_running_loop()
        task = self._inflight.get(key)
        # A task of another event loop (a test client's, long gone) cannot be awaited.
        if task is None or task.done() or task.get_loop() is not loop:
            task = loop.create_task(self._compute(key, compute))
            self._inflight[key] = task
        return await asyncio.shield(task), False

    async def _compute(self, key: str, compute: Callable[[], Awaitable[Any]]) -> Any:
        try:
            value = await compute()
            if self.ttl > 0:
                self._values[key] = (self.clock() + self.ttl, value)
            return value
        finally:
            self._inflight.pop(key, None)
