"""Issue 17: the bridge's outbox on a full filesystem (a real tmpfs filled to ENOSPC).

Webhooks get 503 (Alertmanager retries, nothing is lost), `/readyz` answers 503 and
`tracetrack_bridge_outbox_writable` reads 0 while the outbox cannot be written, and
both come back when space returns; the retried notification is delivered once. The
dead man's switch, whose page normally goes through the outbox, still pages.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.bridgekit import (
    InProcessBridge,
    am_payload,
    bridge_env,
    recipients_for,
    wait_for,
    write_alert_config,
)
from tests.support.faults import SmallDisk

if TYPE_CHECKING:
    from tests.support.sinks import SmtpSink, TwilioSink


@pytest.fixture()
def disk(tmp_path: Path) -> Iterator[SmallDisk]:
    with SmallDisk(tmp_path / "outbox", size_bytes=4 * 1024 * 1024) as d:
        yield d


def _env(tmp_path: Path, disk: SmallDisk, smtp: SmtpSink, twilio: TwilioSink, **kw: object):
    cfg = write_alert_config(tmp_path / "alert_config.py", recipients_for(smtp, twilio))
    return bridge_env(
        tmp_path,
        cfg,
        smtp,
        twilio,
        BRIDGE_DATABASE_URL=f"sqlite:///{disk.path / 'bridge.sqlite3'}",
        **kw,
    )


def test_full_outbox_answers_503_is_not_ready_and_recovers_without_loss(
    tmp_path: Path, disk: SmallDisk, smtp_sink: SmtpSink, twilio_sink: TwilioSink
) -> None:
    with InProcessBridge(_env(tmp_path, disk, smtp_sink, twilio_sink)) as b:
        assert b.post("critical", am_payload("Before")).status_code == 200
        assert b.metric("tracetrack_bridge_outbox_writable") == 1
        assert b.metric("tracetrack_bridge_outbox_write_failures_total") == 0

        disk.fill()
        during = am_payload("DuringDiskFull")
        resp = b.post("critical", during)
        assert resp.status_code == 503  # 5xx, never 4xx: Alertmanager retries
        ready = b.http.get("/readyz")
        assert ready.status_code == 503
        assert "outbox not writable since" in ready.json()["reason"]
        assert "full" in ready.json()["reason"]
        assert b.metric("tracetrack_bridge_outbox_writable") == 0
        assert b.metric("tracetrack_bridge_outbox_write_failures_total") >= 1
        assert b.http.get("/healthz").status_code == 200  # alive, not ready

        disk.free()
        wait_for(lambda: b.http.get("/readyz").status_code == 200, 20, "ready again")
        assert b.metric("tracetrack_bridge_outbox_writable") == 1
        # Alertmanager's retry of the refused webhook is stored and delivered once.
        assert b.post("critical", during).status_code == 200
        assert b.post("critical", during).json()["new_deliveries"] == 0
        b.wait_settled()

    subjects = [m.message["Subject"] for m in smtp_sink.messages("oncall@example.com")]
    assert sum("DuringDiskFull" in s for s in subjects) == 1, subjects
    assert sum("Before" in s for s in subjects) == 1, subjects
    assert sum("DuringDiskFull" in m["Body"] for m in twilio_sink.messages()) == 1


def test_dead_mans_switch_pages_directly_while_the_outbox_is_full(
    tmp_path: Path, disk: SmallDisk, smtp_sink: SmtpSink, twilio_sink: TwilioSink
) -> None:
    env = _env(
        tmp_path,
        disk,
        smtp_sink,
        twilio_sink,
        BRIDGE_WATCHDOG_TIMEOUT_SECONDS=1.5,
        BRIDGE_WATCHDOG_CHECK_INTERVAL_SECONDS=0.1,
    )
    heartbeat = am_payload("Watchdog", "none", summary="Alerting pipeline heartbeat")
    with InProcessBridge(env) as b:
        assert b.post("watchdog", heartbeat).status_code == 200
        disk.fill()
        # No heartbeat for 1.5 s: the page goes out although it cannot be stored.
        wait_for(
            lambda: smtp_sink.count() == 2 and twilio_sink.count() == 1,
            20,
            "the direct page to the critical email and SMS recipients",
        )
        page = smtp_sink.messages("oncall@example.com")[0].message
        text = page.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "No Watchdog heartbeat" in text
        assert "outbox, which cannot be written" in text

        disk.free()
        wait_for(lambda: b.http.get("/readyz").status_code == 200, 20, "ready again")
        # Heartbeats resume: one recovery notice, and no second "missing" page.
        wait_for(lambda: b.post("watchdog", heartbeat).status_code == 200, 20, "a stored heartbeat")
        wait_for(
            lambda: smtp_sink.count() == 4 and twilio_sink.count() == 2,
            20,
            "the recovery notice",
        )
        b.wait_settled()
        assert b.notifications()["watchdog"]["state"] == "ok"
    mails = smtp_sink.messages("oncall@example.com")
    assert len(mails) == 2, [m.message["Subject"] for m in mails]
    assert "resumed" in mails[1].message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
