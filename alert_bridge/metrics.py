"""The bridge's metrics (docs/architecture.md §6), on a registry of each app instance's own.

tracetrack_notifications_total{channel,severity,outcome}
    outcome: sent | logged (channel disabled) | retry (transient failure)
             | failed (permanent, or gave up) | duplicate (already stored)
tracetrack_notification_queue_depth
    deliveries pending or in flight, read from the store at scrape time
tracetrack_notification_delivery_seconds{channel}
    from acceptance to the provider's confirmation, retries included
tracetrack_bridge_outbox_writable
    1 while the last write to the outbox succeeded, 0 while writes fail (disk full,
    store down); kept fresh by a background probe write (alert_bridge/outbox_probe.py)
tracetrack_bridge_outbox_write_failures_total
    write transactions to the outbox that failed
tracetrack_bridge_webhooks_rejected_total{reason}
    webhooks refused with a 4xx, which Alertmanager does not retry (the notification
    is dropped): unauthorized | unknown_receiver | too_large | invalid
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from alert_bridge.store import WriteHealth
from common.alerting import CHANNEL_MATRIX, CHANNELS
from common.metric_names import (
    BRIDGE_ACTIONS,
    NOTIFICATION_DELIVERY,
    NOTIFICATION_QUEUE_DEPTH,
    NOTIFICATIONS,
    OUTBOX_WRITABLE,
    OUTBOX_WRITE_FAILURES,
    TIME_TO_ACK,
    TIME_TO_RESOLVE,
    WEBHOOKS_REJECTED,
)

ACTIONS = ("ack", "silence")
RESPONSE_BUCKETS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400)
OUTCOMES = ("sent", "logged", "retry", "failed", "duplicate", "suppressed", "deferred")
REJECT_REASONS = {401: "unauthorized", 404: "unknown_receiver", 413: "too_large", 400: "invalid"}
DELIVERY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600)


class QueueDepthCollector(Collector):
    def __init__(self, depth: Callable[[], int]) -> None:
        self.depth = depth

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            NOTIFICATION_QUEUE_DEPTH, "Deliveries pending or in flight in the outbox."
        )
        try:
            family.add_metric([], float(self.depth()))
        except Exception:  # noqa: BLE001 - an unreadable store shows as a missing sample
            return []
        return [family]


class OutboxHealthCollector(Collector):
    def __init__(self, health: Callable[[], WriteHealth]) -> None:
        self.health = health

    def collect(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        h = self.health()
        yield GaugeMetricFamily(
            OUTBOX_WRITABLE,
            "1 while the last write to the outbox succeeded, 0 while writes fail.",
            value=1.0 if h.ok else 0.0,
        )
        yield CounterMetricFamily(
            OUTBOX_WRITE_FAILURES.removesuffix("_total"),
            "Write transactions to the outbox that failed (disk full, store down).",
            value=float(h.failures),
        )


class BridgeMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.notifications = Counter(
            NOTIFICATIONS.removesuffix("_total"),
            "Notification deliveries by channel, severity and outcome.",
            ["channel", "severity", "outcome"],
            registry=self.registry,
        )
        self.delivery_seconds = Histogram(
            NOTIFICATION_DELIVERY,
            "Seconds from accepting a notification to its delivery on a channel.",
            ["channel"],
            buckets=DELIVERY_BUCKETS,
            registry=self.registry,
        )
        # Every series the channel matrix can produce exists from the start at 0, so
        # increase()/rate() see the first notification of each kind (Grafana's "recent
        # notifications", the delivery-failure alert) instead of missing it.
        for severity, channels in CHANNEL_MATRIX.items():
            for ch in channels:
                for outcome in OUTCOMES:
                    self.notifications.labels(ch, severity, outcome)
        for ch in CHANNELS:
            self.delivery_seconds.labels(ch)
        self.webhooks_rejected = Counter(
            WEBHOOKS_REJECTED.removesuffix("_total"),
            "Webhooks refused with a 4xx (not retried by Alertmanager), by reason.",
            ["reason"],
            registry=self.registry,
        )
        for reason in REJECT_REASONS.values():
            self.webhooks_rejected.labels(reason)
        self.actions = Counter(
            BRIDGE_ACTIONS.removesuffix("_total"),
            "Acknowledgements and silences made from notification pages, by outcome.",
            ["action", "outcome"],
            registry=self.registry,
        )
        for action in ACTIONS:
            for outcome in ("ok", "failed"):
                self.actions.labels(action, outcome)
        self.time_to_ack = Histogram(
            TIME_TO_ACK,
            "Seconds from an alert group's start to its acknowledgement on its page.",
            ["severity"],
            buckets=RESPONSE_BUCKETS,
            registry=self.registry,
        )
        self.time_to_resolve = Histogram(
            TIME_TO_RESOLVE,
            "Seconds from an alert group's start to its resolution.",
            ["severity"],
            buckets=RESPONSE_BUCKETS,
            registry=self.registry,
        )
        for severity in CHANNEL_MATRIX:
            self.time_to_ack.labels(severity)
            self.time_to_resolve.labels(severity)

    def watch_queue(self, depth: Callable[[], int]) -> None:
        self.registry.register(QueueDepthCollector(depth))

    def watch_outbox(self, health: Callable[[], WriteHealth]) -> None:
        self.registry.register(OutboxHealthCollector(health))

    def count(self, channel: str, severity: str, outcome: str, n: int = 1) -> None:
        self.notifications.labels(channel, severity, outcome).inc(n)

    def rejected_webhook(self, status: int) -> str:
        """Count a webhook refused with `status`; the reason label it was counted under."""
        reason = REJECT_REASONS.get(status, "invalid")
        self.webhooks_rejected.labels(reason).inc()
        return reason
