"""The bridge's settings: the variables operators know (docs/architecture.md §4) plus the
bridge's own.

Built once at startup and passed down. Env names follow docs/architecture.md §4
(`ENABLE_EMAIL_ALERTS`, `SMTP_SERVER`, `TWILIO_*`, `BRIDGE_*`, ...). Secrets are
`SecretStr` so they never show up in a repr or a log line.
"""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from common.dburl import sqlalchemy_url
from common.settings import Settings, absolute_base_url
from common.smtp import SmtpSettings

# The operator's file, in the directory the bridge runs from (ALERT_CONFIG_FILE moves it).
DEFAULT_ALERT_CONFIG = Path("alert_config.py")
# docs/runbook.md, shipped as package data (alert_bridge/runbook.md links to it).
DEFAULT_RUNBOOK = Path(__file__).resolve().parent / "runbook.md"
DEFAULT_TOKEN_FILE_NAME = "bridge_auth_token"
DEFAULT_SQLITE_NAME = "bridge.sqlite3"


class BridgeSettings(SmtpSettings):
    # Email: SMTP_SERVER, SMTP_PORT, ALERT_SENDER_*, ... come from
    # common.smtp.SmtpSettings, shared with the reporter.

    # --- SMS ----------------------------------------------------------------
    enable_sms_alerts: bool = False
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from_number: str | None = None
    # Regional or test endpoint replacing https://api.twilio.com.
    twilio_api_base_url: str | None = None
    twilio_timeout_seconds: float = Field(10.0, gt=0)

    # --- webhooks ------------------------------------------------------------
    enable_webhook_alerts: bool = False
    webhook_timeout_seconds: float = Field(10.0, gt=0)

    # --- the bridge itself -----------------------------------------------------
    alert_config_file: Path = DEFAULT_ALERT_CONFIG
    bridge_auth_token: SecretStr | None = None
    bridge_auth_token_file: Path | None = None
    # None -> SQLite under var_dir; PostgreSQL for several replicas.
    bridge_database_url: str | None = None
    # None -> "<hostname>:<port>"; it leases deliveries in the outbox (200 characters there).
    bridge_instance_id: str | None = Field(None, min_length=1, max_length=200)
    # A real 5,000-alert group is ~1.5 MB; Alertmanager sends at most 1000 alerts per
    # webhook (max_alerts in alertmanager.yml), so 8 MiB leaves room for long annotations.
    bridge_max_payload_bytes: int = Field(8 * 1024 * 1024, ge=1024)

    # Delivery: exponential backoff with full jitter between initial and max delay;
    # a delivery still failing transiently after give_up seconds is marked failed.
    bridge_worker_threads: int = Field(8, ge=1, le=128)
    bridge_claim_batch: int = Field(64, ge=1)
    bridge_poll_interval_seconds: float = Field(1.0, gt=0)
    bridge_retry_initial_seconds: float = Field(2.0, gt=0)
    bridge_retry_max_delay_seconds: float = Field(300.0, gt=0)
    bridge_retry_give_up_seconds: float = Field(6 * 3600.0, gt=0)
    # A claimed delivery whose worker died is retried by another replica after this.
    bridge_lease_seconds: float = Field(90.0, gt=0)

    # Dead man's switch: 0 disables it.
    # Alertmanager repeats the Watchdog every 10-20 s (alertmanager/alertmanager.yml);
    # silent this long, the bridge asks Prometheus and Alertmanager (PROMETHEUS_URL,
    # ALERTMANAGER_URL) and pages at once naming one that is down; silent for the
    # whole timeout, it pages anyway. Prometheus' 10 s resend delay makes a dead
    # Prometheus' Watchdog expire in Alertmanager within 40 s, so its page comes
    # within ~80 s (docs/alert-bridge.md, "Dead man's switch").
    bridge_watchdog_timeout_seconds: float = Field(60.0, ge=0)
    bridge_watchdog_probe_after_seconds: float = Field(30.0, gt=0)
    bridge_watchdog_check_interval_seconds: float = Field(5.0, gt=0)

    # --- links in notifications --------------------------------------------------
    # How a phone reaches this bridge (the runbook, the notification pages):
    # BRIDGE_PUBLIC_URL, else TRACETRACK_PUBLIC_URL (common.settings), else the
    # listen address.
    bridge_public_url: str | None = None
    bridge_runbook_file: Path = DEFAULT_RUNBOOK
    # Per phone: this many SMS per window, then one digest SMS, then none until the
    # window has room (email and chat keep everything); 0 turns the budget off.
    bridge_sms_budget: int = Field(3, ge=0)
    # Pace deliveries at the providers' published limits (alert_bridge/ratelimit.py).
    bridge_send_rates: bool = True
    bridge_sms_budget_window_minutes: float = Field(10.0, gt=0)
    # An unacknowledged critical group still firing is paged again this often; 0: never.
    bridge_repage_minutes: float = Field(15.0, ge=0)
    bridge_repage_check_interval_seconds: float = Field(30.0, gt=0)
    # How long a notification's page (/n/<token>: acknowledge, silence) keeps working.
    bridge_page_ttl_hours: float = Field(72.0, gt=0)

    @field_validator("bridge_public_url")
    @classmethod
    def _bridge_public_url(cls, value: str | None) -> str | None:
        return absolute_base_url("BRIDGE_PUBLIC_URL", value)

    def public_url(self, port: int) -> str:
        return self.bridge_public_url or self.tracetrack_public_url or self.local_url(port)

    def database_url_resolved(self) -> str:
        if self.bridge_database_url:
            # `postgresql://…` as the app's DATABASE_URL is written: name the driver we ship.
            return sqlalchemy_url(self.bridge_database_url)
        return f"sqlite:///{self.resolved_var_dir() / DEFAULT_SQLITE_NAME}"

    def instance_id(self, port: int) -> str:
        return self.bridge_instance_id or f"{socket.gethostname()}:{port}"


def default_token_file(settings: Settings) -> Path:
    return settings.resolved_var_dir() / DEFAULT_TOKEN_FILE_NAME


def ensure_token_file(settings: Settings) -> Path:
    """The bearer-token file Alertmanager's `credentials_file` can point at.

    `tracetrack up` calls this before rendering alertmanager.yml so the bridge
    and Alertmanager share a token without anyone typing one. With
    BRIDGE_AUTH_TOKEN set, that token is what the bridge expects, so it is written
    (mode 0600) to a file of its own for Alertmanager to read.
    """
    explicit = getattr(settings, "bridge_auth_token_file", None)
    from_env = getattr(settings, "bridge_auth_token", None)
    if from_env is not None and explicit is None:
        path = settings.resolved_var_dir() / f"{DEFAULT_TOKEN_FILE_NAME}.from-env"
        _write_private(path, from_env.get_secret_value().strip(), replace=True)
        return path
    path = explicit or default_token_file(settings)
    if not path.exists():
        _write_private(path, secrets.token_urlsafe(32), replace=False)
    return path


def _write_private(path: Path, text: str, replace: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if replace and path.exists():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")


def resolve_auth_token(settings: BridgeSettings) -> str:
    """BRIDGE_AUTH_TOKEN, else the token file (created under var_dir when unset)."""
    if settings.bridge_auth_token is not None:
        token = settings.bridge_auth_token.get_secret_value().strip()
        source = "BRIDGE_AUTH_TOKEN"
    elif settings.bridge_auth_token_file is not None:
        path = settings.bridge_auth_token_file
        if not path.is_file():
            raise ValueError(f"BRIDGE_AUTH_TOKEN_FILE: {path} does not exist")
        token = path.read_text().strip()
        source = f"BRIDGE_AUTH_TOKEN_FILE ({path})"
    else:
        path = ensure_token_file(settings)
        token = path.read_text().strip()
        source = f"BRIDGE_AUTH_TOKEN_FILE ({path})"
    if len(token) < 16:
        raise ValueError(f"{source}: the bearer token must be at least 16 characters")
    return token
