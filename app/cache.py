"""The read cache: Redis when reachable, an in-process TTL cache when not.

Failover is automatic both ways: a Redis error switches this worker to memory at
once (the request still succeeds); while on memory, Redis is probed at most every
`probe_interval` seconds and used again as soon as it answers. On the way back the
Redis namespace is flushed, because writes made during the outage only invalidated
the memory cache. Memory entries live shorter (`memory_ttl`) since each worker has
its own copy and another worker's invalidation cannot reach it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import orjson
import redis
from cachetools import TTLCache

from app.metrics import CACHE_BACKEND, CACHE_REQUESTS

log = logging.getLogger(__name__)

PREFIX = "tt:"
_HIT = CACHE_REQUESTS.labels(result="hit")
_MISS = CACHE_REQUESTS.labels(result="miss")


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
        self._lock = threading.Lock()
        self._probe_interval = probe_interval
        self._next_probe = 0.0
        self._redis: redis.Redis | None = None
        if redis_url:
            self._redis = redis.Redis.from_url(
                redis_url,
                socket_timeout=0.25,
                socket_connect_timeout=0.25,
                health_check_interval=0,
            )
        self._on_redis = False
        self._set_backend(self._probe())

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

    def _probe(self) -> bool:
        if self._redis is None:
            return False
        try:
            return bool(self._redis.ping())
        except redis.RedisError:
            return False

    def _fail_over(self, exc: Exception) -> None:
        log.warning("redis unavailable (%s); using the in-process cache", exc)
        self._next_probe = time.monotonic() + self._probe_interval
        self._set_backend(False)

    def _maybe_return_to_redis(self) -> None:
        if self._redis is None or time.monotonic() < self._next_probe:
            return
        with self._lock:
            if self._on_redis or time.monotonic() < self._next_probe:
                return
            self._next_probe = time.monotonic() + self._probe_interval
            if self._probe():
                try:
                    self._flush_redis_namespace()
                except redis.RedisError:
                    return
                self._memory.clear()
                self._set_backend(True)

    def _flush_redis_namespace(self) -> None:
        assert self._redis is not None
        batch: list[str] = []
        for key in self._redis.scan_iter(match=PREFIX + "*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                self._redis.unlink(*batch)
                batch.clear()
        if batch:
            self._redis.unlink(*batch)

    # --- operations ----------------------------------------------------------
    def get(self, key: str) -> Any | None:
        raw = self._get_raw(PREFIX + key)
        if raw is None:
            _MISS.inc()
            return None
        _HIT.inc()
        return orjson.loads(raw)

    def _get_raw(self, key: str) -> bytes | None:
        if not self._on_redis:
            self._maybe_return_to_redis()
        if self._on_redis:
            try:
                return self._redis.get(key)  # type: ignore[union-attr,return-value]
            except redis.RedisError as exc:
                self._fail_over(exc)
        with self._lock:
            return self._memory.get(key)

    def set(self, key: str, value: Any) -> None:
        self.set_many({key: value})

    def set_many(self, items: dict[str, Any]) -> None:
        encoded = {PREFIX + k: orjson.dumps(v) for k, v in items.items()}
        if not self._on_redis:
            self._maybe_return_to_redis()
        if self._on_redis:
            try:
                pipe = self._redis.pipeline(transaction=False)  # type: ignore[union-attr]
                for k, v in encoded.items():
                    pipe.set(k, v, ex=self.ttl)
                pipe.execute()
                return
            except redis.RedisError as exc:
                self._fail_over(exc)
        with self._lock:
            self._memory.update(encoded)

    def delete(self, *keys: str) -> None:
        full = [PREFIX + k for k in keys]
        # Always drop local copies: a worker may have filled them before a failback.
        with self._lock:
            for k in full:
                self._memory.pop(k, None)
        if self._on_redis:
            try:
                self._redis.delete(*full)  # type: ignore[union-attr]
            except redis.RedisError as exc:
                self._fail_over(exc)

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()
