"""Per-destination send rates (Slack 1/s, Discord 5 per 2 s, Twilio 1 segment/s), on an
injected clock, and between real sends to a local Slack sink."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from alert_bridge.ratelimit import SendRates
from tests.support.bridgekit import InProcessBridge, am_payload, bridge_env, write_alert_config

if TYPE_CHECKING:
    from tests.support.sinks import WebhookSink


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_slack_one_per_second_per_webhook() -> None:
    clock = Clock()
    rates = SendRates(clock=clock)
    assert rates.reserve("slack", "hook-a") == 0
    assert rates.reserve("slack", "hook-a") == pytest.approx(1.0)
    assert rates.reserve("slack", "hook-b") == 0  # another channel has its own budget
    clock.now += 1.0
    assert rates.reserve("slack", "hook-a") == 0


def test_discord_five_per_two_seconds() -> None:
    clock = Clock()
    rates = SendRates(clock=clock)
    assert [rates.reserve("discord", "d") for _ in range(5)] == [0, 0, 0, 0, 0]
    assert rates.reserve("discord", "d") == pytest.approx(0.4)
    clock.now += 0.4
    assert rates.reserve("discord", "d") == 0


def test_sms_one_per_second_per_sending_number_and_email_unlimited() -> None:
    clock = Clock()
    rates = SendRates(clock=clock)
    assert rates.reserve("sms", "+15005550006") == 0
    assert rates.reserve("sms", "+15005550006") == pytest.approx(1.0)
    assert all(rates.reserve("email", "a@example.com") == 0 for _ in range(100))


def test_retry_after_pauses_the_destination() -> None:
    clock = Clock()
    rates = SendRates(clock=clock)
    rates.pause("slack", "hook-a", 30)
    assert rates.reserve("slack", "hook-a") == pytest.approx(30)
    clock.now += 30
    assert rates.reserve("slack", "hook-a") == 0


def test_slack_messages_to_one_webhook_are_spaced_by_a_second(
    tmp_path: Path, webhook_sink: WebhookSink
) -> None:
    hook = webhook_sink.url_for("slack/crit")
    cfg = write_alert_config(
        tmp_path / "alert_config.py",
        {"webhook": {"critical": [{"url": hook, "format": "slack"}]}},
    )
    env = bridge_env(tmp_path, cfg, None, None, webhook_sink, BRIDGE_SEND_RATES="true")
    with InProcessBridge(env) as b:
        for i in range(3):
            assert b.post("critical", am_payload(f"Alert{i}")).status_code == 200
        b.wait_settled(30)
        times = sorted(r.at for r in webhook_sink.received if r.path == "/slack/crit")
        assert len(times) == 3
        # A lower bound only: a busy machine can make them later, never sooner.
        assert all(b2 - b1 >= 0.9 for b1, b2 in zip(times, times[1:], strict=False)), times
