"""Assemble the collectors from settings and serve them."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlsplit

from common.dburl import scheme, sqlalchemy_url
from common.settings import Settings
from exporter.appready import AppReadinessCollector
from exporter.business import BusinessCollector, utc_now
from exporter.collector import Collector
from exporter.daycount import DaySeals
from exporter.pg import PgConnection, libpq_dsn
from exporter.pgbouncer import PgBouncerCollector
from exporter.postgres import PostgresCollector
from exporter.rediscache import RedisCollector
from exporter.scrape import Scraper
from exporter.server import ExporterHTTPServer
from exporter.settings import ExporterSettings
from exporter.system import SystemCollector

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A setting the exporter cannot start with; the message names the env var."""


def check_config(settings: Settings, xsettings: ExporterSettings) -> None:
    """What the settings classes cannot check alone (TRACETRACK_TIMEZONE: Settings)."""
    url = xsettings.pgbouncer_url
    if url and scheme(sqlalchemy_url(url)) != "postgresql+psycopg2":
        raise ConfigError(
            f"PGBOUNCER_URL: scheme {scheme(url) or '(none)'!r} is not PostgreSQL's "
            "(use postgresql://user:password@host:6432/pgbouncer)"
        )
    for i, app_url in enumerate(xsettings.app_url_list(), 1):
        parts = urlsplit(app_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            # Named by position, not shown: the URL may carry a password.
            raise ConfigError(
                f"TRACETRACK_EXPORTER_APP_URLS: URL {i} is not an absolute http(s) URL "
                "(use http://host:8000, comma-separated)"
            )
    for mp in xsettings.mountpoint_list():
        if not os.path.isdir(mp):
            raise ConfigError(f"TRACETRACK_EXPORTER_MOUNTPOINTS: {mp!r} is not a directory")


def build_collectors(
    settings: Settings,
    xsettings: ExporterSettings,
    database_url: str | None,
    database_error: str = "",
    clock: Callable[[], datetime] = utc_now,
) -> list[Collector]:
    """System, postgres, business, and when configured redis (REDIS_URL), app
    (TRACETRACK_EXPORTER_APP_URLS) and pgbouncer (PGBOUNCER_URL) collectors.

    `database_url` None means it could not be resolved (`database_error` says why): the
    two database collectors then report up 0 rather than the exporter refusing to start.
    """
    check_config(settings, xsettings)
    dsn = libpq_dsn(database_url) if database_url else None
    collectors: list[Collector] = [
        SystemCollector(xsettings.mountpoint_list() or None),
        # Separate connections: a lock wait in one does not stall the other.
        PostgresCollector(PgConnection(dsn, database_error)),
        BusinessCollector(
            PgConnection(dsn, database_error),
            settings.timezone,
            clock=clock,
            seals=DaySeals(PgConnection(dsn, database_error), clock, xsettings.day_reseal_seconds),
        ),
    ]
    if settings.redis_url:
        collectors.append(RedisCollector(settings.redis_url))
    if xsettings.app_url_list():
        collectors.append(AppReadinessCollector(xsettings.app_url_list()))
    if xsettings.pgbouncer_url:
        collectors.append(PgBouncerCollector(libpq_dsn(xsettings.pgbouncer_url)))
    return collectors


def start_server(
    host: str, port: int, scraper: Scraper, default_timeout: float
) -> ExporterHTTPServer:
    """Bind now, serve on a daemon thread; call .shutdown() and .server_close() to stop."""
    server = ExporterHTTPServer((host, port), scraper, default_timeout)
    threading.Thread(target=server.serve_forever, name="exporter-http", daemon=True).start()
    return server
