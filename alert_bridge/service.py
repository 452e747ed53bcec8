"""The bridge assembled: store, providers, delivery worker, watchdog, metrics."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection

from alert_bridge import pages
from alert_bridge.budget import apply_sms_budget
from alert_bridge.config import AlertConfig, Recipient, load_config
from alert_bridge.direct import DirectPager
from alert_bridge.links import Links
from alert_bridge.messages import parse_time
from alert_bridge.metrics import BridgeMetrics
from alert_bridge.outbox_probe import OutboxProbe
from alert_bridge.payload import WebhookPayload
from alert_bridge.probe import PipelineProbe
from alert_bridge.providers import build_providers
from alert_bridge.ratelimit import SendRates
from alert_bridge.repage import Repager
from alert_bridge.runbook import Runbook
from alert_bridge.settings import BridgeSettings, resolve_auth_token
from alert_bridge.store import Store, WriteHealth
from alert_bridge.watchdog import Watchdog
from alert_bridge.worker import Deliverer

log = logging.getLogger("alert_bridge")

# OutboxProbe writes a probe row unless some write was tried this recently.
OUTBOX_PROBE_SECONDS = 1.0


@dataclass(frozen=True)
class Accepted:
    key: str
    new: int
    duplicates: int


def _lasted(payload: WebhookPayload) -> float | None:
    """Seconds from the group's first start to its last end (a resolved group)."""
    starts = [parse_time(a.startsAt) for a in payload.alerts]
    ends = [parse_time(a.endsAt) for a in payload.alerts]
    first = min((t for t in starts if t), default=None)
    last = max((t for t in ends if t), default=None)
    return (last - first).total_seconds() if first and last and last >= first else None


class BridgeService:
    def __init__(
        self,
        settings: BridgeSettings,
        port: int,
        config: AlertConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.config = config or load_config(settings.alert_config_file)
        self.token = resolve_auth_token(settings)
        self.owner = settings.instance_id(port)
        self.public_url = settings.public_url(port)
        # The bases of every link a notification carries (alert_bridge/links.py).
        self.links = Links(self.public_url, settings.grafana_url)
        self.runbook = Runbook(settings.bridge_runbook_file)
        self.page_ttl = settings.bridge_page_ttl_hours * 3600
        self.store = Store(
            settings.database_url_resolved(), pool_size=settings.bridge_worker_threads + 4
        )
        self.metrics = BridgeMetrics()
        self.metrics.watch_queue(self.store.queue_depth)
        self.outbox_probe = OutboxProbe(self.store, self.owner, OUTBOX_PROBE_SECONDS)
        self.metrics.watch_outbox(self.outbox_health)
        self.providers = build_providers(settings)
        self.deliverer = Deliverer(
            self.store,
            self.providers,
            self.metrics,
            settings,
            self.owner,
            self.page_url,
            SendRates(None if settings.bridge_send_rates else {}),
            self.links,
        )
        self.watchdog = Watchdog(
            self.store,
            self.config,
            settings.bridge_watchdog_timeout_seconds,
            settings.bridge_watchdog_check_interval_seconds,
            on_enqueue=self.deliverer.wake.set,
            direct=DirectPager(self.providers, self.metrics),
            probe=PipelineProbe(
                {"Prometheus": settings.prometheus_url, "Alertmanager": settings.alertmanager_url}
            ),
            probe_after=settings.bridge_watchdog_probe_after_seconds,
            runbook_url=f"{self.public_url}/runbook#watchdog",
            clock=clock,
        )

        self.repager = Repager(
            self.store,
            self.config,
            settings.bridge_repage_minutes * 60,
            settings.bridge_repage_check_interval_seconds,
            on_enqueue=self.deliverer.wake.set,
            page_ttl=self.page_ttl,
            budget=self.sms_budget,
        )

    def start(self) -> None:
        self.store.create_schema()
        self.outbox_probe.start()
        self.deliverer.start()
        self.watchdog.start()
        self.repager.start()
        enabled = [ch for ch, p in self.providers.items() if p.outcome == "sent"]
        log.info(
            "bridge %s: %d recipients from %s; channels enabled: %s; store: %s",
            self.owner,
            self.config.count(),
            self.config.source,
            ", ".join(enabled) or "none (logging what would be sent)",
            self.store.engine.url.render_as_string(hide_password=True),
        )

    def stop(self) -> None:
        self.repager.stop()
        self.watchdog.stop()
        self.deliverer.stop()
        self.outbox_probe.stop()
        self.store.close()
        log.info("bridge %s stopped; in-flight deliveries finished and recorded", self.owner)

    def accept(self, severity: str, payload: WebhookPayload, raw: bytes | None = None) -> Accepted:
        """Store the notification and its deliveries in one transaction; only then
        is the webhook answered 2xx. `raw` is the validated body as received."""
        key = payload.notification_key()
        recipients = self.config.for_severity(severity)
        body = raw.decode() if raw is not None else json.dumps(payload.model_dump(mode="json"))
        now = time.time()
        with self.store.tx() as conn:
            new, dup = self.store.add_notification(
                conn,
                key=key,
                kind="alert",
                severity=severity,
                status=payload.status,
                title=payload.title,
                group_key=payload.groupKey,
                body=body,
                recipients=recipients,
                now=now,
            )
            # The page the notification links to (/n/<token>): acknowledge, silence.
            pages.ensure_page(self.store, conn, key, payload.groupKey, now, self.page_ttl)
            digests, suppressed = self.sms_budget(conn, key, new, now)
        for r in dup:
            self.metrics.count(r.channel, severity, "duplicate")
        for r in suppressed:
            self.metrics.count(r.channel, severity, "suppressed")
        if digests or suppressed:
            log.warning(
                "SMS budget spent: %d digest(s), %d SMS suppressed for %s",
                len(digests),
                len(suppressed),
                payload.title,
            )
        if new and payload.status == "resolved":
            lasted = _lasted(payload)
            if lasted is not None:
                self.metrics.time_to_resolve.labels(severity).observe(lasted)
        if new:
            self.deliverer.wake.set()
        return Accepted(key=key, new=len(new), duplicates=len(dup))

    def sms_budget(
        self, conn: Connection, key: str, new: list[Recipient], now: float
    ) -> tuple[list[Recipient], list[Recipient]]:
        s = self.settings
        return apply_sms_budget(
            conn, key, new, now, s.bridge_sms_budget, s.bridge_sms_budget_window_minutes * 60
        )

    def page_url(self, key: str) -> str:
        """The absolute link to the notification's page, "" when it has none."""
        token = pages.token_for(self.store, key)
        return f"{self.public_url}/n/{token}" if token else ""

    def outbox_health(self) -> WriteHealth:
        """Whether the outbox takes writes: the last write's outcome, kept fresh by
        OutboxProbe (reads still work on a full disk, so only a write can tell). Never
        blocks: scrapes and health checks answer at once."""
        return self.store.write_health

    def ready(self) -> tuple[bool, str]:
        try:
            self.store.ping()
        except Exception as exc:  # noqa: BLE001
            return False, f"store unreachable: {type(exc).__name__}"
        health = self.outbox_health()
        if not health.ok:
            since = time.strftime("%H:%M:%S", time.gmtime(health.failing_since or time.time()))
            return False, f"outbox not writable since {since} UTC: {health.error}"
        if not self.deliverer.alive():
            return False, "delivery worker not running"
        return True, "ok"
