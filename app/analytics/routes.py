"""/analytics: the JSON API over named PromQL queries and Alertmanager, and a small
server-rendered dashboard (or a redirect to Grafana when GRAFANA_URL is set)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel

from app.analytics import pages
from app.analytics.auth import (
    COOKIE,
    COOKIE_PATH,
    LoginError,
    PageAccessDep,
    login_admin,
    read_form,
)
from app.analytics.backends import BackendUnavailable, QueryRejected
from app.analytics.service import Analytics
from app.analytics.settings import AnalyticsSettings
from app.deps import AdminDep, DbDep
from app.openapi_responses import GUARDED, HTML, PAGE_GUARD, REDIRECT, responses
from app.repository import revoke_tokens

log = logging.getLogger(__name__)

router = APIRouter(prefix="/analytics", tags=["analytics"])

# The provisioned folder holding the four dashboards (grafana/provisioning/dashboards/).
GRAFANA_FOLDER_UID = "tracetrack"


class BackendError(BaseModel):
    detail: str
    backend: str
    url: str | None = None
    reason: str | None = None


# The JSON API: admins only; Prometheus or Alertmanager may be down (503) or refuse a
# query (502).
API_RESPONSES = {
    **responses(401, *GUARDED),
    502: {"model": BackendError, "description": "Prometheus refused the query"},
    503: {
        "model": BackendError,
        "description": "Prometheus or Alertmanager unreachable; retry after Retry-After seconds",
    },
}

# The provisioned folder holding the four dashboards (grafana/provisioning/dashboards/).
GRAFANA_FOLDER_UID = "tracetrack"


def get_analytics(request: Request) -> Analytics:
    state = request.app.state
    if getattr(state, "analytics", None) is None:
        state.analytics = Analytics(state.settings, AnalyticsSettings())
    return state.analytics


AnalyticsDep = Annotated[Analytics, Depends(get_analytics)]


def unavailable(exc: BackendUnavailable) -> JSONResponse:
    log.warning("analytics: %s", exc)
    return JSONResponse(
        {"detail": str(exc), "backend": exc.backend, "url": exc.url, "reason": exc.reason},
        status_code=503,
        headers={"Retry-After": "5", "Cache-Control": "no-store"},
    )


async def answer(compute: Callable[[], Awaitable[dict[str, Any]]]) -> JSONResponse:
    try:
        body = await compute()
    except BackendUnavailable as exc:
        return unavailable(exc)
    except QueryRejected as exc:
        log.error("analytics: %s", exc)
        return JSONResponse({"detail": str(exc), "backend": "prometheus"}, status_code=502)
    return JSONResponse(body, headers={"Cache-Control": "private, no-store"})


@router.get("/api/metrics/realtime", responses=API_RESPONSES)
async def realtime(_admin: AdminDep, analytics: AnalyticsDep) -> JSONResponse:
    """Current system health, performance and business figures, each with its
    threshold status (ok | warning | critical | unknown)."""
    return await answer(analytics.realtime)


@router.get("/api/metrics/performance", responses=API_RESPONSES)
async def performance(_admin: AdminDep, analytics: AnalyticsDep) -> JSONResponse:
    """Response-time percentiles, throughput, errors, cache, and per route/status."""
    return await answer(analytics.performance)


@router.get("/api/metrics/bags", responses=API_RESPONSES)
async def bags(_admin: AdminDep, analytics: AnalyticsDep) -> JSONResponse:
    """Bag totals, scans and bills today, and their rates."""
    return await answer(analytics.bags)


@router.get("/api/metrics/users", responses=API_RESPONSES)
async def users(_admin: AdminDep, analytics: AnalyticsDep) -> JSONResponse:
    """Active and registered users, and recent login failures."""
    return await answer(analytics.users)


@router.get("/api/slo", responses=API_RESPONSES)
async def slo(_admin: AdminDep, analytics: AnalyticsDep) -> JSONResponse:
    """The 99.9 % availability SLO over 30 days: attainment, error budget remaining and
    the burn rate over each alert's long window (1 = the budget lasts exactly 30 days)."""
    return await answer(analytics.slo)


@router.get("/api/alerts", responses=API_RESPONSES)
async def alerts(_admin: AdminDep, analytics: AnalyticsDep) -> JSONResponse:
    """Alerts active in Alertmanager (not silenced or inhibited), newest first."""
    return await answer(analytics.alerts)


# The pages are for browsers: HTML, redirects, and the cookie set by the login form
# (or a bearer token) instead of an OpenAPI security requirement, since without one
# they redirect to the login page rather than answer 401.
@router.get(
    "/dashboard",
    response_class=HTMLResponse,
    responses={
        303: {**REDIRECT, "description": "Not logged in: to /analytics/login"},
        307: {**REDIRECT, "description": "GRAFANA_URL is set: to the Grafana folder"},
        **PAGE_GUARD,
        503: {"description": "Prometheus unreachable", "content": HTML},
    },
)
async def dashboard(request: Request, access: PageAccessDep, analytics: AnalyticsDep) -> Response:
    if access.problem == "login":
        return RedirectResponse("/analytics/login", status_code=303)
    if access.problem == "forbidden":
        return HTMLResponse(pages.forbidden(), status_code=403)
    grafana_url = request.app.state.settings.grafana_url
    if grafana_url:
        return RedirectResponse(
            f"{grafana_url.rstrip('/')}/dashboards/f/{GRAFANA_FOLDER_UID}/", status_code=307
        )
    try:
        metrics = await analytics.realtime()
    except (BackendUnavailable, QueryRejected) as exc:
        return HTMLResponse(
            pages.unavailable(str(exc)), status_code=503, headers={"Retry-After": "5"}
        )
    alert_error = None
    try:
        active = await analytics.alerts()
    except BackendUnavailable as exc:
        active, alert_error = None, str(exc)
    return HTMLResponse(
        pages.dashboard(metrics, active, alert_error),
        headers={"Cache-Control": "private, no-store"},
    )


@router.get("/login", response_class=HTMLResponse, responses={403: PAGE_GUARD[403]})
async def login_page() -> HTMLResponse:
    return HTMLResponse(pages.login())


@router.post(
    "/login",
    response_class=RedirectResponse,
    status_code=303,
    responses={
        303: {**REDIRECT, "description": "Logged in: the session cookie is set"},
        401: {"description": "Wrong or missing credentials: the form again", "content": HTML},
        **PAGE_GUARD,
        **responses(413, 503),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "username": {"type": "string", "maxLength": 64},
                            "password": {"type": "string", "maxLength": 256},
                        },
                        "required": ["username", "password"],
                    }
                }
            },
        }
    },
)
async def login(request: Request, db: DbDep) -> Response:
    try:
        form = await read_form(request)
        token, ttl = await login_admin(
            request, db, form.get("username", ""), form.get("password", "")
        )
    except LoginError as exc:
        return HTMLResponse(pages.login(str(exc)), status_code=exc.status, headers=exc.headers)
    response = RedirectResponse("/analytics/dashboard", status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        max_age=ttl,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post(
    "/logout",
    response_class=RedirectResponse,
    status_code=303,
    responses={
        303: {**REDIRECT, "description": "To /analytics/login, the cookie dropped"},
        **PAGE_GUARD,
        **responses(503),
    },
)
async def logout(request: Request, access: PageAccessDep, db: DbDep) -> Response:
    """Ends the session: the cookie is dropped and the token revoked (a copy of the
    cookie no longer works)."""
    if access.principal is not None:
        await revoke_tokens(db, access.principal.user_id)
        request.app.state.revocation.forget(access.principal.user_id)
    response = RedirectResponse("/analytics/login", status_code=303)
    response.delete_cookie(COOKIE, path=COOKIE_PATH)
    return response
