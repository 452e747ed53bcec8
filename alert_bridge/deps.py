"""What the bridge's routers share: the service, the bearer-token check, the bounded body,
and the one error shape (`{"error": "..."}`) every refusal uses."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import JSONResponse

from alert_bridge.service import BridgeService

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
    return error_response(exc.status, exc.message, exc.headers)


async def get_service(request: Request) -> BridgeService:
    return request.app.state.service


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
