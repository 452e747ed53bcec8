"""Settings of the /analytics API; the URLs of Prometheus, Alertmanager and Grafana
are common.settings.Settings (PROMETHEUS_URL, ALERTMANAGER_URL, GRAFANA_URL)."""

from __future__ import annotations

from pydantic import Field

from common.settings import EnvSettings


class AnalyticsSettings(EnvSettings):
    # Each PromQL query and the Alertmanager call get this long; Prometheus is told
    # too, so it stops evaluating when we stop waiting.
    analytics_query_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    # How long one answer is served to every admin before Prometheus is asked again.
    analytics_cache_ttl_seconds: float = Field(default=10.0, ge=0, le=3600)
