"""The /analytics API and dashboard page (admins only), and the stored reports.

Include it with `app.include_router(router)`; it reads Settings.prometheus_url,
alertmanager_url, grafana_url and the reports directory from `app.state.settings`,
and its own AnalyticsSettings (query timeout, cache TTL) from the environment.
"""

from fastapi import APIRouter

from app.analytics import reports, routes

router = APIRouter()
router.include_router(routes.router)
router.include_router(reports.router)

__all__ = ["router"]
