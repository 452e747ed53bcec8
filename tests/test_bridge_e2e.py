"""End to end: the real app -> Prometheus (shipped rules, fast `for:`) -> Alertmanager
(shipped routes, fast timings) -> the bridge -> aiosmtpd, the Twilio-speaking server
and the webhook sinks. A critical arrives on SMS + email + webhook, a warning on
email + webhook, an info on email only, and each one resolves."""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from prometheus_client import CollectorRegistry, start_http_server

from common import topology
from tests.support.appkit import start_app_process
from tests.support.bridgekit import (
    TOKEN,
    InProcessBridge,
    bridge_env,
    recipients_for,
    wait_for,
    write_alert_config,
)
from tooling import stackconfig
from tooling.procs import free_port

if TYPE_CHECKING:
    from tests.support.sinks import SmtpSink, TwilioSink, WebhookSink


def subjects(smtp: SmtpSink, to: str) -> list[str]:
    return [m.message["Subject"] for m in smtp.messages(to)]


class Traffic:
    """Requests to the app from a background thread, until stopped."""

    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=10)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, path: str, per_second: float) -> Traffic:
        def run() -> None:
            while not self._stop.is_set():
                self.client.get(path)
                self._stop.wait(1 / per_second)

        self._stop.clear()
        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(10)


def test_alerts_flow_from_the_app_to_every_channel_and_resolve(
    tmp_path: Path,
    database_url: str,
    smtp_sink: SmtpSink,
    twilio_sink: TwilioSink,
    webhook_sink: WebhookSink,
    prometheus_factory: Any,
    alertmanager_factory: Any,
) -> None:
    app, app_port = start_app_process(
        tmp_path / "app", database_url, env={"TRACETRACK_DEBUG_ENDPOINTS": "1"}
    )
    token_file = tmp_path / "bridge_token"
    token_file.write_text(TOKEN + "\n")
    cfg = write_alert_config(
        tmp_path / "alert_config.py", recipients_for(smtp_sink, twilio_sink, webhook_sink)
    )
    bridge = InProcessBridge(
        bridge_env(tmp_path, cfg, smtp_sink, twilio_sink, webhook_sink)
    ).start()
    traffic = Traffic(f"http://127.0.0.1:{app_port}")
    exporter_port = free_port()  # nothing listens yet: its target is down (a warning)
    try:
        am = alertmanager_factory(bridge_url=bridge.url, credentials_file=token_file)
        rules = stackconfig.write_rules(tmp_path / "rules.yml", for_="1s")
        prometheus_factory(
            targets={
                topology.APP_JOB: [f"127.0.0.1:{app_port}"],
                topology.EXPORTER_JOB: [f"127.0.0.1:{exporter_port}"],
            },
            rule_files=[rules],
            alertmanager=am,
        )

        # --- critical: the app answers 5xx --------------------------------------------
        traffic.start("/api/debug/error", per_second=10)
        wait_for(
            lambda: any(
                "[CRITICAL] FIRING: TraceTrackErrorRateHigh" in s
                for s in subjects(smtp_sink, "oncall@example.com")
            ),
            90,
            "the critical error-rate email",
        )
        traffic.stop()
        wait_for(
            lambda: any("ErrorRateHigh" in m["Body"] for m in twilio_sink.messages()),
            30,
            "the critical SMS",
        )
        wait_for(
            lambda: (
                len(webhook_sink.bodies("slack/crit")) >= 1
                and len(webhook_sink.bodies("discord/crit")) >= 1
            ),
            30,
            "the critical webhooks",
        )
        sms = next(m for m in twilio_sink.messages() if "ErrorRateHigh" in m["Body"])
        assert sms["To"] == "+14155550100"
        assert re.match(
            r"CRIT \d+(\.\d+)?% \(> 5 %\) ErrorRateHigh 127\.0\.0\.1:\d+ since ", sms["Body"]
        ), sms["Body"]
        # The error-budget burn pages too: pick the error-rate one.
        slack = next(
            b for b in webhook_sink.bodies("slack/crit") if "TraceTrackErrorRateHigh" in b["text"]
        )
        assert slack["attachments"][0]["color"] == "#d0021b"

        # --- warning: a scrape target is down ---------------------------------------
        wait_for(
            lambda: any(
                "[WARNING] FIRING: TraceTrackTargetDown" in s
                for s in subjects(smtp_sink, "lead@example.com")
            ),
            60,
            "the warning email",
        )
        wait_for(
            lambda: any(
                b["title"] == "TraceTrackTargetDown" and b["status"] == "firing"
                for b in webhook_sink.bodies("json/warn")
            ),
            30,
            "the warning webhook",
        )

        # --- info: straight into Alertmanager (no threshold rule is info) -----------
        now = datetime.now(UTC)
        info = {
            "labels": {
                "alertname": "NightlyReportReady",
                "severity": "info",
                "instance": "reports",
            },
            "annotations": {"summary": "The nightly report is ready"},
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(hours=1)).isoformat(),
        }
        am.post_alerts([info])
        wait_for(
            lambda: any(
                "[INFO] FIRING: NightlyReportReady" in s
                for s in subjects(smtp_sink, "monitoring@example.com")
            ),
            60,
            "the info email",
        )

        # --- every one resolves -----------------------------------------------------
        # Dilute the 5xx ratio with ordinary (404) requests: it falls under 5 % and 2 %.
        with httpx.Client(base_url=f"http://127.0.0.1:{app_port}", timeout=10) as client:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not any(
                "[CRITICAL] RESOLVED: TraceTrackErrorRateHigh" in s
                for s in subjects(smtp_sink, "ops@example.com")
            ):
                for _ in range(200):
                    client.get("/no-such-page")
        exporter = start_http_server(exporter_port, addr="127.0.0.1", registry=CollectorRegistry())
        am.post_alerts([{**info, "endsAt": datetime.now(UTC).isoformat()}])

        wait_for(
            lambda: any(
                "[CRITICAL] RESOLVED: TraceTrackErrorRateHigh" in s
                for s in subjects(smtp_sink, "ops@example.com")
            ),
            60,
            "the critical resolution email",
        )
        wait_for(
            lambda: any(m["Body"].startswith("OK ErrorRateHigh ") for m in twilio_sink.messages()),
            30,
            "the resolution SMS",
        )
        wait_for(
            lambda: webhook_sink.bodies("slack/crit")[-1]["attachments"][0]["color"] == "#2eb67d",
            30,
            "the resolved Slack message",
        )
        wait_for(
            lambda: any(
                b["title"] == "TraceTrackTargetDown" and b["status"] == "resolved"
                for b in webhook_sink.bodies("json/warn")
            ),
            60,
            "the warning's resolution",
        )
        wait_for(
            lambda: any(
                "[INFO] RESOLVED: NightlyReportReady" in s
                for s in subjects(smtp_sink, "monitoring@example.com")
            ),
            60,
            "the info resolution",
        )
        exporter[0].shutdown()

        # --- the channel matrix held throughout ------------------------------------
        bridge.wait_settled()
        # SMS: critical alerts only (the error rate, and the error budget it burns).
        assert all(m["Body"].startswith(("CRIT ", "OK ")) for m in twilio_sink.messages())
        warn_hooks = webhook_sink.bodies("json/warn")
        assert {b["severity"] for b in warn_hooks} == {"warning"}
        assert not any("NightlyReportReady" in str(b) for b in webhook_sink.bodies())  # info
        assert not any("TargetDown" in m["Body"] for m in twilio_sink.messages())
        # Each (notification, recipient) once, though Alertmanager re-sent groups.
        rows = bridge.notifications(limit=1000)["deliveries"]
        assert {r["status"] for r in rows} == {"sent"}
        sent = [
            (m.message["X-TraceTrack-Notification"], tuple(m.rcpt_tos))
            for m in smtp_sink.messages()
        ]
        assert len(sent) == len(set(sent))
        # The Watchdog heartbeat reached its own receiver.
        assert bridge.notifications()["watchdog"]["state"] == "ok"
    finally:
        traffic.stop()
        bridge.stop()
        app.stop()
