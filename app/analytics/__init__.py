"""The /analytics API and dashboard page (admins only).

Include it with `app.include_router(router)`; it reads Settings.prometheus_url,
alertmanager_url and grafana_url from `app.state.settings`, and its own
AnalyticsSettings (query timeout, cache TTL) from the environment.
"""

from app.analytics.routes import router

__all__ = ["router"]
