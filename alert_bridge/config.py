"""Load and validate `alert_config.py`, the recipient file (docs/architecture.md §4).

The file defines `ALERT_RECIPIENTS` in the guide's shape::

    ALERT_RECIPIENTS = {
        'email':   {'critical': [...], 'warning': [...], 'info': [...]},
        'sms':     {'critical': ['+14155550100']},
        'webhook': {'critical': ['https://hooks.slack.com/...'],
                    'warning': [{'url': 'https://chat.example.com/hook', 'format': 'json'}]},
    }

Any mistake stops startup with the file and the entry named, because a typo in a
phone number is otherwise only discovered during an outage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from common.alert_config import (
    CONFIG_VARIABLE,
    REPORTS_ENTRY,
    AlertConfigError,
    read_recipients,
)
from common.alerting import CHANNEL_MATRIX, CHANNELS, SEVERITIES
from common.dburl import scheme, sqlalchemy_url
from common.settings import url_problem
from common.smtp import is_email

WEBHOOK_FORMATS = ("slack", "discord", "json")
# The outbox runs on SQLite (one bridge) or PostgreSQL (several replicas).
OUTBOX_SCHEMES = ("sqlite", "postgresql+psycopg2")

# `'reports': {'daily': [...], 'weekly': [...]}` lives in the same dict (docs/architecture.md §4).

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


class ConfigError(ValueError):
    """An invalid alert configuration; the message names the file and the entry."""


@dataclass(frozen=True)
class Recipient:
    channel: str
    address: str  # email address, E.164 number or webhook URL
    format: str | None = None  # webhooks only: slack | discord | json


@dataclass(frozen=True)
class AlertConfig:
    source: Path
    recipients: dict[str, dict[str, tuple[Recipient, ...]]] = field(default_factory=dict)

    def for_severity(self, severity: str) -> list[Recipient]:
        """Everyone a notification of this severity goes to, by the channel matrix."""
        by_channel = self.recipients
        return [
            r for ch in CHANNEL_MATRIX[severity] for r in by_channel.get(ch, {}).get(severity, ())
        ]

    def critical_pager(self) -> list[Recipient]:
        """Who the dead man's switch pages: every critical recipient, on every channel."""
        return self.for_severity("critical")

    def count(self) -> int:
        return sum(len(v) for sev in self.recipients.values() for v in sev.values())


def webhook_format_for(url: str) -> str:
    """Slack and Discord are recognised from the host; anything else gets plain JSON."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "hooks.slack.com" or host.endswith(".slack.com"):
        return "slack"
    if host in ("discord.com", "discordapp.com") or host.endswith(
        (".discord.com", ".discordapp.com")
    ):
        return "discord"
    return "json"


def _check_url(url: object, where: str) -> str:
    if not isinstance(url, str):
        raise ConfigError(f"{where}: expected a URL string, got {type(url).__name__}")
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        port_ok = False
        parts = None
    if not parts or parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise ConfigError(f"{where}: {url!r} is not a valid http(s) URL")
    if any(c.isspace() for c in url):
        raise ConfigError(f"{where}: {url!r} contains whitespace")
    return url


def _parse_entry(channel: str, entry: object, where: str) -> Recipient:
    if channel == "email":
        if not is_email(entry):
            raise ConfigError(f"{where}: {entry!r} is not a valid email address")
        return Recipient("email", entry)
    if channel == "sms":
        if not isinstance(entry, str) or not _E164.match(entry):
            raise ConfigError(
                f"{where}: {entry!r} is not an E.164 phone number (like '+14155550100')"
            )
        return Recipient("sms", entry)
    if isinstance(entry, dict):
        unknown = set(entry) - {"url", "format"}
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: url, format")
        if "url" not in entry:
            raise ConfigError(f"{where}: a webhook dict needs a 'url'")
        url = _check_url(entry["url"], where)
        fmt = entry.get("format", webhook_format_for(url))
        if fmt not in WEBHOOK_FORMATS:
            raise ConfigError(
                f"{where}: unknown webhook format {fmt!r}; expected one of {', '.join(WEBHOOK_FORMATS)}"
            )
        return Recipient("webhook", url, fmt)
    url = _check_url(entry, where)
    return Recipient("webhook", url, webhook_format_for(url))


def parse_recipients(raw: object, source: Path) -> AlertConfig:
    name = f"{source}: {CONFIG_VARIABLE}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{name} must be a dict of channels, got {type(raw).__name__}")
    parsed: dict[str, dict[str, tuple[Recipient, ...]]] = {}
    for channel, by_severity in raw.items():
        if channel == REPORTS_ENTRY:
            continue  # the reporter's recipients; reports/recipients.py checks them
        if channel not in CHANNELS:
            raise ConfigError(
                f"{name}[{channel!r}]: unknown channel; expected one of {', '.join(CHANNELS)}"
            )
        if not isinstance(by_severity, dict):
            raise ConfigError(f"{name}[{channel!r}] must be a dict of severities")
        parsed[channel] = {}
        for severity, entries in by_severity.items():
            where = f"{name}[{channel!r}][{severity!r}]"
            if severity not in SEVERITIES:
                raise ConfigError(
                    f"{where}: unknown severity; expected one of {', '.join(SEVERITIES)}"
                )
            if channel not in CHANNEL_MATRIX[severity]:
                sends = " + ".join(CHANNEL_MATRIX[severity])
                raise ConfigError(
                    f"{where}: {severity} alerts are not sent by {channel} "
                    f"(channel matrix: {severity} -> {sends})"
                )
            if not isinstance(entries, list | tuple):
                raise ConfigError(f"{where} must be a list")
            recipients = []
            seen: set[str] = set()
            for i, entry in enumerate(entries):
                r = _parse_entry(channel, entry, f"{where}[{i}]")
                if r.address in seen:
                    raise ConfigError(f"{where}[{i}]: {r.address!r} is listed twice")
                seen.add(r.address)
                recipients.append(r)
            parsed[channel][severity] = tuple(recipients)
    return AlertConfig(source=source, recipients=parsed)


def load_config(path: Path) -> AlertConfig:
    try:
        raw = read_recipients(path)
    except AlertConfigError as exc:
        raise ConfigError(str(exc)) from exc.__cause__
    return parse_recipients(raw, Path(path))


def check_settings(settings: object) -> tuple[list[str], list[str]]:
    """Errors and warnings about the env settings that go with the config file."""
    s: Any = settings
    errors: list[str] = []
    warnings: list[str] = []
    if s.enable_email_alerts and not is_email(s.alert_sender_email):
        errors.append(f"ALERT_SENDER_EMAIL: {s.alert_sender_email!r} is not a valid email address")
    if s.enable_sms_alerts:
        for var in ("twilio_account_sid", "twilio_auth_token", "twilio_from_number"):
            if not getattr(s, var):
                errors.append(f"{var.upper()}: required when ENABLE_SMS_ALERTS is on")
        if s.twilio_from_number and not _E164.match(s.twilio_from_number):
            errors.append(f"TWILIO_FROM_NUMBER: {s.twilio_from_number!r} is not E.164")
        if s.twilio_api_base_url:
            try:
                _check_url(s.twilio_api_base_url, "TWILIO_API_BASE_URL")
            except ConfigError as exc:
                errors.append(str(exc))
    url = getattr(s, "bridge_database_url", None)
    if url and scheme(sqlalchemy_url(url)) not in OUTBOX_SCHEMES:
        errors.append(
            f"BRIDGE_DATABASE_URL: scheme {scheme(url) or '(none)'!r} is not supported; use "
            "postgresql://user:password@host:5432/db (several replicas) or sqlite:///path"
        )
    elif url and (problem := url_problem(url, ("postgres", "sqlite"))):
        errors.append(f"BRIDGE_DATABASE_URL: {problem}")
    if s.enable_email_alerts and s.alert_sender_password is not None and s.smtp_security == "none":
        warnings.append(
            "SMTP_SECURITY=none with a password: the login crosses the network unencrypted"
        )
    # As the bridge itself refuses them (settings.resolve_auth_token), so check-config too.
    token = getattr(s, "bridge_auth_token", None)
    if token is not None and len(token.get_secret_value().strip()) < 16:
        errors.append("BRIDGE_AUTH_TOKEN: the bearer token must be at least 16 characters")
    token_file = getattr(s, "bridge_auth_token_file", None)
    if token is None and token_file is not None and not Path(token_file).is_file():
        errors.append(f"BRIDGE_AUTH_TOKEN_FILE: {token_file} does not exist")
    runbook = getattr(s, "bridge_runbook_file", None)
    if runbook is not None and not Path(runbook).is_file():
        # Said at startup, not when an on-call engineer opens a notification's link.
        warnings.append(
            f"BRIDGE_RUNBOOK_FILE: {runbook} does not exist: /runbook answers 503 and every"
            " notification's runbook link opens an error"
        )
    return errors, warnings


def disabled_channel_warnings(config: AlertConfig, settings: object) -> list[str]:
    s: Any = settings
    flags = {
        "email": s.enable_email_alerts,
        "sms": s.enable_sms_alerts,
        "webhook": s.enable_webhook_alerts,
    }
    out = []
    for channel, enabled in flags.items():
        n = sum(len(v) for v in config.recipients.get(channel, {}).values())
        if n and not enabled:
            out.append(
                f"{channel}: {n} recipient(s) configured but ENABLE_{channel.upper()}_ALERTS "
                "is off; the bridge logs what it would send and keeps it in its store"
            )
    return out
