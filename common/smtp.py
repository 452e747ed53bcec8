"""Outgoing email settings and the SMTP connection, shared by the alert bridge and the
reporter: one set of the variables operators know (docs/architecture.md §4) (SMTP_SERVER, SMTP_PORT,
ALERT_SENDER_EMAIL, ALERT_SENDER_PASSWORD, ...) for every mail TraceTrack sends."""

from __future__ import annotations

import ipaddress
import re
import smtplib
import ssl
from pathlib import Path
from typing import Literal, TypeGuard

from pydantic import Field, SecretStr, field_validator

from common.settings import Settings

EMAIL_ADDRESS = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$"
)


def is_email(text: object) -> TypeGuard[str]:
    return isinstance(text, str) and len(text) <= 254 and bool(EMAIL_ADDRESS.match(text))


class SmtpSettings(Settings):
    enable_email_alerts: bool = False
    smtp_server: str = "localhost"
    smtp_port: int = Field(587, ge=1, le=65535)
    alert_sender_email: str = "tracetrack-alerts@example.com"
    alert_sender_password: SecretStr | None = None
    # 587 speaks STARTTLS, 465 implicit TLS; "none" only for a local relay or test server.
    smtp_security: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_username: str | None = None  # None -> ALERT_SENDER_EMAIL
    smtp_ca_file: Path | None = None
    smtp_timeout_seconds: float = Field(10.0, gt=0)

    @field_validator("smtp_server")
    @classmethod
    def _host(cls, value: str) -> str:
        if not value:  # compose passes an unset variable as ''
            return "localhost"
        # "smtp.example.com:587" or "smtp://..." failed every email (a name lookup of the
        # whole text) and made the Alertmanager fallback route's config invalid.
        try:
            ipaddress.ip_address(value)
        except ValueError:
            if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,252})", value):
                raise ValueError(
                    f"SMTP_SERVER: {value!r} is not a host name or address (the port is SMTP_PORT)"
                ) from None
        return value


def connect(s: SmtpSettings) -> smtplib.SMTP:
    """An SMTP session per the settings: TLS as configured, logged in when a password is set."""
    context = ssl.create_default_context(cafile=str(s.smtp_ca_file) if s.smtp_ca_file else None)
    conn: smtplib.SMTP
    if s.smtp_security == "ssl":
        conn = smtplib.SMTP_SSL(
            s.smtp_server, s.smtp_port, timeout=s.smtp_timeout_seconds, context=context
        )
    else:
        conn = smtplib.SMTP(s.smtp_server, s.smtp_port, timeout=s.smtp_timeout_seconds)
        if s.smtp_security == "starttls":
            conn.ehlo()
            conn.starttls(context=context)
            conn.ehlo()
    try:
        if s.alert_sender_password is not None:
            conn.login(
                s.smtp_username or s.alert_sender_email, s.alert_sender_password.get_secret_value()
            )
    except BaseException:
        conn.close()
        raise
    return conn
