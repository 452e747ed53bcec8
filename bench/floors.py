"""The floors the app's CPU per request is compared with, served like the app.

    uvicorn bench.floors:fastapi_floor --factory   # one `async def` FastAPI route
    uvicorn bench.floors:asgi_floor                # a bare ASGI callable

Both answer `GET /floor` with the same small JSON body; anything else is a 404.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

BODY = b'{"status":"ok"}'


def fastapi_floor() -> FastAPI:
    app = FastAPI()

    @app.get("/floor")
    async def floor() -> dict[str, str]:
        return {"status": "ok"}

    return app


_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def asgi_floor(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    found = scope["path"] == "/floor"
    await send(
        {
            "type": "http.response.start",
            "status": 200 if found else 404,
            "headers": _HEADERS if found else [(b"content-length", b"0")],
        }
    )
    await send({"type": "http.response.body", "body": BODY if found else b""})
