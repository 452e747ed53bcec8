"""Every labelled counter of the bridge exists at 0 for each known label combination from
the start, so increase() sees the first event (Grafana's "Recent notifications")."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from alert_bridge.metrics import ACTIONS, OUTCOMES, REJECT_REASONS, BridgeMetrics
from common.alerting import CHANNEL_MATRIX


def _samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(BridgeMetrics().registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }


def test_every_known_combination_is_exported_at_zero() -> None:
    samples = _samples()
    for severity, channels in CHANNEL_MATRIX.items():
        for channel in channels:
            for outcome in OUTCOMES:
                key = (
                    "tracetrack_notifications_total",
                    tuple(
                        sorted(
                            {"channel": channel, "severity": severity, "outcome": outcome}.items()
                        )
                    ),
                )
                assert samples.get(key) == 0.0, key
    for reason in REJECT_REASONS.values():
        key = ("tracetrack_bridge_webhooks_rejected_total", (("reason", reason),))
        assert samples.get(key) == 0.0, key
    for action in ACTIONS:
        for outcome in ("ok", "failed"):
            key = (
                "tracetrack_bridge_actions_total",
                tuple(sorted({"action": action, "outcome": outcome}.items())),
            )
            assert samples.get(key) == 0.0, key
    for name in (
        "tracetrack_bridge_time_to_acknowledge_seconds_count",
        "tracetrack_bridge_time_to_resolve_seconds_count",
    ):
        for severity in CHANNEL_MATRIX:
            assert samples.get((name, (("severity", severity),))) == 0.0, (name, severity)
