"""Counters every worker and replica shares: Redis, or this process's memory when not.

The guard keeps its counters (rate limits, failed logins, lockouts, scan patterns)
in `limits` storages: Redis when `REDIS_URL` is set and answers, so that limits hold
across workers and replicas; the in-memory storage of `limits` otherwise. As the
read cache does (app/cache.py), a Redis error switches this process to memory at
once (the request is still judged, by this worker's own counts) and Redis is probed
again at most every `probe_interval` seconds. Limits keep being enforced while Redis
is down, per worker instead of for all of them.

Two flavours of the same thing: `SyncShared` for code running in the thread pool
(the login route), `AsyncShared` for the middleware on the event loop, which must
never block on a socket.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import redis.asyncio as aredis
from limits import aio, storage, strategies
from limits.errors import StorageError
from redis import RedisError

log = logging.getLogger(__name__)

KEY_PREFIX = "tt-guard"
# A guard decision must not wait on a sick Redis: a quarter second, then memory.
REDIS_TIMEOUT_SECONDS = 0.25
# Whatever goes wrong talking to Redis (including a client bound to another event
# loop), the request is judged from memory: the guard never turns a request into a 500.
STORAGE_ERRORS = (StorageError, RedisError, OSError, RuntimeError)

B = TypeVar("B")
T = TypeVar("T")


class SyncBackend:
    """One storage with the strategies the guard uses on it (thread-pool side)."""

    def __init__(self, store: storage.Storage) -> None:
        self.storage = store
        self.moving = strategies.SlidingWindowCounterRateLimiter(store)


class AsyncBackend:
    """One storage with the strategies the guard uses on it (event-loop side).

    `client` is the Redis client behind a Redis storage (None in memory): for counters
    that would otherwise take several round trips, each of which costs ~40-50 µs of CPU
    in redis-py, against the guard's budget of 50 µs a request (app/guard/scans.py)."""

    def __init__(self, store: aio.storage.Storage, client: aredis.Redis | None = None) -> None:
        self.storage = store
        self.moving = aio.strategies.SlidingWindowCounterRateLimiter(store)
        self.client = client


def redis_key(key: str) -> str:
    """The Redis key `limits` stores the guard's counter `key` under."""
    return f"{KEY_PREFIX}:{key}"


class _Failover(Generic[B]):
    def __init__(self, name: str, redis: B | None, memory: B, probe_interval: float) -> None:
        self.name = name
        self.redis = redis
        self.memory = memory
        self.probe_interval = probe_interval
        self.on_redis = redis is not None
        self._next_probe = 0.0

    @property
    def backend_name(self) -> str:
        return "redis" if self.on_redis else "memory"

    def _fail_over(self, exc: BaseException) -> None:
        if self.on_redis:
            log.warning("%s: redis unavailable (%s); counting in this process", self.name, exc)
        self.on_redis = False
        self._next_probe = time.monotonic() + self.probe_interval

    def _probe_due(self) -> bool:
        return self.redis is not None and not self.on_redis and time.monotonic() >= self._next_probe

    def _back_on_redis(self) -> None:
        log.warning("%s: redis is back; counting in redis again", self.name)
        self.on_redis = True


class SyncShared(_Failover[SyncBackend]):
    def __init__(self, redis_url: str | None, probe_interval: float = 1.0) -> None:
        redis = None
        if redis_url:
            redis = SyncBackend(
                storage.RedisStorage(
                    redis_url,
                    key_prefix=KEY_PREFIX,
                    wrap_exceptions=True,
                    socket_timeout=REDIS_TIMEOUT_SECONDS,
                    socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                )
            )
        super().__init__("guard", redis, SyncBackend(storage.MemoryStorage()), probe_interval)

    def run(self, op: Callable[[SyncBackend], T]) -> T:
        if self._probe_due():
            self._next_probe = time.monotonic() + self.probe_interval
            assert self.redis is not None
            try:
                if self.redis.storage.check():
                    self._back_on_redis()
            except STORAGE_ERRORS:
                pass
        if self.on_redis and self.redis is not None:
            try:
                return op(self.redis)
            except STORAGE_ERRORS as exc:
                self._fail_over(exc)
        return op(self.memory)


class AsyncShared(_Failover[AsyncBackend]):
    def __init__(self, redis_url: str | None, probe_interval: float = 1.0) -> None:
        redis = None
        if redis_url:
            # One connection pool for `limits` and for the guard's own scripts.
            pool = aredis.ConnectionPool.from_url(
                redis_url,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            )
            redis = AsyncBackend(
                aio.storage.RedisStorage(
                    "async+" + redis_url,
                    implementation="redispy",
                    key_prefix=KEY_PREFIX,
                    wrap_exceptions=True,
                    # A documented option that limits' annotation of **options omits.
                    connection_pool=pool,  # type: ignore[arg-type]
                ),
                aredis.Redis(connection_pool=pool),
            )
        super().__init__(
            "guard rate limits", redis, AsyncBackend(aio.storage.MemoryStorage()), probe_interval
        )

    async def run(self, op: Callable[[AsyncBackend], Awaitable[T]]) -> T:
        if self._probe_due():
            self._next_probe = time.monotonic() + self.probe_interval
            assert self.redis is not None
            try:
                if await self.redis.storage.check():
                    self._back_on_redis()
            except STORAGE_ERRORS:
                pass
        if self.on_redis and self.redis is not None:
            try:
                return await op(self.redis)
            except STORAGE_ERRORS as exc:
                self._fail_over(exc)
        return await op(self.memory)
