"""Storms reach a phone as a bounded number of SMS: Alertmanager groups 40 failing
targets into one notification, and the bridge's per-phone budget caps what a burst of
distinct problems sends (3 SMS, then one digest, then nothing in the window), while
email and chat keep everything."""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alert_bridge.budget import DIGEST, SUPPRESSED, apply_sms_budget
from alert_bridge.config import Recipient
from alert_bridge.store import Store
from common import topology
from tests.support.bridgekit import (
    InProcessBridge,
    am_payload,
    bridge_behind_alertmanager,
    bridge_env,
    recipients_for,
    write_alert_config,
)
from tests.support.stack import start_prometheus
from tooling import stackconfig
from tooling.procs import free_port, wait_until

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


class MetricsTargets:
    """Scrape targets on the given ports, serving a tiny /metrics once started: before
    that nothing listens there (connection refused, `up == 0`)."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.servers: list[ThreadingHTTPServer] = []

    def start(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = b"tracetrack_storm_target 1\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        for port in self.ports:
            server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self.servers.append(server)

    def stop(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()


def test_forty_real_targets_down_page_a_phone_at_most_3_times_with_one_grouped_email(
    tmp_path: Path, smtp_sink: SmtpSink, twilio_sink: TwilioSink, webhook_sink: WebhookSink
) -> None:
    """The whole pipeline: Prometheus scrapes 40 app targets that refuse connections and
    evaluates the shipped rules (their `for:` cut to 1 s), Alertmanager groups them with
    the shipped critical route (by alertname and job, group_wait 10 s: the 40 firings
    land in one group; group_interval cut to 10 s), the bridge applies the shipped SMS
    budget and pacing. Then the 40 come back."""
    ports: list[int] = []
    while len(ports) < 40:
        port = free_port()
        if port not in ports:
            ports.append(port)
    addresses = [f"127.0.0.1:{p}" for p in ports]
    targets = MetricsTargets(ports)
    rules = stackconfig.write_rules(tmp_path / "rules.yml", for_="1s")
    timings = {"group_wait": "10s", "group_interval": "10s", "repeat_interval": "1h"}
    with bridge_behind_alertmanager(
        tmp_path,
        smtp_sink,
        twilio_sink,
        webhook_sink,
        route_timings=timings,
        BRIDGE_SMS_BUDGET=3,
        BRIDGE_SEND_RATES="true",
    ) as (b, am):
        prom = start_prometheus(
            tmp_path / "prom",
            targets={topology.APP_JOB: addresses},
            rule_files=[rules],
            alertmanager=am,
        )
        try:
            wait_until(
                lambda: bool(_mails(smtp_sink, "FIRING: ")),
                90,
                "the first page (an email)",
            )
            b.wait_settled(60)
            # One grouped page naming every target.
            firing = _mails(smtp_sink, "FIRING: ")
            assert len(firing) == 1, [m.message["Subject"] for m in firing]
            assert "40x TraceTrackTargetDown" in firing[0].message["Subject"]
            part = firing[0].message.get_body(("plain",))
            assert part is not None
            text = part.get_content()
            assert [a for a in addresses if a not in text] == []
            # Its SMS: how many, which (as many as fit), how many more.
            sms = [m["Body"] for m in twilio_sink.messages()]
            assert len(sms) == 1 and len(sms[0]) <= 160, sms
            named = [a for a in addresses if a in sms[0]]
            more = re.search(r", \+(\d+) ", sms[0])
            assert "40x TargetDown" in sms[0] and named and more, sms
            assert len(named) + int(more.group(1)) == 40, sms

            targets.start()  # all 40 answer again
            wait_until(
                lambda: bool(_mails(smtp_sink, "RESOLVED: 40x TraceTrackTargetDown")),
                90,
                "the resolved notification",
            )
            b.wait_settled(60)
            texts = [m["Body"] for m in twilio_sink.messages()]
            per_phone = Counter(m["To"] for m in twilio_sink.messages())
            pages = [m.message["Subject"] for m in smtp_sink.messages("oncall@example.com")]
            print(f"40 real targets: SMS per phone {dict(per_phone)}; emails {pages}")
            assert per_phone and max(per_phone.values()) <= 3, (per_phone, texts)
            assert any(t.startswith("OK 40x TargetDown") for t in texts), texts
            # Nothing but the storm's own group paged (one fault, one page): its firing
            # and its resolution, on every channel.
            assert len(pages) == 2 and all("40x TraceTrackTargetDown" in s for s in pages), pages
            slack = [json.dumps(body) for body in webhook_sink.bodies("slack/crit")]
            assert len(slack) == 2 and all("TargetDown" in body for body in slack), slack
        finally:
            prom.proc.stop()
            targets.stop()


def _mails(smtp_sink: SmtpSink, subject: str) -> list[Any]:
    return [m for m in smtp_sink.messages("oncall@example.com") if subject in m.message["Subject"]]
