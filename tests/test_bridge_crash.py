"""`kill -9` of a real `tracetrack bridge` process with a backlog: after restart every
notification arrives exactly once, and nothing already sent is sent again."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.bridgekit import (
    TOKEN,
    BridgeProcess,
    am_payload,
    bridge_env,
    recipients_for,
    wait_for,
    write_alert_config,
)

if TYPE_CHECKING:
    from tests.support.sinks import TwilioSink, WebhookSink

# The SMTP sink takes a login over plain SMTP on loopback, on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

SMTP_LOGIN = ("alerts@tracetrack.example.com", "smtp-password-s3cr3t-value")
HOOK_SECRET = "T0SECRET/B0SECRET/xyzSECRETpath"


def test_kill9_while_every_channel_is_failing_then_all_arrive_once(
    tmp_path: Path, make_smtp_sink: Any, twilio_sink: TwilioSink, webhook_sink: WebhookSink
) -> None:
    smtp = make_smtp_sink(login=SMTP_LOGIN)
    recipients = recipients_for(smtp, twilio_sink, webhook_sink)
    recipients["webhook"]["critical"].append(
        {"url": webhook_sink.url_for(f"slack/{HOOK_SECRET}"), "format": "slack"}
    )
    cfg = write_alert_config(tmp_path / "alert_config.py", recipients)
    env = bridge_env(
        tmp_path, cfg, smtp, twilio_sink, webhook_sink, ALERT_SENDER_PASSWORD=SMTP_LOGIN[1]
    )
    # Every channel down: SMTP not listening, Twilio and the webhooks failing.
    smtp.stop()
    twilio_sink.faults.fail_always(500)
    webhook_sink.faults.fail_always(503)

    bridge = BridgeProcess(env, tmp_path / "bridge-1.log").start()
    for i in range(8):
        assert bridge.post("critical", am_payload(f"Crit{i}", "critical")).status_code == 200
    for i in range(4):
        assert bridge.post("warning", am_payload(f"Warn{i}", "warning")).status_code == 200
        assert bridge.post("info", am_payload(f"Info{i}", "info")).status_code == 200
    expected = 8 * 6 + 4 * 2 + 4 * 1  # critical: 2 mail, 1 SMS, 3 hooks
    wait_for(
        lambda: all(d["attempts"] >= 2 for d in bridge.notifications(limit=1000)["deliveries"]),
        20,
        "every delivery to have failed at least twice",
    )
    assert bridge.counts().get("sent", 0) == 0
    bridge.kill9()

    smtp.start()
    twilio_sink.faults.recover()
    webhook_sink.faults.recover()
    bridge = BridgeProcess(env, tmp_path / "bridge-2.log", port=bridge.port).start()
    assert bridge.wait_settled(30) == {"sent": expected}
    bridge.stop()

    mails = Counter((m.message["Subject"], r) for m in smtp.messages() for r in m.rcpt_tos)
    assert len(mails) == 8 * 2 + 4 + 4 and set(mails.values()) == {1}
    sms = Counter(m["Body"] for m in twilio_sink.messages())
    assert len(sms) == 8 and set(sms.values()) == {1}
    hooks = Counter((r.path, r.body) for r in webhook_sink.received)
    assert len(hooks) == 8 * 3 + 4 and set(hooks.values()) == {1}

    logs = (tmp_path / "bridge-1.log").read_text() + (tmp_path / "bridge-2.log").read_text()
    assert "failed (attempt" in logs  # the failures were logged...
    for secret in (TOKEN, SMTP_LOGIN[1], twilio_sink.auth_token, HOOK_SECRET, "SECRET"):
        assert secret not in logs  # ...without a single secret


def test_kill9_mid_delivery_resends_only_what_was_in_flight(
    tmp_path: Path, webhook_sink: WebhookSink
) -> None:
    hooks = [
        {"url": webhook_sink.url_for("slack/a"), "format": "slack"},
        {"url": webhook_sink.url_for("discord/b"), "format": "discord"},
    ]
    cfg = write_alert_config(tmp_path / "alert_config.py", {"webhook": {"critical": hooks}})
    env = bridge_env(tmp_path, cfg, hooks=webhook_sink, BRIDGE_WORKER_THREADS=4)
    bridge = BridgeProcess(env, tmp_path / "bridge-1.log").start()
    n = 40
    for i in range(n):
        assert bridge.post("critical", am_payload(f"Alert{i}", "critical")).status_code == 200

    wait_for(lambda: webhook_sink.count() >= 10, 20, "some deliveries")
    # Freeze the sink: requests now hang unanswered, like a provider mid-call.
    webhook_sink.faults.hold()
    wait_for(lambda: webhook_sink.faults.held >= 1, 60, "a delivery in flight")
    # Every delivery the sink accepted is recorded as sent; the held ones are in flight.
    wait_for(
        lambda: bridge.counts().get("sent", 0) == webhook_sink.count(),
        10,
        "the store to agree with the sink",
    )
    sent_before = webhook_sink.count()
    assert sent_before < 2 * n
    bridge.kill9()
    webhook_sink.faults.release(discard=True)  # the dead bridge never got an answer

    bridge = BridgeProcess(env, tmp_path / "bridge-2.log", port=bridge.port).start()
    assert bridge.wait_settled(30) == {"sent": 2 * n}
    bridge.stop()
    per_hook = Counter(
        (r.path, r.json().get("content") or r.json().get("text")) for r in webhook_sink.received
    )
    assert len(per_hook) == 2 * n and set(per_hook.values()) == {1}
    assert "were in flight" in (tmp_path / "bridge-2.log").read_text()
