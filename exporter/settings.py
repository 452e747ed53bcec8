"""Exporter-only settings; everything shared (ports, URLs, timezone) is common.settings.Settings."""

from __future__ import annotations

from pydantic import Field

from common.settings import EnvSettings


class ExporterSettings(EnvSettings):
    # Used when a client sends no X-Prometheus-Scrape-Timeout-Seconds (a human with curl);
    # Prometheus' own default scrape_timeout is 10 s.
    default_scrape_timeout_seconds: float = Field(
        10.0, gt=0, validation_alias="TRACETRACK_EXPORTER_SCRAPE_TIMEOUT"
    )
    # How often today's scans/bills before the last minute are recounted (exporter.daycount):
    # the delay before rows inserted with an explicit earlier timestamp show up.
    day_reseal_seconds: float = Field(
        60.0, gt=0, validation_alias="TRACETRACK_EXPORTER_DAY_RESEAL_SECONDS"
    )
    # Comma-separated mountpoints for tracetrack_disk_usage_ratio; empty -> every
    # physical partition psutil reports (and "/" if it reports none).
    mountpoints: str = Field("", validation_alias="TRACETRACK_EXPORTER_MOUNTPOINTS")

    # Comma-separated base URLs of the app(s) whose GET /readyz becomes tracetrack_app_ready;
    # empty -> no app collector.
    app_urls: str = Field("", validation_alias="TRACETRACK_EXPORTER_APP_URLS")

    def app_url_list(self) -> list[str]:
        return [u.strip() for u in self.app_urls.split(",") if u.strip()]

    # PgBouncer's admin console (postgresql://user:pw@host:6432/pgbouncer, a stats_users
    # member); unset -> no pgbouncer collector.
    pgbouncer_url: str | None = Field(None, validation_alias="PGBOUNCER_URL")

    def mountpoint_list(self) -> list[str]:
        return [m.strip() for m in self.mountpoints.split(",") if m.strip()]
