"""/metrics, and the liveness (/healthz) and readiness (/readyz) probes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from alert_bridge.deps import ServiceDep

router = APIRouter()


# What the URL `make up` prints (and the README lists) opens on.
LANDING = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>TraceTrack alert bridge</title></head><body>
<h1>TraceTrack alert bridge</h1>
<p>Alertmanager posts its webhooks to <code>/alertmanager/{critical,warning,info}</code>;
each notification links to its own page at <code>/n/&lt;token&gt;</code>.</p>
<ul>
<li><a href="/runbook">/runbook</a>: the runbook, one section per alert</li>
<li><a href="/metrics">/metrics</a>: Prometheus metrics</li>
<li><a href="/healthz">/healthz</a>, <a href="/readyz">/readyz</a>: liveness and readiness</li>
<li><code>/notifications</code>: recent deliveries (bearer token)</li>
</ul></body></html>
"""


@router.get("/")
async def landing() -> HTMLResponse:
    return HTMLResponse(LANDING)


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
