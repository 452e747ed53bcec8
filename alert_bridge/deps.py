"""What the bridge's routers share: the service, the bearer-token check, the bounded body,
and the one error shape (`{"error": "..."}`) every refusal uses."""

from __future__ import annotations

import hmac
import logging
from typing import Annotated

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from alert_bridge.service import BridgeService

log = logging.getLogger("alert_bridge.http")

WEBHOOK_PREFIX = "/alertmanager/"
UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="tracetrack-alert-bridge"'}


class BridgeError(Exception):
    """A refusal with a status and a message that names the problem."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


async def bridge_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BridgeError)
    if request.url.path.startswith(WEBHOOK_PREFIX) and exc.status < 500:
        # Alertmanager drops a notification answered 4xx: leave a trace of each one.
        service: BridgeService = request.app.state.service
        reason = service.metrics.rejected_webhook(exc.status)
        log.warning(
            "rejected webhook %s from %s (%s, %s bytes): %d %s",
            request.url.path,
            request.client.host if request.client else "unknown",
            reason,
            request.headers.get("content-length", "unknown"),
            exc.status,
            exc.message,
        )
    return error_response(exc.status, exc.message, exc.headers)


async def invalid_request_handler(request: Request, exc: Exception) -> JSONResponse:
    """A query parameter FastAPI could not parse (`?limit=abc`): the bridge's one error
    shape, naming the parameter, without echoing the input (FastAPI's 422 did)."""
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"][1:]) or "request"
    return error_response(400, f"{where}: {first['msg']}")


async def get_service(request: Request) -> BridgeService:
    service: BridgeService = request.app.state.service
    return service


ServiceDep = Annotated[BridgeService, Depends(get_service)]


async def require_token(request: Request, service: ServiceDep) -> None:
    """401 unless the request carries `Authorization: Bearer <BRIDGE_AUTH_TOKEN>`."""
    given = request.headers.get("authorization", "").encode()
    # Constant-time: the comparison must not tell an attacker how much of a guess was right.
    if not hmac.compare_digest(given, f"Bearer {service.token}".encode()):
        raise BridgeError(401, "missing or wrong bearer token", UNAUTHORIZED_HEADERS)


Authorized = Depends(require_token)


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, refused with 413 past `max_bytes` before it is all read."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise BridgeError(413, f"payload of {declared} bytes exceeds the {max_bytes}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise BridgeError(413, f"payload exceeds the {max_bytes}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)
