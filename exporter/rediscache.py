"""Redis, the app's shared cache: reachability, memory and keyspace hits/misses.

Series:
    tracetrack_redis_up                      gauge    1 when Redis answered INFO, else 0
    tracetrack_redis_memory_used_bytes       gauge    INFO used_memory
    tracetrack_redis_keyspace_hits_total     counter  INFO keyspace_hits (since Redis started)
    tracetrack_redis_keyspace_misses_total   counter  INFO keyspace_misses

Only built when REDIS_URL is set: without it the app uses its in-process cache and there
is no Redis to watch (tracetrack_cache_backend on the app says which cache is in use).
"""

from __future__ import annotations

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from redis.backoff import NoBackoff
from redis.retry import Retry

from common import metric_names as names
from exporter.collector import CollectorError, Deadline


def _up(value: int) -> GaugeMetricFamily:
    up = GaugeMetricFamily(names.REDIS_UP, "1 when Redis answered the exporter's INFO, else 0.")
    up.add_metric([], value)
    return up


class RedisCollector:
    name = "redis"

    def __init__(self, url: str) -> None:
        self.url = url

    def collect(self, deadline: Deadline) -> list[Metric]:
        timeout = max(0.01, deadline.remaining())
        # A short-lived client per scrape: its timeouts follow this scrape's budget, and
        # redis-py's default retries (which would multiply the wait) are off.
        client = redis.Redis.from_url(
            self.url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            info = client.info()
        except redis.RedisError as exc:
            raise CollectorError(f"Redis: {exc}") from exc
        finally:
            client.close()

        mem = GaugeMetricFamily(
            names.REDIS_MEMORY_USED, "Memory Redis has allocated (INFO used_memory)."
        )
        mem.add_metric([], info["used_memory"])
        hits = CounterMetricFamily(
            names.REDIS_KEYSPACE_HITS,
            "Successful key lookups since Redis started (INFO keyspace_hits).",
        )
        hits.add_metric([], info["keyspace_hits"])
        misses = CounterMetricFamily(
            names.REDIS_KEYSPACE_MISSES,
            "Failed key lookups since Redis started (INFO keyspace_misses).",
        )
        misses.add_metric([], info["keyspace_misses"])
        return [_up(1), mem, hits, misses]

    def down_families(self) -> list[Metric]:
        return [_up(0)]

    def close(self) -> None:
        pass
