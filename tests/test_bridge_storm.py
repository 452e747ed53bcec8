"""Storms reach a phone as a bounded number of SMS: Alertmanager groups 40 failing
targets into one notification, and the bridge's per-phone budget caps what a burst of
distinct problems sends (3 SMS, then one digest, then nothing in the window), while
email and chat keep everything."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alert_bridge.budget import DIGEST, SUPPRESSED, apply_sms_budget
from alert_bridge.config import Recipient
from alert_bridge.store import Store
from tests.support.bridgekit import (
    InProcessBridge,
    am_payload,
    bridge_behind_alertmanager,
    bridge_env,
    recipients_for,
    write_alert_config,
)
from tooling.procs import wait_until

if TYPE_CHECKING:
    from tests.support.sinks import SmtpSink, TwilioSink, WebhookSink


PHONE = Recipient("sms", "+14155550100")
HOST = "app-server-with-a-long-production-name.eu-west-3.internal.example"[:58]


def _store(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'outbox.sqlite3'}")
    store.create_schema()
    return store


def _notify(store: Store, key: str, now: float) -> tuple[list[Recipient], list[Recipient]]:
    with store.tx() as conn:
        new, _ = store.add_notification(
            conn,
            key=key,
            kind="alert",
            severity="critical",
            status="firing",
            title=key,
            group_key=key,
            body="{}",
            recipients=[PHONE, Recipient("email", "a@example.com")],
            now=now,
        )
        return apply_sms_budget(conn, key, new, now, budget=3, window=600)


def test_three_sms_then_one_digest_then_nothing_until_the_window_ends(tmp_path: Path) -> None:
    store = _store(tmp_path)
    t0 = 1000.0
    for i in range(3):
        assert _notify(store, f"n{i}", t0 + i) == ([], [])
    assert _notify(store, "n3", t0 + 3) == ([PHONE], [])  # the digest
    assert _notify(store, "n4", t0 + 4) == ([], [PHONE])
    assert _notify(store, "n5", t0 + 599) == ([], [PHONE])
    # The first three have left the window but the digest has not: still quiet.
    assert _notify(store, "n6", t0 + 601) == ([], [PHONE])
    assert _notify(store, "n7", t0 + 604) == ([], [])  # the digest left too
    rows = {(r["notification_key"], r["channel"]): r for r in store.recent(100)}
    assert rows[("n3", "sms")]["format"] == DIGEST
    assert rows[("n4", "sms")]["status"] == SUPPRESSED
    assert all(rows[(f"n{i}", "email")]["status"] == "pending" for i in range(8))


def test_a_burst_of_distinct_criticals_sends_three_sms_and_a_digest_and_every_email(
    tmp_path: Path, smtp_sink: SmtpSink, twilio_sink: TwilioSink
) -> None:
    cfg = write_alert_config(tmp_path / "alert_config.py", recipients_for(smtp_sink, twilio_sink))
    env = bridge_env(tmp_path, cfg, smtp_sink, twilio_sink, BRIDGE_SMS_BUDGET=3)
    with InProcessBridge(env) as b:
        for i in range(8):
            assert b.post("critical", am_payload(f"Alert{i}")).status_code == 200
        b.wait_settled()
        bodies = [m["Body"] for m in twilio_sink.messages()]
        assert len(bodies) == 4, bodies
        digest = [t for t in bodies if t.startswith("TraceTrack: SMS limit reached")]
        assert len(digest) == 1 and "/n/" in digest[0] and len(digest[0]) <= 160
        assert len(smtp_sink.messages("oncall@example.com")) == 8  # email keeps everything
        assert (
            b.metric(
                "tracetrack_notifications_total",
                channel="sms",
                severity="critical",
                outcome="suppressed",
            )
            == 4
        )


def _target_down(i: int, ends: datetime | None = None) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "labels": {
            "alertname": "TraceTrackTargetDown",
            "severity": "critical",
            "job": "tracetrack-app",
            "instance": f"{HOST}-{i:02d}:8000",
        },
        "annotations": {
            "summary": f"The TraceTrack app {HOST}-{i:02d}:8000 is down",
            "value": "up 0",
            "threshold": "up == 0 for 30s",
        },
    }
    if ends is not None:
        alert["endsAt"] = ends.isoformat()
    return alert


def test_forty_failing_targets_are_one_grouped_page_and_at_most_3_sms_per_phone(
    tmp_path: Path, smtp_sink: SmtpSink, twilio_sink: TwilioSink, webhook_sink: WebhookSink
) -> None:
    # The shipped routes (group by alertname and job) with fast waits, the shipped
    # budget and pacing.
    with bridge_behind_alertmanager(
        tmp_path,
        smtp_sink,
        twilio_sink,
        webhook_sink,
        BRIDGE_SMS_BUDGET=3,
        BRIDGE_SEND_RATES="true",
    ) as (b, am):
        am.post_alerts([_target_down(i) for i in range(40)])
        wait_until(lambda: twilio_sink.count() >= 1, 30, "the storm's first SMS")
        b.wait_settled()
        firing_mails = smtp_sink.messages("oncall@example.com")
        assert len(firing_mails) == 1, [m.message["Subject"] for m in firing_mails]
        subject = firing_mails[0].message["Subject"]
        assert "40x TraceTrackTargetDown" in subject
        sms = twilio_sink.messages()[0]["Body"]
        assert "40x TargetDown" in sms and ", +39" in sms and len(sms) <= 160

        # Everything recovers: one resolved notification.
        ended = datetime.now(UTC) - timedelta(seconds=1)
        am.post_alerts([_target_down(i, ended) for i in range(40)])
        wait_until(
            lambda: any("RESOLVED" in m["Body"] for m in twilio_sink.messages()),
            30,
            "the resolved SMS",
        )
        b.wait_settled()
        per_phone: dict[str, int] = {}
        for m in twilio_sink.messages():
            per_phone[m["To"]] = per_phone.get(m["To"], 0) + 1
        assert per_phone and max(per_phone.values()) <= 3, per_phone
        slack = webhook_sink.bodies("slack/crit")
        notifications = len(slack)
        print(
            f"storm of 40 targets: SMS per phone {per_phone},"
            f" emails per address {len(smtp_sink.messages('oncall@example.com'))},"
            f" Slack messages {notifications}"
        )
        assert notifications == 2  # one firing, one resolved
        assert json.dumps(slack[0]).count("TargetDown") >= 1
