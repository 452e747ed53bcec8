"""The bridge's HTTP side: Alertmanager webhooks in, operators' endpoints out.

POST /alertmanager/{critical|warning|info}   Alertmanager webhook (payload v4)   routes/webhooks.py
POST /alertmanager/watchdog                  the Watchdog alert's heartbeat      routes/webhooks.py
GET  /notifications                          recent deliveries (bearer token)    routes/notifications.py
GET  /  /metrics  /healthz  /readyz    a landing page, metrics, probes              routes/health.py
GET  /runbook  /runbook/{alertname}           the runbook as HTML                 routes/runbook.py
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi

from alert_bridge.deps import BridgeError, bridge_error_handler, invalid_request_handler
from alert_bridge.payload import openapi_schemas
from alert_bridge.routes import ROUTERS
from alert_bridge.service import BridgeService


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The document (not served: openapi_url is None) with the webhook's body schema and
    bearer scheme; tests/test_fuzz_bridge.py fuzzes the bridge from it."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        components = schema.setdefault("components", {})
        components.setdefault("schemas", {}).update(openapi_schemas())
        components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        app.openapi_schema = schema
    return app.openapi_schema


def create_app(service: BridgeService) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(service.start)
        yield
        await run_in_threadpool(service.stop)

    app = FastAPI(
        title="TraceTrack alert bridge",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.service = service
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    app.add_exception_handler(BridgeError, bridge_error_handler)
    app.add_exception_handler(RequestValidationError, invalid_request_handler)
    for router in ROUTERS:
        app.include_router(router)
    return app
