"""The app's middleware stack, assembled in one place and in one order.

Outermost first (each layer sees what the ones inside it answer):

1. metrics: counts and times every answer, including the 403, 413 and 429 that the
   layers below give without reaching a router;
2. security headers;
3. client identity and IP blocks: a blocked client gets 403 before authentication
   and before its body is read;
4. request body size limit: 413 before anything parses the body;
5. rate limits, per client and route class: 429 with Retry-After;
6. the routers.

The guard's layers (3, 5) exist when `app.state.guard` does (TRACETRACK_GUARD_ENABLED).
Every layer is pure ASGI (a `BaseHTTPMiddleware` roughly triples the per-request
cost). A layer that is not configured is left out, not stubbed with a pass-through.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI
from sqlalchemy import Engine
from starlette.middleware import Middleware

from app.body_limit import BodyLimitMiddleware
from app.security_headers import SecurityHeadersMiddleware
from common.settings import Settings

if TYPE_CHECKING:
    from app.instrumentation.pool import PoolStats


def install_middleware(app: FastAPI, settings: Settings, engine: Engine | PoolStats) -> None:
    """Give `app` its whole middleware stack (replacing any layers added before)."""
    layers: list[Middleware] = []
    if settings.metrics_enabled:
        from app.instrumentation import metrics_middleware

        layers.append(metrics_middleware(app, settings, engine))  # (1)
    layers.append(Middleware(SecurityHeadersMiddleware))  # (2)
    guard = getattr(app.state, "guard", None)
    if guard is not None:
        from app.guard.middleware import ClientGuardMiddleware

        layers.append(Middleware(ClientGuardMiddleware, guard=guard))  # (3)
    layers.append(Middleware(BodyLimitMiddleware, max_bytes=settings.max_request_body_bytes))  # (4)
    if guard is not None:
        from app.guard.middleware import RateLimitMiddleware

        layers.append(Middleware(RateLimitMiddleware, guard=guard))  # (5)
    app.user_middleware = layers
