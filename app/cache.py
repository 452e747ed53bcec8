"""The read cache: Redis when reachable, an in-process TTL cache when not.

Async on purpose: requests use it on the event loop (redis-py's asyncio client with
hiredis), so a lookup never waits for a thread. Values are stored as the JSON bytes a
response sends (orjson), so a hit is returned without decoding and re-encoding.

Failover is automatic both ways: a Redis error switches this worker to memory at
once (the request still succeeds); while on memory, Redis is probed at most every
`probe_interval` seconds and used again as soon as it answers. On the way back the
Redis namespace is flushed, because writes made during the outage only invalidated
the memory cache. Memory entries live shorter (`memory_ttl`) since each worker has
its own copy and another worker's invalidation cannot reach it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
import redis.asyncio as aredis
from cachetools import TTLCache
from redis.exceptions import RedisError

from app.metrics import CACHE_BACKEND, CACHE_REQUESTS

log = logging.getLogger(__name__)

PREFIX = "tt:"
REDIS_CONNECTIONS = 16  # per worker
REDIS_TIMEOUT_SECONDS = 1.0
_HIT = CACHE_REQUESTS.labels(result="hit")
_MISS = CACHE_REQUESTS.labels(result="miss")


def encode(value: Any) -> bytes:
    return orjson.dumps(value)


class Cache:
    def __init__(
        self,
        redis_url: str | None,
        ttl: int,
        memory_ttl: int = 30,
        max_entries: int = 100_000,
        probe_interval: float = 1.0,
    ) -> None:
        self.ttl = ttl
        self._memory: TTLCache[str, bytes] = TTLCache(maxsize=max_entries, ttl=min(ttl, memory_ttl))
        self._probe_interval = probe_interval
        self._next_probe = 0.0
        self._probing: asyncio.Lock | None = None
        self._redis: aredis.Redis | None = None
        if redis_url:
            # A bounded pool: under load every concurrent request would otherwise open
            # its own connection, and on a saturated box those connects time out and
            # fail the worker over to memory for no fault of Redis. Waiting a moment
            # for one of a few connections is cheaper. A dead Redis still fails fast
            # (connection refused), a hung one within the timeouts.
            pool = aredis.BlockingConnectionPool.from_url(
                redis_url,
                max_connections=REDIS_CONNECTIONS,
                timeout=REDIS_TIMEOUT_SECONDS,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                health_check_interval=0,
            )
            self._redis = aredis.Redis(connection_pool=pool)
        self._on_redis = False
        self._set_backend(False)

    async def start(self) -> None:
        """Use Redis from the first request if it answers now (call in the event loop)."""
        if await self._probe():
            self._set_backend(True)
        else:
            self._next_probe = time.monotonic() + self._probe_interval

    # --- backend selection -------------------------------------------------
    @property
    def backend(self) -> str:
        return "redis" if self._on_redis else "memory"

    def _set_backend(self, on_redis: bool) -> None:
        changed = on_redis != self._on_redis
        self._on_redis = on_redis
        # The redis series exists only where Redis is configured, so "fell back to memory"
        # (memory 1 while a redis series exists) never fires for a deliberately Redis-less app.
        if self._redis is not None:
            CACHE_BACKEND.labels(backend="redis").set(1 if on_redis else 0)
        CACHE_BACKEND.labels(backend="memory").set(0 if on_redis else 1)
        if changed:
            log.warning("cache backend is now %s", self.backend)

    async def _probe(self) -> bool:
        if self._redis is None:
            return False
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

    def _fail_over(self, exc: Exception) -> None:
        log.warning("redis unavailable (%s); using the in-process cache", exc)
        self._next_probe = time.monotonic() + self._probe_interval
        self._set_backend(False)

    async def _maybe_return_to_redis(self) -> None:
        if self._redis is None or time.monotonic() < self._next_probe:
            return
        if self._probing is None:
            self._probing = asyncio.Lock()
        if self._probing.locked():
            return  # another request is probing; this one uses memory meanwhile
        async with self._probing:
            if self._on_redis or time.monotonic() < self._next_probe:
                return
            self._next_probe = time.monotonic() + self._probe_interval
            if await self._probe():
                try:
                    await self._flush_redis_namespace()
                except (RedisError, OSError):
                    return
                self._memory.clear()
                self._set_backend(True)

    async def _flush_redis_namespace(self) -> None:
        assert self._redis is not None
        batch: list[bytes] = []
        async for key in self._redis.scan_iter(match=PREFIX + "*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                await self._redis.unlink(*batch)
                batch.clear()
        if batch:
            await self._redis.unlink(*batch)

    # --- operations ----------------------------------------------------------
    async def get_raw(self, key: str) -> bytes | None:
        """The stored JSON bytes, counted as a hit or a miss."""
        raw = await self._get(PREFIX + key)
        if raw is None:
            _MISS.inc()
            return None
        _HIT.inc()
        return raw

    async def get(self, key: str) -> Any | None:
        raw = await self.get_raw(key)
        return None if raw is None else orjson.loads(raw)

    async def _get(self, key: str) -> bytes | None:
        if not self._on_redis:
            await self._maybe_return_to_redis()
        if self._on_redis:
            try:
                return await self._redis.get(key)  # type: ignore[union-attr,return-value]
            except (RedisError, OSError) as exc:
                self._fail_over(exc)
        return self._memory.get(key)

    async def set_raw(self, key: str, raw: bytes) -> None:
        await self.set_many_raw({key: raw})

    async def set(self, key: str, value: Any) -> None:
        await self.set_many_raw({key: encode(value)})

    async def set_many(self, items: dict[str, Any]) -> None:
        await self.set_many_raw({k: encode(v) for k, v in items.items()})

    async def set_many_raw(self, items: dict[str, bytes]) -> None:
        encoded = {PREFIX + k: v for k, v in items.items()}
        if not self._on_redis:
            await self._maybe_return_to_redis()
        if self._on_redis:
            try:
                if len(encoded) == 1:
                    [(k, v)] = encoded.items()
                    await self._redis.set(k, v, ex=self.ttl)  # type: ignore[union-attr]
                    return
                async with self._redis.pipeline(transaction=False) as pipe:  # type: ignore[union-attr]
                    for k, v in encoded.items():
                        pipe.set(k, v, ex=self.ttl)
                    await pipe.execute()
                return
            except (RedisError, OSError) as exc:
                self._fail_over(exc)
        self._memory.update(encoded)

    async def delete(self, *keys: str) -> None:
        full = [PREFIX + k for k in keys]
        # Always drop local copies: a worker may have filled them before a failback.
        for k in full:
            self._memory.pop(k, None)
        if self._on_redis:
            try:
                await self._redis.delete(*full)  # type: ignore[union-attr]
            except (RedisError, OSError) as exc:
                self._fail_over(exc)

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            await self._redis.connection_pool.disconnect()
