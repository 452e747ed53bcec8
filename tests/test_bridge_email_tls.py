"""Email over STARTTLS and implicit TLS with login, against a real aiosmtpd server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.bridgekit import (
    InProcessBridge,
    am_payload,
    bridge_env,
    write_alert_config,
)

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

LOGIN = ("alerts@tracetrack.example.com", "app-password-123")


def run_one(tmp_path: Path, sink: Any, **env: Any) -> tuple[dict[str, int], list[Any]]:
    cfg = write_alert_config(
        tmp_path / "alert_config.py", {"email": {"info": ["monitoring@example.com"]}}
    )
    full = bridge_env(tmp_path, cfg, sink, ALERT_SENDER_PASSWORD=LOGIN[1], **env)
    with InProcessBridge(full) as b:
        assert b.post("info", am_payload("Backup", "info")).status_code == 200
        counts = b.wait_settled()
        return counts, b.notifications()["deliveries"]


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_and_login(tmp_path: Path, make_smtp_sink: Any, security: str) -> None:
    sink = make_smtp_sink(security=security, login=LOGIN)
    counts, _ = run_one(tmp_path, sink, SMTP_SECURITY=security, SMTP_CA_FILE=sink.cert)
    assert counts == {"sent": 1}
    (mail,) = sink.messages()
    assert mail.rcpt_tos == ["monitoring@example.com"]
    assert mail.message.get_body(("html",)) is not None


def test_wrong_password_is_a_permanent_failure(tmp_path: Path, make_smtp_sink: Any) -> None:
    sink = make_smtp_sink(security="starttls", login=(LOGIN[0], "another-password"))
    counts, rows = run_one(tmp_path, sink, SMTP_SECURITY="starttls", SMTP_CA_FILE=sink.cert)
    assert counts == {"failed": 1}
    assert rows[0]["attempts"] == 1 and "SMTP 535" in rows[0]["last_error"]
    assert LOGIN[1] not in rows[0]["last_error"]


def test_untrusted_certificate_is_refused(tmp_path: Path, make_smtp_sink: Any) -> None:
    sink = make_smtp_sink(security="starttls", login=LOGIN)
    counts, rows = run_one(tmp_path, sink, SMTP_SECURITY="starttls")  # no SMTP_CA_FILE
    assert counts == {"failed": 1}
    assert "not trusted" in rows[0]["last_error"]
    assert sink.count() == 0
