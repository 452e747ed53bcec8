"""The pure ASGI middleware timing and counting every HTTP request.

Lean on purpose (the budget is < 2 % of a DB-backed request): a request costs a few
dict lookups, two perf_counter calls and additions to plain Python numbers of the
app's Tally (app/instrumentation/tally.py), which hands them to the metrics in
batches. No metric write, no lock, no regex, no Request object. The route label comes
from what the router put in the scope, after the call.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter, time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.instrumentation.active_users import ActiveUsers
from app.instrumentation.tally import Tally
from app.metrics import UNMATCHED_ROUTE

# Anything else a client sends is one label value, so it cannot grow the series count.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "OTHER"


def route_template(scope: Scope) -> str:
    """The template of the route that handled the request, or UNMATCHED_ROUTE.

    FastAPI >= 0.16x keeps included routers as such: their APIRoute's own path lacks
    the prefixes of nested routers, and the full template is on the effective route
    context. Older FastAPI and Starlette flatten routes, and `scope["route"]` has it.
    """
    fastapi_scope = scope.get("fastapi")
    if fastapi_scope:
        template = getattr(fastapi_scope.get("effective_route_context"), "path_format", None)
        if template:
            return template
    template = getattr(scope.get("route"), "path_format", None)
    return template or UNMATCHED_ROUTE


class MetricsMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        tally: Tally,
        active_users: ActiveUsers,
        on_startup: Callable[[], None],
        on_shutdown: Callable[[], None],
    ) -> None:
        self.app = app
        self._tally = tally
        self._active_users = active_users
        self._on_startup = on_startup
        self._on_shutdown = on_shutdown

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self._lifespan(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return

        status = 0

        async def send_recording_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        tally = self._tally
        # Only this event loop's thread writes the tally, so += needs no lock (tally.py).
        tally.in_flight += 1
        start = perf_counter()
        try:
            await self.app(scope, receive, send_recording_status)
        finally:
            elapsed = perf_counter() - start
            tally.in_flight -= 1
            # No response started means the app raised: the server answers 500.
            self._record(scope, status or 500, elapsed)

    def _record(self, scope: Scope, status: int, elapsed: float) -> None:
        template = route_template(scope)
        method = scope["method"]
        if method not in KNOWN_METHODS:
            method = OTHER_METHOD
        by_method = self._tally.series.get(template)
        series = by_method.get(method) if by_method is not None else None
        if series is None:
            series = self._tally.series_for(template, method)
        series.record(status, elapsed)
        state = scope.get("state")
        if state:
            user_id = state.get("user_id")
            if user_id is not None:
                self._active_users.seen(user_id, time())

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_watching(message: Message) -> None:
            kind = message["type"]
            if kind == "lifespan.startup.complete":
                self._on_startup()
            elif kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                self._on_shutdown()
            await send(message)

        await self.app(scope, receive, send_watching)
