"""Dead man's switch: no Watchdog heartbeat for the timeout -> the critical email and SMS
recipients are paged once; heartbeats resuming -> one recovery notice; a restart
neither re-pages nor forgets."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tests.support.bridgekit import (
    InProcessBridge,
    am_payload,
    bridge_env,
    recipients_for,
    wait_for,
    write_alert_config,
)
from tests.support.clock import FakeClock
from tooling.procs import free_port

if TYPE_CHECKING:
    from tests.support.sinks import SmtpSink, TwilioSink, WebhookSink


def checks_pass(b: InProcessBridge, checks: int = 3) -> None:
    """Let the watchdog's loop run a few checks at the clock's current time."""
    before = b.service.watchdog.loop.ticks
    wait_for(lambda: b.service.watchdog.loop.ticks >= before + checks, 60, "watchdog checks")


def watchdog_payload(status: str = "firing") -> dict:
    return am_payload("Watchdog", "none", status=status, summary="Alerting pipeline heartbeat")


def test_missing_heartbeat_pages_once_and_recovery_is_announced_once(
    tmp_path: Path, smtp_sink: SmtpSink, twilio_sink: TwilioSink, webhook_sink: WebhookSink
) -> None:
    cfg = write_alert_config(
        tmp_path / "alert_config.py", recipients_for(smtp_sink, twilio_sink, webhook_sink)
    )
    env = bridge_env(
        tmp_path,
        cfg,
        smtp_sink,
        twilio_sink,
        webhook_sink,
        BRIDGE_WATCHDOG_TIMEOUT_SECONDS=1.5,
        BRIDGE_WATCHDOG_CHECK_INTERVAL_SECONDS=0.05,
        # Nothing listens there: the probe finds both down and the page names them.
        PROMETHEUS_URL=f"http://127.0.0.1:{free_port()}",
        ALERTMANAGER_URL=f"http://127.0.0.1:{free_port()}",
    )
    # The watchdog judges time on this clock: however slow the machine, 0.5 s pass
    # between heartbeats because the test says so.
    clock = FakeClock()
    with InProcessBridge(env, clock=clock) as b:
        for _ in range(4):  # heartbeats every 0.5 s keep it quiet
            resp = b.post("watchdog", watchdog_payload())
            assert resp.status_code == 200 and resp.json()["status"] == "heartbeat"
            clock.advance(0.5)
            checks_pass(b)
        assert smtp_sink.count() == 0 and twilio_sink.count() == 0
        assert b.notifications()["watchdog"]["state"] == "ok"

        # A resolved Watchdog means it stopped firing: that is no sign of life.
        assert b.post("watchdog", watchdog_payload("resolved")).json()["status"] == "ignored"
        clock.advance(1.5)
        wait_for(
            lambda: (
                smtp_sink.count() == 2 and twilio_sink.count() == 1 and webhook_sink.count() == 2
            ),
            10,
            "the page to the critical email and SMS recipients",
        )
        page = smtp_sink.messages("oncall@example.com")[0].message
        assert "NO HEARTBEAT" in page["Subject"]
        sms = twilio_sink.messages()[0]["Body"]
        assert sms.startswith("CRIT Prometheus and Alertmanager down"), sms
        # Every critical channel, bypassing Alertmanager: Slack and Discord too.
        assert webhook_sink.count() == 2
        clock.advance(10)  # much later, several more checks: still one page
        checks_pass(b)
        assert smtp_sink.count() == 2 and twilio_sink.count() == 1
        assert b.notifications()["watchdog"]["state"] == "missing"

    # A restart (same store) remembers the open page: no second one.
    with InProcessBridge(env, clock=clock) as b:
        clock.advance(2.0)
        checks_pass(b)
        assert smtp_sink.count() == 2 and twilio_sink.count() == 1
        assert b.post("watchdog", watchdog_payload()).json()["previous_state"] == "missing"
        wait_for(
            lambda: smtp_sink.count() == 4 and twilio_sink.count() == 2, 10, "the recovery notice"
        )
        assert "RECOVERED" in smtp_sink.messages("ops@example.com")[-1].message["Subject"]
        assert twilio_sink.messages()[-1]["Body"].startswith("OK Alerting pipeline recovered")
        assert b.post("watchdog", watchdog_payload()).json()["previous_state"] == "ok"
        assert b.wait_settled() == {"sent": 10}
        assert smtp_sink.count() == 4 and twilio_sink.count() == 2


def test_no_page_before_the_bridge_itself_has_waited_a_full_timeout(
    tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    cfg = write_alert_config(tmp_path / "alert_config.py", recipients_for(smtp_sink))
    env = bridge_env(
        tmp_path,
        cfg,
        smtp_sink,
        BRIDGE_WATCHDOG_TIMEOUT_SECONDS=1.0,
        BRIDGE_WATCHDOG_CHECK_INTERVAL_SECONDS=0.05,
    )
    clock = FakeClock()
    with InProcessBridge(env, clock=clock) as b:
        b.post("watchdog", watchdog_payload())
    clock.advance(1.5)  # the bridge was down longer than the timeout...
    with InProcessBridge(env, clock=clock) as b:
        # The last heartbeat is older than the timeout, but this bridge has not been up
        # that long: Alertmanager gets a chance to reach it before anyone is paged.
        clock.advance(0.7)
        checks_pass(b)
        assert b.notifications()["watchdog"]["state"] == "ok"
        assert b.post("watchdog", watchdog_payload()).json()["previous_state"] == "ok"
        clock.advance(0.5)
        checks_pass(b)
        assert smtp_sink.count() == 0
        assert b.notifications()["watchdog"]["state"] == "ok"
        # And the switch is live: a full timeout without a heartbeat pages.
        clock.advance(1.0)
        wait_for(lambda: smtp_sink.count() == 2, 60, "the page after a full timeout")
        assert b.notifications()["watchdog"]["state"] == "missing"
