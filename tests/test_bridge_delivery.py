"""The bridge delivering through real SMTP (aiosmtpd), the real twilio SDK against a
local Twilio-speaking server, and local Slack/Discord/JSON webhook sinks."""

from __future__ import annotations

from collections import Counter
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

if TYPE_CHECKING:
    from tests.support.sinks import SmtpSink, TwilioSink, WebhookSink


@pytest.fixture()
def bridge(
    tmp_path: Path, smtp_sink: SmtpSink, twilio_sink: TwilioSink, webhook_sink: WebhookSink
) -> Iterator[InProcessBridge]:
    cfg = write_alert_config(
        tmp_path / "alert_config.py", recipients_for(smtp_sink, twilio_sink, webhook_sink)
    )
    env = bridge_env(tmp_path, cfg, smtp_sink, twilio_sink, webhook_sink)
    with InProcessBridge(env) as b:
        yield b


def test_critical_goes_to_sms_email_and_webhooks_once_each(
    bridge: InProcessBridge, smtp_sink: SmtpSink, twilio_sink: TwilioSink, webhook_sink: WebhookSink
) -> None:
    resp = bridge.post(
        "critical", am_payload("HighErrorRate", "critical", summary="Error rate 7.1% above 5%")
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["new_deliveries"] == 5  # 2 emails, 1 SMS, Slack, Discord
    counts = bridge.wait_settled()
    assert counts == {"sent": 5}

    mails = smtp_sink.messages()
    assert sorted(r for m in mails for r in m.rcpt_tos) == ["oncall@example.com", "ops@example.com"]
    msg = mails[0].message
    assert msg["From"] == "alerts@tracetrack.example.com"
    assert "[CRITICAL] FIRING: HighErrorRate" in msg["Subject"]
    assert "Error rate 7.1% above 5%" in msg["Subject"]
    plain, rich = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain is not None and rich is not None
    text, html = plain.get_content(), rich.get_content()
    assert "https://runbooks.example.com/HighErrorRate" in text
    assert "<h2" in html and "Error rate 7.1% above 5%" in html

    sms = twilio_sink.messages()
    assert len(sms) == 1
    assert sms[0]["To"] == "+14155550100" and sms[0]["From"] == "+15005550006"
    assert sms[0]["Body"].startswith("CRIT HighErrorRate app-0:8000 since ")

    (slack,) = webhook_sink.bodies("slack/crit")
    assert slack["attachments"][0]["color"] == "#d0021b"
    assert slack["attachments"][0]["blocks"][0]["type"] == "header"
    (discord,) = webhook_sink.bodies("discord/crit")
    assert discord["embeds"][0]["color"] == 0xD0021B
    assert discord["embeds"][0]["fields"][0]["name"].startswith("HighErrorRate")

    assert (
        bridge.metric(
            "tracetrack_notifications_total", channel="email", severity="critical", outcome="sent"
        )
        == 2
    )
    assert (
        bridge.metric(
            "tracetrack_notifications_total", channel="sms", severity="critical", outcome="sent"
        )
        == 1
    )
    assert bridge.metric("tracetrack_notification_delivery_seconds_count", channel="webhook") == 2
    assert bridge.metric("tracetrack_notification_queue_depth") == 0


def test_warning_goes_to_email_and_webhook_info_to_email_only(
    bridge: InProcessBridge, smtp_sink: SmtpSink, twilio_sink: TwilioSink, webhook_sink: WebhookSink
) -> None:
    assert bridge.post("warning", am_payload("SlowResponses", "warning")).status_code == 200
    assert bridge.post("info", am_payload("DailyReport", "info")).status_code == 200
    assert bridge.wait_settled() == {"sent": 3}
    assert [m.rcpt_tos for m in smtp_sink.messages("lead@example.com")] == [["lead@example.com"]]
    assert len(smtp_sink.messages("monitoring@example.com")) == 1
    assert smtp_sink.count() == 2
    assert twilio_sink.count() == 0
    (warn,) = webhook_sink.bodies("json/warn")
    assert warn["severity"] == "warning" and warn["title"] == "SlowResponses"
    assert warn["alerts"][0]["summary"] == "SlowResponses on app-0"
    assert webhook_sink.count() == 1


def test_resolved_is_delivered_too(
    bridge: InProcessBridge, smtp_sink: SmtpSink, twilio_sink: TwilioSink, webhook_sink: WebhookSink
) -> None:
    bridge.post("critical", am_payload("HighCPU", "critical"))
    bridge.wait_settled()
    bridge.post("critical", am_payload("HighCPU", "critical", status="resolved"))
    assert bridge.wait_settled() == {"sent": 10}
    subjects = sorted(
        m.message["Subject"].split(":")[0] for m in smtp_sink.messages("ops@example.com")
    )
    assert subjects == ["[CRITICAL] FIRING", "[CRITICAL] RESOLVED"]
    assert twilio_sink.messages()[-1]["Body"].startswith("OK HighCPU app-0:8000 RESOLVED after ")
    assert webhook_sink.bodies("slack/crit")[-1]["attachments"][0]["color"] == "#2eb67d"


def test_same_payload_twice_is_sent_once(
    bridge: InProcessBridge, smtp_sink: SmtpSink, twilio_sink: TwilioSink, webhook_sink: WebhookSink
) -> None:
    payload = am_payload("DiskFull", "critical", n_alerts=2)
    first = bridge.post("critical", payload).json()
    bridge.wait_settled()
    # Alertmanager retrying, and its HA twin delivering the same group.
    second = bridge.post("critical", payload).json()
    third = bridge.post("critical", {**payload, "receiver": "critical-ha-peer"}).json()
    assert first["new_deliveries"] == 5
    assert second["new_deliveries"] == 0 and second["duplicate_deliveries"] == 5
    assert third["new_deliveries"] == 0
    assert bridge.wait_settled() == {"sent": 5}
    assert smtp_sink.count() == 2 and twilio_sink.count() == 1 and webhook_sink.count() == 2
    assert (
        bridge.metric(
            "tracetrack_notifications_total",
            channel="email",
            severity="critical",
            outcome="duplicate",
        )
        == 4
    )
    # A new alert joining the group is a new notification.
    bigger = am_payload("DiskFull", "critical", n_alerts=3)
    assert bridge.post("critical", bigger).json()["new_deliveries"] == 5


def test_smtp_down_for_a_while_then_each_email_arrives_once(
    bridge: InProcessBridge, smtp_sink: SmtpSink
) -> None:
    restarted = smtp_sink.down_for(1.5)
    for i in range(3):
        assert bridge.post("info", am_payload(f"Info{i}", "info")).status_code == 200
    wait_for(
        lambda: min(d["attempts"] for d in bridge.notifications()["deliveries"]) >= 2,
        10,
        "retries while SMTP is down",
    )
    restarted.join()
    assert bridge.wait_settled() == {"sent": 3}
    assert Counter(m.message["Subject"] for m in smtp_sink.messages()) == Counter(
        {f"[INFO] FIRING: Info{i} app-0:8000 - Info{i} on app-0": 1 for i in range(3)}
    )
    rows = bridge.notifications()["deliveries"]
    assert all(r["attempts"] >= 2 and r["status"] == "sent" for r in rows)
    assert (
        bridge.metric(
            "tracetrack_notifications_total", channel="email", severity="info", outcome="retry"
        )
        >= 3
    )


def test_smtp_4xx_is_retried_5xx_is_failed(bridge: InProcessBridge, smtp_sink: SmtpSink) -> None:
    smtp_sink.faults.fail_next(2, 451)
    bridge.post("info", am_payload("Tempfail", "info"))
    assert bridge.wait_settled() == {"sent": 1}
    assert bridge.notifications()["deliveries"][0]["attempts"] == 3

    smtp_sink.rcpt_faults.fail_next(1, 550)
    bridge.post("warning", am_payload("Bounce", "warning"))
    counts = bridge.wait_settled()
    assert counts["failed"] == 1
    (failed,) = bridge.notifications(status="failed")["deliveries"]
    assert failed["attempts"] == 1 and "SMTP 550" in failed["last_error"]
    assert (
        bridge.metric(
            "tracetrack_notifications_total", channel="email", severity="warning", outcome="failed"
        )
        == 1
    )


def test_twilio_429_then_success_sends_the_sms_once(
    bridge: InProcessBridge, twilio_sink: TwilioSink
) -> None:
    twilio_sink.faults.fail_next(1, 429)
    bridge.post("critical", am_payload("DatabaseDown", "critical"))
    bridge.wait_settled()
    assert twilio_sink.attempts == 2
    assert len(twilio_sink.messages()) == 1
    row = next(r for r in bridge.notifications()["deliveries"] if r["channel"] == "sms")
    assert row["status"] == "sent" and row["attempts"] == 2
    assert row["provider_ref"].startswith("SM")


def test_twilio_invalid_number_fails_permanently(
    tmp_path: Path, smtp_sink: SmtpSink, twilio_sink: TwilioSink
) -> None:
    cfg = write_alert_config(
        tmp_path / "alert_config.py", {"sms": {"critical": ["+19995550100", "+14155550199"]}}
    )
    with InProcessBridge(bridge_env(tmp_path, cfg, twilio=twilio_sink)) as b:
        b.post("critical", am_payload("X", "critical"))
        assert b.wait_settled() == {"sent": 1, "failed": 1}
        (failed,) = b.notifications(status="failed")["deliveries"]
        assert failed["recipient"] == "+19995550100"
        assert failed["attempts"] == 1 and "21614" in failed["last_error"]
        assert (
            b.metric(
                "tracetrack_notifications_total",
                channel="sms",
                severity="critical",
                outcome="failed",
            )
            == 1
        )


def test_webhook_500_is_retried_and_404_is_not(
    bridge: InProcessBridge, webhook_sink: WebhookSink
) -> None:
    webhook_sink.faults.fail_next(2, 500)
    bridge.post("warning", am_payload("QueueBacklog", "warning"))
    bridge.wait_settled()
    assert len(webhook_sink.bodies("json/warn")) == 1
    hook = next(r for r in bridge.notifications()["deliveries"] if r["channel"] == "webhook")
    assert hook["status"] == "sent" and hook["attempts"] == 3

    webhook_sink.faults.fail_next(1, 404)
    bridge.post("warning", am_payload("Other", "warning"))
    counts = bridge.wait_settled()
    assert counts["failed"] == 1
    (failed,) = bridge.notifications(status="failed")["deliveries"]
    assert failed["attempts"] == 1 and "HTTP 404" in failed["last_error"]
    # The webhook's secret path is not shown to operators.
    assert "json/warn" not in failed["recipient"] and "json/warn" not in failed["last_error"]


def test_webhook_429_honours_retry_after(
    bridge: InProcessBridge, webhook_sink: WebhookSink
) -> None:
    webhook_sink.faults.fail_next(1, 429, retry_after=1)
    bridge.post("warning", am_payload("RateLimited", "warning"))
    wait_for(lambda: len(webhook_sink.bodies("json/warn")) == 1, 60, "the retried webhook")
    (_, first), (_, second) = webhook_sink.attempt_times
    # Retry-After: 1 beats the test configuration's 0.4 s maximum backoff.
    assert second - first >= 0.95
    row = next(r for r in bridge.notifications()["deliveries"] if r["channel"] == "webhook")
    assert row["attempts"] == 2 and row["status"] == "sent"
