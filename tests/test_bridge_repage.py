"""Re-page until acknowledged: on an injected clock (the schedule), then end to end (a
reminder arrives by SMS and stops after the acknowledgement)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

from alert_bridge import pages
from alert_bridge.config import parse_recipients
from alert_bridge.messages import build_message, email_subject, sms_text
from alert_bridge.repage import Repager
from alert_bridge.store import Store
from tests.support.bridgekit import (
    InProcessBridge,
    am_payload,
    bridge_env,
    recipients_for,
    write_alert_config,
)
from tooling.procs import wait_until

if TYPE_CHECKING:
    from tests.support.sinks import TwilioSink


MIN = 60.0


def _setup(tmp_path: Path) -> tuple[Repager, Store]:
    store = Store(f"sqlite:///{tmp_path / 'outbox.sqlite3'}")
    store.create_schema()
    config = parse_recipients(
        {"email": {"critical": ["a@example.com"]}, "sms": {"critical": ["+14155550100"]}},
        tmp_path / "alert_config.py",
    )
    return Repager(store, config, 15 * MIN, 30, lambda: None, page_ttl=3600), store


def _notify(store: Store, status: str, now: float, key: str) -> None:
    body = am_payload(status=status, starts_at="2030-01-01T00:00:00Z")
    with store.tx() as conn:
        store.add_notification(
            conn,
            key=key,
            kind="alert",
            severity="critical",
            status=status,
            title="HighErrorRate",
            group_key="g1",
            body=json.dumps(body),
            recipients=[],
            now=now,
        )
        pages.ensure_page(store, conn, key, "g1", now, 3600)


def _reminders(store: Store) -> list[dict]:
    return [r for r in store.recent(1000) if r["kind"] == "reminder"]


def test_reminders_every_interval_until_acknowledged(tmp_path: Path) -> None:
    rp, store = _setup(tmp_path)
    t0 = 1893456000.0  # 2030-01-01T00:00:00Z, the alert's start
    _notify(store, "firing", t0, "n1")
    assert rp.check(t0 + 14 * MIN) == 0
    assert rp.check(t0 + 15 * MIN) == 1
    assert {r["channel"] for r in _reminders(store)} == {"email", "sms"}
    assert rp.check(t0 + 16 * MIN) == 0  # the reminder reset the clock
    assert rp.check(t0 + 30 * MIN) == 1
    # A second bridge (same outbox) checking the same moment adds nothing.
    assert rp.check(t0 + 30 * MIN + 1) == 0

    key = _reminders(store)[0]["notification_key"]
    row = pages.notification(store, key)
    assert row is not None
    m = build_message(key, "reminder", "critical", "firing", row["body"], at=row["received_at"])
    assert m.note == "still firing for 30m00s, not acknowledged"
    assert "[CRITICAL] REMINDER: HighErrorRate" in email_subject(m)
    assert sms_text(m).startswith("CRIT REMINDER still firing for 30m00s, not acked:")

    page = pages.page_by_token(store, pages.token_for(store, "n1") or "")
    assert page is not None
    pages.record_ack(store, page, "bob", t0 + 31 * MIN)
    assert rp.check(t0 + 60 * MIN) == 0  # acknowledged: quiet


def test_a_resolved_group_is_not_reminded_and_a_new_episode_needs_a_new_ack(
    tmp_path: Path,
) -> None:
    rp, store = _setup(tmp_path)
    t0 = 1893456000.0
    _notify(store, "firing", t0, "n1")
    page = pages.page_by_token(store, pages.token_for(store, "n1") or "")
    assert page is not None
    pages.record_ack(store, page, "bob", t0 + MIN)
    _notify(store, "resolved", t0 + 5 * MIN, "n2")
    assert rp.check(t0 + 30 * MIN) == 0
    # It fires again: the old acknowledgement does not cover the new episode.
    _notify(store, "firing", t0 + 40 * MIN, "n3")
    assert rp.check(t0 + 56 * MIN) == 1


def test_a_reminder_arrives_and_stops_after_acknowledge(
    tmp_path: Path, twilio_sink: TwilioSink
) -> None:
    cfg = write_alert_config(tmp_path / "alert_config.py", recipients_for(None, twilio_sink))
    env = bridge_env(
        tmp_path,
        cfg,
        None,
        twilio_sink,
        BRIDGE_REPAGE_MINUTES=0.05,  # 3 s
        BRIDGE_REPAGE_CHECK_INTERVAL_SECONDS=0.2,
    )
    with InProcessBridge(env) as b:
        assert b.post("critical", am_payload()).status_code == 200
        wait_until(
            lambda: any("REMINDER" in m["Body"] for m in twilio_sink.messages()),
            30,
            "a reminder SMS",
        )
        reminder = next(m["Body"] for m in twilio_sink.messages() if "REMINDER" in m["Body"])
        assert "not acked" in reminder
        link = re.search(r"/n/([A-Za-z0-9_-]+)$", reminder)
        assert link, reminder
        assert b.http.post(f"/n/{link.group(1)}/ack", data={"who": "dana"}).status_code == 200
        wait_until(lambda: b.counts().get("pending", 0) == 0, 20, "the outbox to drain")
        after = twilio_sink.count()
        # The re-pager waits 0.2 s between checks: 25 more checks are at least 5 s,
        # past the next reminder's due time (3 s), and it sent nothing.
        checks = b.service.repager.loop.ticks
        wait_until(lambda: b.service.repager.loop.ticks >= checks + 25, 60, "25 re-page checks")
        assert twilio_sink.count() == after
        assert b.counts().get("pending", 0) == 0
        assert (
            b.metric("tracetrack_bridge_time_to_acknowledge_seconds_count", severity="critical")
            == 1
        )
