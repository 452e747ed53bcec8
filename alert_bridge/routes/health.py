"""/metrics, and the liveness (/healthz) and readiness (/readyz) probes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from alert_bridge.deps import ServiceDep

router = APIRouter()


@router.get("/metrics")
async def metrics(service: ServiceDep) -> Response:
    data = await run_in_threadpool(generate_latest, service.metrics.registry)
    return Response(data, media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(service: ServiceDep) -> JSONResponse:
    ok, why = await run_in_threadpool(service.ready)
    return JSONResponse(
        {"status": "ready" if ok else "not ready", "reason": why},
        status_code=200 if ok else 503,
    )
