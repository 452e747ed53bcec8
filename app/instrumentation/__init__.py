"""Prometheus instrumentation of the app (docs/architecture.md §6), correct under several workers.

- `prepare_multiprocess(settings)`: called by `tracetrack app` in the parent, before
  any worker exists, so that every worker writes its metrics into one shared directory
  (prometheus_client multiprocess mode) and any worker's /metrics reports them all.
- `metrics_middleware(app, settings, engine)`: called by app/middleware.py when
  metrics are enabled. Adds the DB pool sampler and `GET /metrics` to the app and
  returns the pure ASGI middleware (requests, durations, in-progress, active users),
  which app/middleware.py places outermost in the app's one ordered stack.
- `instrument(app, settings, engine)`: the same, for a bare app of a test or bench:
  the middleware becomes its outermost layer.

With `TRACETRACK_METRICS_ENABLED=false` neither runs: there is no middleware and no
/metrics route (it answers 404), so the overhead benchmark's "off" is truly off and
no scrape can mistake one worker's in-process numbers for the whole app's.

This package's import must stay free of prometheus_client: prometheus_client chooses
between in-process and multiprocess values when first imported, and the parent
imports this package to call `prepare_multiprocess` before that choice is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.instrumentation.multiproc import prepare_multiprocess

if TYPE_CHECKING:
    from fastapi import FastAPI
    from sqlalchemy import Engine
    from starlette.middleware import Middleware

    from app.instrumentation.pool import PoolStats
    from common.settings import Settings

__all__ = ["instrument", "metrics_middleware", "prepare_multiprocess"]


def instrument(
    app: FastAPI, settings: Settings, engine: Engine | PoolStats, **options: Any
) -> None:
    from app.instrumentation.setup import instrument as _instrument

    _instrument(app, settings, engine, **options)


def metrics_middleware(
    app: FastAPI, settings: Settings, engine: Engine | PoolStats, **options: Any
) -> Middleware:
    from app.instrumentation.setup import metrics_middleware as _metrics_middleware

    return _metrics_middleware(app, settings, engine, **options)
