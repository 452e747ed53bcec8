from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel

from app.openapi_responses import responses

# A blocked client is refused even here (app/guard); rate limits exempt these paths.
router = APIRouter(tags=["health"], responses=responses(403))


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]


# What the URL `make up` prints (and the README lists) opens on: where to go from here.
LANDING = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>TraceTrack</title></head><body>
<h1>TraceTrack</h1>
<ul>
<li><a href="/analytics/dashboard">/analytics/dashboard</a>: the analytics page (admins)</li>
<li><a href="/openapi.json">/openapi.json</a>: the JSON API (<code>/api/...</code>)</li>
<li><a href="/metrics">/metrics</a>: Prometheus metrics</li>
<li><a href="/healthz">/healthz</a>, <a href="/readyz">/readyz</a>: liveness and readiness</li>
</ul></body></html>
"""


@router.get("/", include_in_schema=False)
async def landing() -> HTMLResponse:
    return HTMLResponse(LANDING)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers. Never touches a backend."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "PostgreSQL does not answer"}},
)
async def readyz(request: Request) -> JSONResponse:
    """Readiness: PostgreSQL answers; the cache backend is reported, never fatal."""
    checks: dict[str, str] = {"cache": request.app.state.cache.backend}
    try:
        await request.app.state.db.fetchval("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        checks["database"] = f"error: {type(exc).__name__}"
        return JSONResponse({"status": "unavailable", "checks": checks}, status_code=503)
    return JSONResponse({"status": "ok", "checks": checks})
