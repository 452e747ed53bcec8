"""Alerting HA with the real parts: two Prometheus servers (an HA pair, replica label
dropped on the way out) alerting to two Alertmanagers clustered by gossip, whose
receivers post to two alert bridges sharing one PostgreSQL outbox (given in the
`postgresql://` form compose uses). A stream of critical alerts reaches every recipient
(email, SMS through the twilio SDK, Slack and Discord webhooks) exactly once, also when
one Alertmanager and one bridge are killed with -9 in the middle of the stream; and
when the last bridge dies too, Alertmanager itself tells the on-call engineers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.bridgekit import (
    wait_for,
)
from tests.support.hakit import GaugeTarget, pages_by_recipient, start_ha_alerting

if TYPE_CHECKING:
    from tests.support.sinks import SmtpSink, TwilioSink, WebhookSink


BREACHES = 6
KILL_AT = 3  # the breach during which one Alertmanager and one bridge die


@pytest.fixture()
def breach_target() -> Iterator[GaugeTarget]:
    """`ha_breach{n}`: the test raises breach n by setting it to 1."""
    target = GaugeTarget("ha_breach", ("n",))
    try:
        yield target
    finally:
        target.stop()


def test_two_alertmanagers_and_two_bridges_page_each_breach_once_through_kill9(
    tmp_path: Path,
    database_url: str,
    smtp_sink: SmtpSink,
    twilio_sink: TwilioSink,
    webhook_sink: WebhookSink,
    breach_target: GaugeTarget,
) -> None:
    outbox = database_url.replace("postgresql+psycopg2://", "postgresql://", 1)
    sinks = (smtp_sink.faults, twilio_sink.faults, webhook_sink.faults)

    with ExitStack() as stack:
        ha = start_ha_alerting(
            tmp_path,
            stack,
            outbox_url=outbox,
            smtp=smtp_sink,
            twilio=twilio_sink,
            hooks=webhook_sink,
            breach_target=breach_target,
        )
        bridges, ams, recipients = ha.bridges, ha.alertmanagers, ha.recipients

        def delivered(n: int) -> bool:
            pages = pages_by_recipient(smtp_sink, twilio_sink, webhook_sink, recipients)
            return all(counts[n] >= 1 for counts in pages.values())

        for n in range(BREACHES):
            if n == KILL_AT:
                # Freeze the providers so what is in flight is never received, then kill
                # an Alertmanager and a bridge while this breach's page is under way.
                for faults in sinks:
                    faults.hold()
            breach_target.gauge.labels(n=str(n)).set(1)
            if n == KILL_AT:
                wait_for(lambda: sum(f.held for f in sinks) >= 3, 60, f"breach {n}'s deliveries")
                ams[0].proc.kill9()
                bridges[0].kill9()
                for faults in sinks:
                    faults.release(discard=True)
            wait_for(lambda n=n: delivered(n), 90, f"breach {n} at every recipient")

        survivor = bridges[1]
        counts = survivor.wait_settled(60)
        assert set(counts) <= {"sent"}, counts
        pages = pages_by_recipient(smtp_sink, twilio_sink, webhook_sink, recipients)
        assert len(pages) == 2 + 1 + 2  # two emails, one phone, two webhooks
        for recipient, got in pages.items():
            assert got == Counter(range(BREACHES)), f"{recipient} got {dict(got)}"

        # The survivors really carried the second half: the killed Alertmanager and
        # bridge are gone, and the surviving bridge sent the pages after the kill.
        assert not ams[0].proc.alive() and not bridges[0].proc.alive()
        assert ams[1].cluster_peers(), "the surviving Alertmanager still answers"
        sent_by_survivor = survivor.metric(
            "tracetrack_notifications_total", channel="sms", severity="critical", outcome="sent"
        )
        assert sent_by_survivor >= BREACHES - KILL_AT - 1

        # The last bridge dies too: TraceTrackAlertBridgeDown reaches the critical
        # recipients through the surviving Alertmanager's own email receiver.
        survivor.kill9()

        def bridge_down_mail() -> list[str]:
            return [
                m.message["Subject"]
                for m in smtp_sink.messages(to=recipients["email"]["critical"][0])
                if "Every alert bridge is down" in m.message["Subject"]
            ]

        wait_for(lambda: bridge_down_mail(), 90, "the bridge-down email from Alertmanager")
        assert ams[1].alerts(alertname="TraceTrackAlertBridgeDown")
