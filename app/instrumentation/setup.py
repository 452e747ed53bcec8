"""`instrument(app, settings, engine)`: wire the middleware, the pool sampler and /metrics."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    values,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import mark_process_dead
from sqlalchemy import Engine
from starlette.middleware import Middleware

from app.instrumentation.active_users import ActiveUsers
from app.instrumentation.compaction import ChurnSafeCollector, compact, scrape_lock
from app.instrumentation.middleware import MetricsMiddleware
from app.instrumentation.multiproc import ACTIVE_USERS_FILE, ENV
from app.instrumentation.pool import SAMPLE_INTERVAL_SECONDS, PoolSampler, PoolStats
from app.instrumentation.tally import FLUSH_INTERVAL_SECONDS, Tally
from app.metrics import HTTP, make_http_metrics
from common import metric_names as names
from common.settings import Settings

log = logging.getLogger(__name__)


def multiprocess_dir() -> Path | None:
    """The shared directory, if this process really writes its metrics there."""
    path = os.environ.get(ENV)
    if not path:
        return None
    if values.ValueClass is values.MutexValue:
        log.warning(
            "%s is set but prometheus_client was imported before it; "
            "/metrics reports this process only",
            ENV,
        )
        return None
    return Path(path)


class ActiveUsersCollector:
    """tracetrack_active_users, computed at scrape time from the shared store."""

    def __init__(self, store: ActiveUsers) -> None:
        self._store = store

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            names.ACTIVE_USERS, "Distinct users with a request in the last 5 minutes, all workers."
        )
        family.add_metric([], self._store.count())
        yield family


class _Registries:
    """What generate_latest needs (collect()) over several registries."""

    def __init__(self, registries: Iterable[CollectorRegistry]) -> None:
        self._registries = list(registries)

    def collect(self) -> Iterator[Metric]:
        for registry in self._registries:
            yield from registry.collect()


def instrument(
    app: FastAPI, settings: Settings, engine: Engine | PoolStats, **options: Any
) -> None:
    """Instrument `app` alone: the metrics middleware becomes its outermost layer.

    The real app does not call this: app/middleware.py places `metrics_middleware`'s
    layer in the one ordered stack. Tests and benches instrumenting a bare app do.
    """
    app.user_middleware.insert(0, metrics_middleware(app, settings, engine, **options))


def metrics_middleware(
    app: FastAPI,
    settings: Settings,
    engine: Engine | PoolStats,
    *,
    registry: CollectorRegistry | None = None,
    pool_sample_interval: float = SAMPLE_INTERVAL_SECONDS,
    active_users_write_interval: float | None = None,
    flush_interval: float = FLUSH_INTERVAL_SECONDS,
) -> Middleware:
    """Add `GET /metrics` and the pool sampler to `app`, and return the metrics middleware
    (see the package docstring) for the caller to place. `registry`: tests' fresh registry."""
    metrics = make_http_metrics(registry) if registry is not None else HTTP
    shared_dir = multiprocess_dir()
    store = ActiveUsers(shared_dir / ACTIVE_USERS_FILE if shared_dir else None)
    if active_users_write_interval is not None:
        store.write_interval = active_users_write_interval
    sampler = PoolSampler(engine, metrics.db_pool, pool_sample_interval)
    tally = Tally(metrics, flush_interval, in_process_values=shared_dir is None)

    def on_startup() -> None:
        sampler.start()
        tally.start()

    def on_shutdown() -> None:
        sampler.stop()
        tally.stop()  # the last requests' counts, before this worker's live gauges go
        store.close()
        if shared_dir is not None:
            mark_process_dead(os.getpid(), str(shared_dir))

    layer = Middleware(
        MetricsMiddleware,
        tally=tally,
        active_users=store,
        on_startup=on_startup,
        on_shutdown=on_shutdown,
    )

    scrape: CollectorRegistry | _Registries
    extra = CollectorRegistry(auto_describe=False)
    extra.register(ActiveUsersCollector(store))
    if shared_dir is not None:
        files = CollectorRegistry(auto_describe=False)
        ChurnSafeCollector(files, str(shared_dir))
        scrape = _Registries([files, extra])
    else:
        scrape = _Registries([registry or REGISTRY, extra])

    @app.get("/metrics", include_in_schema=False)
    def metrics_endpoint() -> Response:
        # Sync handler on purpose: reading the workers' files is blocking I/O and
        # belongs in the thread pool, not on the event loop serving requests.
        sampler.sample()
        tally.flush()  # this worker's requests up to now; the others' are <= 1 interval old
        if shared_dir is None:
            body = generate_latest(scrape)
        else:
            # Dead workers' files: live gauges dropped (a worker killed with -9 could not
            # do it itself), the rest folded into archives so scrapes stay fast.
            compact(shared_dir)
            with scrape_lock(shared_dir):
                body = generate_latest(scrape)
            # This scrape counted itself in progress: not in the next worker's scrape.
            tally.flush(leaving=1)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return layer
