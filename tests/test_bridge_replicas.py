"""Several bridge replicas on one PostgreSQL outbox: each delivery is sent by exactly
one of them, and a replica killed mid-delivery has its work taken over."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from tests.support.bridgekit import (
    BridgeProcess,
    InProcessBridge,
    am_payload,
    bridge_env,
    wait_for,
    write_alert_config,
)

if TYPE_CHECKING:
    from tests.support.sinks import SmtpSink, WebhookSink


def hooks_config(tmp_path: Path, sink: WebhookSink, smtp: SmtpSink | None = None) -> Path:
    recipients: dict = {
        "webhook": {
            "critical": [
                {"url": sink.url_for("slack/a"), "format": "slack"},
                {"url": sink.url_for("json/b"), "format": "json"},
            ]
        }
    }
    if smtp is not None:
        recipients["email"] = {"critical": ["oncall@example.com"]}
    return write_alert_config(tmp_path / "alert_config.py", recipients)


def test_two_replicas_share_the_work_and_send_each_delivery_once(
    tmp_path: Path, database_url: str, webhook_sink: WebhookSink, smtp_sink: SmtpSink
) -> None:
    cfg = hooks_config(tmp_path, webhook_sink, smtp_sink)
    # The libpq form docker-compose.yml and the docs use for DATABASE_URL.
    libpq_url = database_url.replace("postgresql+psycopg2://", "postgresql://", 1)
    base = bridge_env(tmp_path, cfg, smtp_sink, hooks=webhook_sink, BRIDGE_DATABASE_URL=libpq_url)
    with (
        BridgeProcess({**base, "BRIDGE_INSTANCE_ID": "replica-a"}, tmp_path / "a.log") as a,
        InProcessBridge({**base, "BRIDGE_INSTANCE_ID": "replica-b"}) as b,
    ):
        n = 30
        for i in range(n):
            payload = am_payload(f"Alert{i}", "critical")
            # Like an Alertmanager HA pair: both replicas receive every notification.
            assert a.post("critical", payload).status_code == 200
            assert b.post("critical", payload).status_code == 200
        assert a.wait_settled(30) == {"sent": 3 * n}
        per_hook = Counter((r.path, r.body) for r in webhook_sink.received)
        assert len(per_hook) == 2 * n and set(per_hook.values()) == {1}
        mails = Counter(m.message["Subject"] for m in smtp_sink.messages())
        assert len(mails) == n and set(mails.values()) == {1}
        sent_by = {
            name: r.metric(
                "tracetrack_notifications_total",
                channel="webhook",
                severity="critical",
                outcome="sent",
            )
            for name, r in (("a", a), ("b", b))
        }
        assert sent_by["a"] + sent_by["b"] == 2 * n


def test_a_killed_replicas_claims_are_taken_over_after_the_lease(
    tmp_path: Path, database_url: str, webhook_sink: WebhookSink
) -> None:
    cfg = hooks_config(tmp_path, webhook_sink)
    base = bridge_env(
        tmp_path, cfg, hooks=webhook_sink, BRIDGE_DATABASE_URL=database_url, BRIDGE_LEASE_SECONDS=2
    )
    webhook_sink.faults.hold()  # replica A's calls hang
    a = BridgeProcess({**base, "BRIDGE_INSTANCE_ID": "replica-a"}, tmp_path / "a.log").start()
    for i in range(5):
        assert a.post("critical", am_payload(f"Alert{i}", "critical")).status_code == 200
    wait_for(lambda: webhook_sink.faults.held >= 4, 60, "replica A's deliveries in flight")
    a.kill9()
    webhook_sink.faults.release(discard=True)

    with InProcessBridge({**base, "BRIDGE_INSTANCE_ID": "replica-b"}) as b:
        assert b.wait_settled(20) == {"sent": 10}
        rows = b.notifications()["deliveries"]
        assert max(r["attempts"] for r in rows) == 2  # A's attempt, then B's
    per_hook = Counter((r.path, r.body) for r in webhook_sink.received)
    assert len(per_hook) == 10 and set(per_hook.values()) == {1}
