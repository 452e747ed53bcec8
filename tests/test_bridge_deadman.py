"""The dead man's switch names the broken part and pages within 2 minutes.

Unit level: the watchdog's decisions on an injected clock and probe (no sleeping).
Pipeline level: real Prometheus and Alertmanager with the shipped rules, routes and
timings, the real bridge and sinks; Prometheus is killed and the page must arrive
within the promised 2 minutes, naming Prometheus, on SMS, email and the webhooks.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from alert_bridge.config import parse_recipients
from alert_bridge.messages import build_message, sms_text
from alert_bridge.probe import PipelineProbe
from alert_bridge.store import Store
from alert_bridge.watchdog import Watchdog
from tests.support.bridgekit import (
    TOKEN,
    InProcessBridge,
    bridge_env,
    recipients_for,
    write_alert_config,
)
from tests.support.stack import start_alertmanager, start_prometheus
from tooling import stackconfig
from tooling.procs import free_port, wait_until

if TYPE_CHECKING:
    from tests.support.sinks import SmtpSink, TwilioSink, WebhookSink


class FakeProbe(PipelineProbe):
    """The real probe's classification, fed by a transport double."""

    def __init__(self) -> None:
        self.down: set[str] = set()
        self.calls = 0

        def get(url: str) -> httpx.Response:
            self.calls += 1
            if any(url.startswith(f"http://{d}") for d in self.down):
                raise httpx.ConnectError("refused")
            return httpx.Response(200)

        super().__init__({"Prometheus": "http://prom:9090", "Alertmanager": "http://am:9093"}, get)


def _watchdog(tmp_path: Path, probe: FakeProbe) -> tuple[Watchdog, Store]:
    store = Store(f"sqlite:///{tmp_path / 'outbox.sqlite3'}")
    store.create_schema()
    config = parse_recipients(
        {
            "email": {"critical": ["oncall@example.com"]},
            "sms": {"critical": ["+14155550100"]},
            "webhook": {"critical": ["https://hooks.slack.com/services/T/B/X"]},
        },
        tmp_path / "alert_config.py",
    )
    dog = Watchdog(
        store,
        config,
        timeout=60,
        interval=5,
        on_enqueue=lambda: None,
        probe=probe,
        probe_after=30,
        runbook_url="https://oncall.example.com/runbook#watchdog",
    )
    dog.started_at = 0.0
    with store.tx() as conn:
        store.watchdog_row(conn, 0.0)
    return dog, store


def _pages(store: Store) -> list[dict]:
    return [r for r in store.recent(100) if r["kind"] == "watchdog"]


def test_a_dead_prometheus_is_named_once_the_heartbeat_is_30s_late(tmp_path: Path) -> None:
    probe = FakeProbe()
    dog, store = _watchdog(tmp_path, probe)
    t0 = 1000.0
    dog.heartbeat(t0)
    assert not dog.check(t0 + 29) and probe.calls == 0  # on time: nobody is asked
    probe.down = {"prom"}
    assert dog.check(t0 + 31)
    pages = _pages(store)
    assert {p["channel"] for p in pages} == {"email", "sms", "webhook"}  # webhooks too
    key = pages[0]["notification_key"]
    body = store.notification_body(key)
    assert body is not None
    m = build_message(key, "watchdog", "critical", "missing", json.dumps(body))
    assert m.title.startswith("Prometheus down")
    assert "http://prom:9090" in m.note and "connection refused" in m.note
    sms = sms_text(m)
    assert "Prometheus down" in sms and "https://oncall.example.com/runbook#watchdog" in sms
    assert not dog.check(t0 + 200)  # paged once
    assert len(_pages(store)) == 3

    # The recovery states how long the pipeline was blind.
    dog.heartbeat(t0 + 31 + 430)
    recovered = [p for p in _pages(store) if p["notification_status"] == "recovered"]
    assert len(recovered) == 3
    rbody = store.notification_body(recovered[0]["notification_key"])
    r = build_message("k", "watchdog", "critical", "recovered", json.dumps(rbody))
    assert "after 7m10s" in r.note


def test_with_both_healthy_the_page_waits_for_the_full_timeout(tmp_path: Path) -> None:
    probe = FakeProbe()
    dog, store = _watchdog(tmp_path, probe)
    t0 = 1000.0
    dog.heartbeat(t0)
    assert not dog.check(t0 + 35) and probe.calls == 2  # asked, both answered
    assert not _pages(store)
    assert dog.check(t0 + 61)
    body = store.notification_body(_pages(store)[0]["notification_key"])
    m = build_message("k", "watchdog", "critical", "missing", json.dumps(body))
    assert m.title.startswith("No alert heartbeat")
    assert "Prometheus, Alertmanager answer their health checks" in m.note


def test_a_dead_alertmanager_is_named(tmp_path: Path) -> None:
    probe = FakeProbe()
    probe.down = {"am"}
    dog, store = _watchdog(tmp_path, probe)
    dog.heartbeat(1000.0)
    assert dog.check(1031.0)
    body = store.notification_body(_pages(store)[0]["notification_key"])
    m = build_message("k", "watchdog", "critical", "missing", json.dumps(body))
    assert m.title.startswith("Alertmanager down")


@pytest.mark.timeout(600)
def test_the_page_names_a_component_without_its_credentials() -> None:
    """The dead man's switch page goes to every channel: a URL with basic-auth
    credentials (a hosted Alertmanager) is named by host only."""

    def refused(url: str) -> httpx.Response:
        raise httpx.ConnectError("refused")

    (finding,) = PipelineProbe(
        {"Alertmanager": "https://oncall:s3cret@am.example.com"}, refused
    ).check()
    assert finding.url == "https://am.example.com" and not finding.healthy


def test_prometheus_killed_pages_within_two_minutes_naming_it(
    tmp_path: Path, smtp_sink: SmtpSink, twilio_sink: TwilioSink, webhook_sink: WebhookSink
) -> None:
    """The shipped timings end to end: evaluation 10 s (so a Watchdog Prometheus stops
    sending expires in Alertmanager after 4 x 10 s, as with the shipped 10 s resend
    delay), the Watchdog route's 10 s heartbeat, the bridge's default probe and timeout."""
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    cfg = write_alert_config(
        tmp_path / "alert_config.py", recipients_for(smtp_sink, twilio_sink, webhook_sink)
    )
    bridge_port = free_port()
    am = start_alertmanager(
        tmp_path / "am",
        bridge_url=f"http://127.0.0.1:{bridge_port}",
        credentials_file=token,
        route_timings=None,  # the shipped ones
    )
    rules = stackconfig.write_rules(tmp_path / "rules.yml")
    prom = start_prometheus(
        tmp_path / "prom",
        targets={},
        rule_files=[rules],
        alertmanager=am,
        scrape_interval="10s",
        evaluation_interval="10s",
    )
    env = bridge_env(
        tmp_path,
        cfg,
        smtp_sink,
        twilio_sink,
        webhook_sink,
        PROMETHEUS_URL=prom.url,
        ALERTMANAGER_URL=am.url,
        BRIDGE_WATCHDOG_TIMEOUT_SECONDS=60,
        BRIDGE_WATCHDOG_PROBE_AFTER_SECONDS=30,
        BRIDGE_WATCHDOG_CHECK_INTERVAL_SECONDS=5,
    )
    try:
        with InProcessBridge(env, port=bridge_port) as b:
            wait_until(
                lambda: b.notifications()["watchdog"]["state"] == "ok",
                90,
                "the first Watchdog heartbeat",
                interval=1,
            )
            prom.proc.kill9()
            killed = time.monotonic()
            wait_until(
                lambda: twilio_sink.count() >= 1 and bool(smtp_sink.messages("oncall@example.com")),
                120,
                "the dead man's switch page (promised within 2 minutes of Prometheus' death)",
                interval=0.5,
            )
            took = time.monotonic() - killed
            sms = twilio_sink.messages()[0]["Body"]
            assert "Prometheus down" in sms, sms
            subject = smtp_sink.messages("oncall@example.com")[0].message["Subject"]
            assert "Prometheus down" in subject
            wait_until(lambda: webhook_sink.count() >= 2, 30, "the page on the webhooks")
            print(f"Prometheus killed -> page in {took:.1f} s")
    finally:
        prom.proc.stop()
        am.proc.stop()
