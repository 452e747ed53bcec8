from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.openapi_responses import responses

# A blocked client is refused even here (app/guard); rate limits exempt these paths.
router = APIRouter(tags=["health"], responses=responses(403))


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]


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
