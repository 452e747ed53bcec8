"""The one place settings are read from the environment.

Every service builds a `Settings()` at startup and passes it down; nothing reads
`os.environ` at import time. Field names map to env vars case-insensitively
(`database_url` <- `DATABASE_URL`).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from common import topology
from common.dburl import scheme, sqlalchemy_url


def absolute_base_url(name: str, value: str | None) -> str | None:
    """An absolute http(s) base URL without a trailing slash; None when unset."""
    if value is None or not value.strip():
        return None
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"{name}: {value!r} is not an absolute http(s) base URL")
    return value.strip().rstrip("/")


def without_credentials(url: str) -> str:
    """`url` without its user and password, for what people see: pages, error bodies,
    logs, notifications (a backend behind basic auth is configured with both)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def url_problem(value: str, schemes: tuple[str, ...]) -> str | None:
    """What is wrong with a service URL, naming no password (the URL carries one)."""
    try:
        given = scheme(value)
        port = urlsplit(value).port
    except ValueError:
        return "its port is not a number from 0 to 65535"
    if not given.startswith(schemes):
        return f"scheme {given or '(none)'!r} is not one of {', '.join(schemes)}"
    return None if port is None or port > 0 else "its port is 0"


def settings_error(exc: ValidationError) -> str:
    """A settings validation error as one line per variable, naming it (never its value:
    settings hide their input, which may be a password or a URL carrying one)."""
    out = []
    for e in exc.errors():
        name = ".".join(str(p) for p in e["loc"]).upper() or "settings"
        msg = str(e["msg"]).removeprefix("Value error, ")
        out.append(msg if msg.startswith(name) else f"{name}: {msg}")
    return "; ".join(out)


class EnvSettings(BaseSettings):
    """How every service reads its settings from the environment; the services'
    own settings classes (exporter, /analytics) derive from it too."""

    model_config = SettingsConfigDict(
        env_file=None,
        extra="ignore",
        case_sensitive=False,
        populate_by_name=True,
        allow_inf_nan=False,  # TOKEN_STATE_TTL_SECONDS=inf is a typo, not a setting
        hide_input_in_errors=True,  # a rejected value may be a URL with its password
    )


class Settings(EnvSettings):
    # env_ignore_empty: docker-compose passes an optional variable the operator left
    # unset (`${ALERT_SENDER_PASSWORD:-}`) as "", which must mean unset (no SMTP login
    # with an empty password), not an empty value.
    model_config = SettingsConfigDict(env_ignore_empty=True)

    # --- where state lives -------------------------------------------------
    var_dir: Path = Field(Path("var"), validation_alias="TRACETRACK_VAR_DIR")

    # --- backends ----------------------------------------------------------
    # None -> the shared embedded PostgreSQL under var_dir (started on demand).
    database_url: str | None = None
    # None or unreachable -> the in-process TTL cache.
    redis_url: str | None = None
    prometheus_url: str = f"http://127.0.0.1:{topology.PROMETHEUS_PORT}"
    alertmanager_url: str = f"http://127.0.0.1:{topology.ALERTMANAGER_PORT}"
    grafana_url: str | None = None

    # --- links people open (docs/architecture.md §4) -------------------------------------
    # The base of every link a notification carries: where phones reach the bridge's
    # runbook and notification pages. Prometheus and Alertmanager get their own
    # (`--web.external-url`, which their alerts' links are built from).
    tracetrack_public_url: str | None = None
    prometheus_external_url: str | None = None
    alertmanager_external_url: str | None = None

    # --- ports (docs/architecture.md §4) -------------------------------------------------
    host: str = Field("127.0.0.1", validation_alias="TRACETRACK_HOST")
    app_port: int = Field(topology.APP_PORT, ge=1, le=65535)
    exporter_port: int = Field(topology.EXPORTER_PORT, ge=1, le=65535)
    bridge_port: int = Field(topology.BRIDGE_PORT, ge=1, le=65535)
    prometheus_port: int = Field(topology.PROMETHEUS_PORT, ge=1, le=65535)
    alertmanager_port: int = Field(topology.ALERTMANAGER_PORT, ge=1, le=65535)
    grafana_port: int = Field(topology.GRAFANA_PORT, ge=1, le=65535)
    # The redis-server `tracetrack up` starts when REDIS_URL is unset.
    local_redis_port: int = Field(topology.REDIS_PORT, ge=1, le=65535)

    # --- database pool: 100-250 connections in total (docs/architecture.md §11),
    # shared by all app workers (each worker gets total / workers).
    db_pool_size_total: int = Field(100, ge=1)
    db_pool_max_overflow_total: int = Field(150, ge=0)
    db_pool_recycle_seconds: int = Field(1800, ge=1)
    db_pool_timeout_seconds: float = Field(10.0, gt=0)
    # Every statement is bounded: PostgreSQL cancels it after statement_timeout (and a
    # wait for a row or table lock after lock_timeout); when the server does not answer
    # at all, the app gives up 1 s later (app/db_deadline.py). Either way a request
    # answers 503 with Retry-After within seconds instead of hanging with the database.
    # PostgreSQL refuses a timeout past INT_MAX ms: every connection would fail.
    db_statement_timeout_ms: int = Field(5000, ge=100, le=2**31 - 1)
    db_lock_timeout_ms: int = Field(2000, ge=0, le=2**31 - 1)
    # libpq waits this long for a new connection (it counts 1 as 2).
    db_connect_timeout_seconds: int = Field(3, ge=2)
    # A connection idle longer than this is pinged before use (app/db.py); one closed by
    # PostgreSQL is noticed by the event loop without any ping.
    db_pool_ping_idle_seconds: float = Field(5.0, ge=0)
    db_pool_idle_close_seconds: float = Field(300.0, gt=0)
    # Prepared statements kept per connection; 0 behind PgBouncer (transaction mode) < 1.21.
    db_statement_cache_size: int = Field(100, ge=0)

    # --- app ---------------------------------------------------------------
    app_workers: int = Field(1, ge=1)
    # Threads per worker for sync endpoints; keep <= the worker's share of the pool.
    app_threads: int = Field(64, ge=1)
    secret_key: str | None = Field(None, validation_alias="TRACETRACK_SECRET_KEY")
    token_ttl_seconds: int = Field(12 * 3600, ge=1)
    # How long a worker trusts its copy of a user's token version: a token revoked
    # elsewhere (another worker, `tracetrack user disable`) stops working within this.
    token_state_ttl_seconds: float = Field(10.0, ge=0)
    cache_ttl_seconds: int = Field(300, ge=0)  # 0: nothing is cached (benchmarks)
    cache_max_entries: int = Field(100_000, ge=0)
    # Cache warming at startup: this many newest bags plus this many most recently scanned.
    cache_warm_entries: int = Field(2500, ge=0)
    metrics_enabled: bool = Field(True, validation_alias="TRACETRACK_METRICS_ENABLED")
    # Shared by every worker so one /metrics counts them all (prometheus_client
    # multiprocess mode); None -> a fresh directory under var_dir.
    prometheus_multiproc_dir: Path | None = Field(None, validation_alias="PROMETHEUS_MULTIPROC_DIR")

    # Request bodies larger than this get 413 before parsing (a 1000-bag bulk body of
    # the longest allowed fields is ~0.75 MB).
    max_request_body_bytes: int = Field(
        1_048_576, ge=1024, validation_alias="TRACETRACK_MAX_REQUEST_BODY_BYTES"
    )
    # Serves Swagger UI at /docs and ReDoc at /redoc. Off by default: those pages load
    # their scripts from a CDN. /openapi.json is always served.
    api_docs: bool = Field(False, validation_alias="TRACETRACK_API_DOCS")
    # Mounts /api/debug/slow and /api/debug/error, for alerting tests only.
    debug_endpoints: bool = Field(False, validation_alias="TRACETRACK_DEBUG_ENDPOINTS")
    migrate_on_start: bool = Field(True, validation_alias="TRACETRACK_MIGRATE_ON_START")

    # --- business "today" ----------------------------------------------------
    timezone: str = Field("UTC", validation_alias="TRACETRACK_TIMEZONE")

    # --- security guard (app/guard; docs/security.md) ------------------------
    # Off only for benchmarks measuring what the guard costs.
    guard_enabled: bool = Field(True, validation_alias="TRACETRACK_GUARD_ENABLED")
    # How many reverse proxies in front of the app append to X-Forwarded-For. 0: the
    # header is ignored and the client is the socket's peer (a client cannot choose it).
    trusted_proxy_hops: int = Field(0, ge=0, le=16)
    # Per client (the user when authenticated, else the IP) and route class, in the
    # `limits` notation ("N/second|minute|hour|day"). Far above a working user's pace:
    # the shipped locustfile's busiest shared account does ~330 writes and ~1300
    # reads a minute, and 1000 users log in from one address within seconds.
    rate_limit_login: str = "3000/minute"
    rate_limit_writes: str = "3000/minute"
    rate_limit_reads: str = "20000/minute"
    # Failed logins (OWASP Authentication Cheat Sheet): past N failures within the
    # window, that account (or that client IP, across accounts) is locked out for
    # lockout_base_seconds, doubling with each lockout in a row up to lockout_max_seconds.
    login_failure_window_seconds: int = Field(900, ge=1)
    login_max_failures_per_account: int = Field(5, ge=1)
    login_max_failures_per_ip: int = Field(30, ge=1)
    lockout_base_seconds: int = Field(60, ge=1)
    lockout_max_seconds: int = Field(3600, ge=1)
    # How long a run of lockouts is remembered: a lockout after a quiet day starts at
    # the base delay again.
    lockout_memory_seconds: int = Field(86400, ge=1)
    # Suspicious scanning patterns (counted and recorded, never refused).
    scan_min_relocation_seconds: int = Field(60, ge=0)  # same QR, two locations, sooner
    scan_burst_per_minute: int = Field(600, ge=1)  # one user's scans in one minute
    unknown_qr_per_5m: int = Field(50, ge=1)  # one client's lookups of QR ids that don't exist
    # Automatic blocks: a client that trips the rules (lockouts, rate limits) this many
    # times within auto_block_window_seconds is blocked for auto_block_seconds. Off by
    # default: many users share one address behind a NAT, so blocking one is a human call.
    auto_block: bool = Field(False, validation_alias="TRACETRACK_AUTO_BLOCK")
    auto_block_strikes: int = Field(5, ge=1)
    auto_block_window_seconds: int = Field(3600, ge=1)
    auto_block_seconds: int = Field(3600, ge=1)
    # Never blocked automatically (comma-separated networks): a proxy the hops setting
    # forgot would make every client look like it.
    auto_block_exempt: str = "127.0.0.0/8,::1/128"
    # How often each worker re-reads the block list from PostgreSQL.
    block_refresh_seconds: float = Field(2.0, gt=0)
    # Security events kept in PostgreSQL for `tracetrack security events`.
    security_event_retention_days: int = Field(30, ge=1)
    # JSON-lines access log under var_dir/log: "denied" (401, 403, 429 answers and
    # security events), "all" requests, or "off".
    access_log: Literal["denied", "all", "off"] = Field(
        "denied", validation_alias="TRACETRACK_ACCESS_LOG"
    )

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        problem = value and url_problem(sqlalchemy_url(value), ("postgresql",))
        if problem:
            raise ValueError(f"DATABASE_URL: {problem} (write postgresql://user:pw@host/db)")
        return value

    @field_validator("prometheus_url", "alertmanager_url", "grafana_url")
    @classmethod
    def _service_url(cls, value: str | None, info) -> str | None:  # type: ignore[no-untyped-def]
        # Else the first query, silence or link fails at run time, far from the setting.
        problem = value and url_problem(value, ("http", "https"))
        if problem or (value and not urlsplit(value).hostname):
            name = str(info.field_name).upper()
            raise ValueError(f"{name}: not an http(s) URL ({problem or 'no host'})")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"TRACETRACK_TIMEZONE: unknown time zone {value!r}"
                " (use an IANA name such as Asia/Kolkata or UTC)"
            ) from None
        return value

    @field_validator("secret_key")
    @classmethod
    def _strong_key(cls, value: str | None) -> str | None:
        # It signs every token (HS256): a short key is guessed offline from one token.
        if value and len(value) < 32:
            raise ValueError("TRACETRACK_SECRET_KEY: at least 32 characters (or unset: generated)")
        return value or None

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        problem = value and url_problem(value, ("redis", "rediss", "unix"))
        if problem:
            raise ValueError(f"REDIS_URL: {problem} (write redis://host:6379/0)")
        return value

    @field_validator("auto_block_exempt")
    @classmethod
    def _networks(cls, value: str) -> str:
        for net in filter(None, (n.strip() for n in value.split(","))):
            try:
                ipaddress.ip_network(net)
            except ValueError:
                raise ValueError(
                    f"AUTO_BLOCK_EXEMPT: {net!r} is not a network (e.g. 10.0.0.0/8, host bits zero)"
                ) from None
        return value

    @field_validator("rate_limit_login", "rate_limit_writes", "rate_limit_reads")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        from limits import parse_many

        try:
            items = parse_many(value)
        except ValueError as exc:
            raise ValueError(
                f"{value!r} is not a rate limit; write N/second, N/minute, N/hour or N/day"
            ) from exc
        if any(item.amount < 1 for item in items):  # 0/minute would refuse every request
            raise ValueError(f"{value!r}: a rate limit allows at least 1 request")
        return value

    # --- reports (written by `tracetrack reporter`, listed at /analytics/reports) ---
    # None -> <TRACETRACK_VAR_DIR>/reports
    report_dir: Path | None = None

    def reports_dir(self) -> Path:
        return self.report_dir or self.resolved_var_dir() / "reports"

    @field_validator(
        "tracetrack_public_url",
        "prometheus_external_url",
        "alertmanager_external_url",
        "grafana_url",
    )
    @classmethod
    def _base_url(cls, value: str | None, info) -> str | None:  # type: ignore[no-untyped-def]
        return absolute_base_url(str(info.field_name).upper(), value)

    def local_url(self, port: int) -> str:
        """http://<listen host>:<port>, with a wildcard listen address made reachable."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{port}"

    def external_urls(self) -> dict[str, str]:
        """Where people reach each service: the configured URL or the local one."""
        return {
            "bridge": self.tracetrack_public_url or self.local_url(self.bridge_port),
            "prometheus": self.prometheus_external_url or self.local_url(self.prometheus_port),
            "alertmanager": self.alertmanager_external_url
            or self.local_url(self.alertmanager_port),
            "grafana": self.grafana_url or self.local_url(self.grafana_port),
        }

    def resolved_var_dir(self) -> Path:
        path = self.var_dir.resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path
