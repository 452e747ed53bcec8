"""Alertmanager's webhooks: one path per severity, plus the Watchdog heartbeat."""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from alert_bridge.deps import Authorized, BridgeError, ServiceDep, read_body
from alert_bridge.payload import PayloadError, parse_webhook
from common.alerting import SEVERITIES

log = logging.getLogger("alert_bridge.http")

# Alertmanager's receiver for the Watchdog alert posts here (alertmanager.yml).
WATCHDOG_PATH = "watchdog"

router = APIRouter()


@router.post("/alertmanager/{severity}", dependencies=[Authorized])
async def alertmanager_webhook(
    severity: str, request: Request, service: ServiceDep
) -> JSONResponse:
    if severity not in (*SEVERITIES, WATCHDOG_PATH):
        raise BridgeError(
            404,
            f"unknown severity {severity!r}; expected one of {', '.join(SEVERITIES)} or {WATCHDOG_PATH}",
        )
    body = await read_body(request, service.settings.bridge_max_payload_bytes)
    try:
        payload, stored = parse_webhook(body)
    except PayloadError as exc:
        raise BridgeError(400, str(exc)) from exc
    try:
        if severity == WATCHDOG_PATH:
            if payload.status != "firing":
                # A resolved Watchdog means it stopped firing: not a sign of life.
                return JSONResponse({"status": "ignored", "reason": "watchdog resolved"})
            before = await run_in_threadpool(service.watchdog.heartbeat, time.time())
            return JSONResponse({"status": "heartbeat", "previous_state": before})
        accepted = await run_in_threadpool(service.accept, severity, payload, stored)
    except Exception as exc:  # noqa: BLE001 - 5xx so Alertmanager retries
        log.error("cannot store notification: %s: %s", type(exc).__name__, exc)
        raise BridgeError(503, "could not store the notification; retry") from exc
    return JSONResponse(
        {
            "status": "stored",
            "notification": accepted.key,
            "new_deliveries": accepted.new,
            "duplicate_deliveries": accepted.duplicates,
        }
    )
