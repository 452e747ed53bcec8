"""Alertmanager's webhooks: one path per severity, plus the Watchdog heartbeat."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from alert_bridge.deps import Authorized, BridgeError, ServiceDep, read_body
from alert_bridge.payload import PayloadError, parse_webhook, short_repr
from common.alerting import SEVERITIES

log = logging.getLogger("alert_bridge.http")

# Alertmanager's receiver for the Watchdog alert posts here (alertmanager.yml).
WATCHDOG_PATH = "watchdog"

router = APIRouter()
# Documented as an enum, checked in the handler: an unknown path is a 404 naming the
# valid ones (and counted as unknown_receiver), not a validation error.
SeverityPath = Annotated[
    str,
    Path(
        description="the receiver's severity, or watchdog for the Watchdog heartbeat",
        json_schema_extra={"enum": [*SEVERITIES, WATCHDOG_PATH]},
    ),
]


class Refusal(BaseModel):
    """The body of every refusal (alert_bridge.deps.BridgeError)."""

    error: str


# Documented for clients and for schemathesis (tests/test_fuzz_bridge.py). A 4xx is not
# retried by Alertmanager, so each is also logged and counted; a 5xx is retried.
WEBHOOK_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Stored (or the Watchdog's heartbeat taken)"},
    400: {"model": Refusal, "description": "Not an Alertmanager webhook payload (version 4)"},
    401: {"model": Refusal, "description": "Missing or wrong bearer token"},
    404: {"model": Refusal, "description": "No such severity path"},
    413: {"model": Refusal, "description": "Body over BRIDGE_MAX_PAYLOAD_BYTES"},
    503: {"model": Refusal, "description": "Could not store the notification; retry"},
}
WEBHOOK_OPENAPI = {
    # The body is read raw (bounded, then parsed by alert_bridge.payload), so its schema
    # is declared here; the bridge app adds the WebhookPayload component.
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/WebhookPayload"}}
        },
    },
    "security": [{"bearer": []}],
}


@router.post(
    "/alertmanager/{severity}",
    dependencies=[Authorized],
    responses=WEBHOOK_RESPONSES,
    openapi_extra=WEBHOOK_OPENAPI,
)
async def alertmanager_webhook(
    severity: SeverityPath, request: Request, service: ServiceDep
) -> JSONResponse:
    if severity not in (*SEVERITIES, WATCHDOG_PATH):
        raise BridgeError(
            404,
            f"unknown severity {short_repr(severity)}; expected one of {', '.join(SEVERITIES)}"
            f" or {WATCHDOG_PATH}",
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
            before = await run_in_threadpool(service.watchdog.heartbeat, service.watchdog.clock())
            return JSONResponse({"status": "heartbeat", "previous_state": before})
        accepted = await run_in_threadpool(service.accept, severity, payload, stored)
    except Exception as exc:
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
