"""The bridge's HTTP side: Alertmanager webhooks in, operators' endpoints out.

POST /alertmanager/{critical|warning|info}   Alertmanager webhook (payload v4)
POST /alertmanager/watchdog                  the Watchdog alert's heartbeat
GET  /notifications                          recent deliveries (bearer token)
GET  /metrics  /healthz  /readyz
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from alert_bridge.config import SEVERITIES
from alert_bridge.payload import PayloadError, parse_payload
from alert_bridge.providers.base import display_recipient
from alert_bridge.service import BridgeService
from alert_bridge.store import DONE_STATUSES, OPEN_STATUSES

log = logging.getLogger("alert_bridge.http")


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts else None


def create_app(service: BridgeService) -> FastAPI:
    expected_auth = f"Bearer {service.token}".encode()
    max_bytes = service.settings.bridge_max_payload_bytes

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

    def authorized(request: Request) -> bool:
        given = request.headers.get("authorization", "").encode()
        return hmac.compare_digest(given, expected_auth)

    async def read_body(request: Request) -> bytes | JSONResponse:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            return _error(413, f"payload of {declared} bytes exceeds the {max_bytes}-byte limit")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                return _error(413, f"payload exceeds the {max_bytes}-byte limit")
            chunks.append(chunk)
        return b"".join(chunks)

    unauthorized = {"WWW-Authenticate": 'Bearer realm="tracetrack-alert-bridge"'}

    @app.post("/alertmanager/{severity}")
    async def alertmanager_webhook(severity: str, request: Request) -> Response:
        if not authorized(request):
            return _error(401, "missing or wrong bearer token", **unauthorized)
        if severity not in (*SEVERITIES, "watchdog"):
            return _error(
                404,
                f"unknown severity {severity!r}; expected one of "
                f"{', '.join(SEVERITIES)} or watchdog",
            )
        body = await read_body(request)
        if isinstance(body, Response):
            return body
        try:
            payload = parse_payload(body)
        except PayloadError as exc:
            return _error(400, str(exc))
        try:
            if severity == "watchdog":
                if payload.status != "firing":
                    # A resolved Watchdog means it stopped firing: not a sign of life.
                    return JSONResponse({"status": "ignored", "reason": "watchdog resolved"})
                before = await run_in_threadpool(service.watchdog.heartbeat, time.time())
                return JSONResponse({"status": "heartbeat", "previous_state": before})
            accepted = await run_in_threadpool(service.accept, severity, payload, body)
        except Exception as exc:  # noqa: BLE001 - 5xx so Alertmanager retries
            log.error("cannot store notification: %s: %s", type(exc).__name__, exc)
            return _error(503, "could not store the notification; retry")
        return JSONResponse(
            {
                "status": "stored",
                "notification": accepted.key,
                "new_deliveries": accepted.new,
                "duplicate_deliveries": accepted.duplicates,
            }
        )

    @app.get("/notifications")
    async def notifications(
        request: Request, limit: int = 100, status: str | None = None
    ) -> Response:
        if not authorized(request):
            return _error(401, "missing or wrong bearer token", **unauthorized)
        if not 1 <= limit <= 1000:
            return _error(400, "limit must be between 1 and 1000")
        valid = (*OPEN_STATUSES, *DONE_STATUSES)
        if status is not None and status not in valid:
            return _error(400, f"unknown status {status!r}; expected one of {', '.join(valid)}")
        rows, counts, wd = await run_in_threadpool(
            lambda: (
                service.store.recent(limit, status),
                service.store.counts_by_status(),
                service.watchdog.state(),
            )
        )
        return JSONResponse(
            {"counts": counts, "watchdog": wd, "deliveries": [_present(r) for r in rows]}
        )

    @app.get("/metrics")
    async def metrics() -> Response:
        data = await run_in_threadpool(generate_latest, service.metrics.registry)
        return Response(data, media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> Response:
        ok, why = await run_in_threadpool(service.ready)
        return JSONResponse(
            {"status": "ready" if ok else "not ready", "reason": why},
            status_code=200 if ok else 503,
        )

    return app


def _present(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["recipient"] = display_recipient(row["channel"], row["recipient"])
    for field in ("created_at", "next_attempt_at", "sent_at"):
        out[field] = _iso(row[field])
    if row["status"] in DONE_STATUSES:
        out["next_attempt_at"] = None
    return out
