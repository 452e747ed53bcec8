"""Prometheus instrumentation of the app (DESIGN §6), correct under several workers.

- `prepare_multiprocess(settings)`: called by `tracetrack app` in the parent, before
  any worker exists, so that every worker writes its metrics into one shared directory
  (prometheus_client multiprocess mode) and any worker's /metrics reports them all.
- `instrument(app, settings, engine)`: called by `create_app` when metrics are
  enabled. Adds the pure ASGI middleware (requests, durations, in-progress, active
  users), the DB pool sampler and `GET /metrics`.

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

    from common.settings import Settings

__all__ = ["instrument", "prepare_multiprocess"]


def instrument(app: FastAPI, settings: Settings, engine: Engine, **options: Any) -> None:
    from app.instrumentation.setup import instrument as _instrument

    _instrument(app, settings, engine, **options)
