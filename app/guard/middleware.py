"""The guard's two pure ASGI layers (their place in the stack: app/middleware.py).

`ClientGuardMiddleware` (layer 3) decides who the client is and answers 403 to a
blocked one before anything reads its headers' token or its body.
`RateLimitMiddleware` (layer 5) spends the client's budget for the route class and
answers 429 with Retry-After and RateLimit headers when it is spent; after the
router answers, it notes what security cares about in the answer (QR lookups
that found nothing, unmatched paths carrying traversal signatures) and writes the
access log. Lean on purpose: a request that trips nothing costs a few dictionary
lookups (the guard's budget is < 50 µs of CPU a request, docs/security.md).
"""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.guard import Guard
from app.guard.events import Event, iso
from app.guard.identity import bearer_token, client_ip
from app.guard.ratelimit import retry_after_header, route_class
from app.guard.signatures import PATH_TRAVERSAL, has_traversal
from app.instrumentation.middleware import route_template
from app.metrics import UNMATCHED_ROUTE

# Routes whose 404 means "no bag has this QR id".
QR_ROUTES = frozenset({"/api/bags/{qr_id}", "/api/bags/{qr_id}/scans", "/api/scans"})
DENIED = frozenset({401, 403, 429})


async def _answer(send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _state(scope: Scope) -> dict[str, Any]:
    state = scope.get("state")
    if state is None:
        state = scope["state"] = {}
    return state


class ClientGuardMiddleware:
    def __init__(self, app: ASGIApp, *, guard: Guard) -> None:
        self.app = app
        self._guard = guard
        self._hops = guard.settings.trusted_proxy_hops
        self._blocks = guard.blocks
        self._blocked_requests = guard.metrics.blocked_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ip = client_ip(scope, self._hops)
        _state(scope)["client_ip"] = ip
        now = time.time()
        if self._blocks.blocked(ip, now):
            self._blocked_requests.inc()
            path = scope["path"][:200]
            self._guard.events.record(Event("blocked_request", ip, None, path, 403, {}, now))
            _access(self._guard, now, ip, None, scope["method"], path, 403, 0.0)
            await _answer(send, 403, "this client address is blocked", [])
            return
        await self.app(scope, receive, send)


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, *, guard: Guard) -> None:
        self.app = app
        self._guard = guard
        self._hops = guard.settings.trusted_proxy_hops
        self._limiter = guard.limiter
        self._users = guard.token_users
        self._rate_limited = guard.metrics.rate_limited
        self._log_all = guard.log_all_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.time()
        state = _state(scope)
        ip = state.get("client_ip") or client_ip(scope, self._hops)
        token = bearer_token(scope)
        user = self._users.lookup(token, start) if token else None
        if user is not None:
            client = f"u:{user[0]}"
            state["username"] = user[1]
        else:
            client = f"ip:{ip}"
        klass = route_class(scope["method"], scope["path"])
        if klass is not None:
            wait = await self._limiter.hit(klass, client)
            if wait is not None:
                await self._refuse(scope, send, klass, client, ip, user, wait, start)
                return

        status = 0

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, send_noting_status)
        if status in DENIED or status == 404 or self._log_all:
            await self._after(scope, status, client, ip, user, start)

    async def _refuse(
        self,
        scope: Scope,
        send: Send,
        klass: str,
        client: str,
        ip: str,
        user: tuple[int, str] | None,
        wait: float,
        now: float,
    ) -> None:
        policy = self._limiter.policies[klass]
        self._rate_limited.labels(klass).inc()
        username = user[1] if user else None
        path = scope["path"][:200]
        self._guard.events.record(
            Event("rate_limited", ip, username, path, 429, {"route_class": klass}, now)
        )
        _access(self._guard, now, ip, username, scope["method"], path, 429, 0.0)
        retry = retry_after_header(wait)
        await _answer(
            send,
            429,
            f"rate limit for {klass} requests exceeded ({policy.describe()}); retry in {retry} s",
            [
                (b"retry-after", retry.encode()),
                # draft-ietf-httpapi-ratelimit-headers: the policy, and what is left of it.
                (
                    b"ratelimit-policy",
                    f'"{klass}";q={policy.item.amount};w={policy.window_seconds}'.encode(),
                ),
                (b"ratelimit", f'"{klass}";r=0;t={retry}'.encode()),
            ],
        )

    async def _after(
        self,
        scope: Scope,
        status: int,
        client: str,
        ip: str,
        user: tuple[int, str] | None,
        start: float,
    ) -> None:
        route = route_template(scope)
        username = user[1] if user else None
        if status == 404:
            if route in QR_ROUTES:
                await self._guard.scans.unknown_qr(client, username, ip, route)
            elif route == UNMATCHED_ROUTE:
                raw = scope.get("raw_path") or scope["path"].encode()
                text = (raw + b"?" + scope.get("query_string", b"")).decode("latin-1")
                if has_traversal(text):  # a path is only ever a traversal attempt
                    self._guard.metrics.injection_attempts.labels(PATH_TRAVERSAL).inc()
                    self._guard.events.record(
                        Event(
                            "injection_attempt",
                            ip,
                            username,
                            text[:200],
                            404,
                            {"kind": PATH_TRAVERSAL, "fields": ["path"]},
                        )
                    )
        if status in DENIED or self._log_all:
            _access(
                self._guard,
                start,
                ip,
                username,
                scope["method"],
                route,
                status,
                (time.time() - start) * 1000,
            )


def _access(
    guard: Guard,
    at: float,
    ip: str,
    username: str | None,
    method: str,
    route: str,
    status: int,
    duration_ms: float,
) -> None:
    guard.access_log.write(
        {
            "time": iso(at),
            "client_ip": ip,
            "user": username,
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(duration_ms, 2),
        }
    )
