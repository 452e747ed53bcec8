"""/analytics/reports: the stored daily and weekly reports (admins only).

`/analytics/reports` lists them (HTML), `/analytics/api/reports` as JSON, and
`/analytics/reports/{kind}/{period}/report.html|.pdf|.json` serves one file from the
reports directory (REPORT_DIR, default var/reports), which `tracetrack reporter` fills.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response

from app.analytics import pages
from app.analytics.auth import PageAccessDep
from app.deps import AdminDep
from app.openapi_responses import AUTHENTICATED, PAGE_GUARD, REDIRECT, responses
from common import reportfiles

router = APIRouter(prefix="/analytics", tags=["analytics"])

# The stored report.html carries its charts as data: URIs and inline styles, nothing else.
REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'none'"


def _root(request: Request) -> Path:
    return request.app.state.settings.reports_dir()


@router.get("/api/reports", responses=responses(*AUTHENTICATED))
async def list_json(request: Request, _admin: AdminDep) -> JSONResponse:
    """Stored reports, newest first, with their availability and file links."""
    return JSONResponse({"reports": reportfiles.list_reports(_root(request))})


@router.get(
    "/reports",
    response_class=HTMLResponse,
    responses={
        303: {**REDIRECT, "description": "Not logged in: to /analytics/login"},
        **PAGE_GUARD,
    },
)
async def list_page(request: Request, access: PageAccessDep) -> Response:
    if access.problem == "login":
        return RedirectResponse("/analytics/login", status_code=303)
    if access.problem == "forbidden":
        return HTMLResponse(pages.forbidden(), status_code=403)
    return HTMLResponse(pages.reports(reportfiles.list_reports(_root(request))))


@router.get(
    "/reports/{kind}/{period}/{name}",
    response_class=FileResponse,
    responses={
        200: {
            "description": "The stored file",
            "content": {
                media: {"schema": {"type": "string"}} for media in reportfiles.FILES.values()
            },
        },
        **responses(401, 404),
        **PAGE_GUARD,
    },
)
async def report_file(
    request: Request, kind: str, period: str, name: str, access: PageAccessDep
) -> Response:
    if access.problem == "login":
        return JSONResponse({"detail": "log in as an admin first"}, status_code=401)
    if access.problem == "forbidden":
        return JSONResponse({"detail": "admins only"}, status_code=403)
    if name not in reportfiles.FILES:
        return JSONResponse(
            {"detail": f"no such file {name!r}; expected one of {', '.join(reportfiles.FILES)}"},
            status_code=404,
        )
    try:
        directory = reportfiles.report_dir(_root(request), kind, period)
    except ValueError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=404)
    path = directory / name
    if not (directory / "report.json").is_file() or not path.is_file():
        return JSONResponse({"detail": f"no {kind} report for {period}"}, status_code=404)
    headers = {"Cache-Control": "private, no-store"}
    if name == "report.html":
        headers["Content-Security-Policy"] = REPORT_CSP
    return FileResponse(path, media_type=reportfiles.FILES[name], headers=headers)
