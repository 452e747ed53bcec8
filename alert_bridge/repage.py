"""Re-page until acknowledged: a critical group still firing, not acknowledged, is paged
again every `BRIDGE_REPAGE_MINUTES` as a reminder that says so ("still firing for 45m,
not acknowledged"), until someone acknowledges it on its page or it resolves.

Alertmanager's own `repeat_interval` re-sends of an unchanged group stay deduplicated by
the outbox (a retry is not a reminder); this is the bridge's own schedule. A reminder's
key is derived from the group, the episode's start and the reminder's number, so
replicas sharing PostgreSQL (and restarts) send each reminder once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from alert_bridge import pages
from alert_bridge.config import AlertConfig
from alert_bridge.store import Store, notifications
from common.periodic import Periodic

log = logging.getLogger("alert_bridge.repage")

# Groups whose latest notification is older than this are not reminded any more (an
# alert firing unacknowledged for a month is a decision, not an oversight).
LOOKBACK_SECONDS = 30 * 86400


@dataclass(frozen=True)
class Episode:
    group_key: str
    started: float  # the episode's first firing notification
    last_paged: float  # its latest notification or reminder
    latest_key: str  # the latest firing notification (its body is re-sent)
    reminders: int


def _reminder_key(group_key: str, started: float, n: int) -> str:
    return hashlib.sha256(f"reminder:{group_key}:{started:.6f}:{n}".encode()).hexdigest()


class Repager:
    def __init__(
        self,
        store: Store,
        config: AlertConfig,
        interval: float,
        check_every: float,
        on_enqueue: Callable[[], None],
        page_ttl: float,
        budget: Callable[..., object] | None = None,
    ) -> None:
        self.store = store
        self.budget = budget  # the per-phone SMS budget (alert_bridge/budget.py)
        self.config = config
        self.interval = interval
        self.check_every = check_every
        self.on_enqueue = on_enqueue
        self.page_ttl = page_ttl
        # Its `ticks` count completed checks (tests wait on them).
        self.loop = Periodic(
            "bridge-repage", check_every, lambda: self.check(time.time()), logger=log
        )

    @property
    def enabled(self) -> bool:
        return self.interval > 0

    def start(self) -> None:
        if self.enabled:
            self.loop.start()

    def stop(self) -> None:
        self.loop.stop()

    def episodes(self, now: float) -> list[Episode]:
        """Critical groups whose latest notification is firing."""
        n = notifications
        with self.store.engine.connect() as conn:
            # Without bodies, and only the recent past: this runs every half minute on an
            # outbox that keeps months of notifications.
            rows = conn.execute(
                select(n.c.key, n.c.kind, n.c.status, n.c.group_key, n.c.received_at)
                .where(
                    n.c.severity == "critical",
                    n.c.kind.in_(("alert", "reminder")),
                    n.c.received_at > now - LOOKBACK_SECONDS,
                )
                .order_by(n.c.group_key, n.c.received_at)
            ).all()
        by_group: dict[str, list[Any]] = {}
        for row in rows:
            by_group.setdefault(row.group_key, []).append(row)
        out = []
        for group_key, items in by_group.items():
            alerts = [r for r in items if r.kind == "alert"]
            if not alerts or alerts[-1].status != "firing":
                continue
            resolved = [r.received_at for r in alerts if r.status == "resolved"]
            since = max(resolved) if resolved else 0.0
            episode = [r for r in items if r.received_at > since]
            firing = [r for r in episode if r.kind == "alert"]
            out.append(
                Episode(
                    group_key=group_key,
                    started=float(firing[0].received_at),
                    last_paged=float(max(r.received_at for r in episode)),
                    latest_key=firing[-1].key,
                    reminders=sum(1 for r in episode if r.kind == "reminder"),
                )
            )
        return out

    def check(self, now: float) -> int:
        """Enqueue the reminders that are due; how many were."""
        sent = 0
        for ep in self.episodes(now):
            if now - ep.last_paged < self.interval:
                continue
            if pages.ack_of(self.store, ep.group_key) is not None:
                continue
            number = ep.reminders + 1
            key = _reminder_key(ep.group_key, ep.started, number)
            stored = self.store.notification_body(ep.latest_key)
            if stored is None:
                continue
            body = dict(stored)
            body["_reminder"] = {"number": number, "firing_since": ep.started, "at": now}
            with self.store.tx() as conn:
                new, _ = self.store.add_notification(
                    conn,
                    key=key,
                    kind="reminder",
                    severity="critical",
                    status="firing",
                    title=str(body.get("groupLabels", {}).get("alertname", "alert")),
                    group_key=ep.group_key,
                    body=json.dumps(body),
                    recipients=self.config.for_severity("critical"),
                    now=now,
                )
                # The reminder links to the same kind of page (acknowledge from it).
                pages.ensure_page(self.store, conn, key, ep.group_key, now, self.page_ttl)
                if self.budget is not None:
                    self.budget(conn, key, new, now)
            if new:
                sent += 1
                log.warning(
                    "re-paging %s: firing for %.0f min, not acknowledged (reminder %d)",
                    ep.group_key,
                    (now - ep.started) / 60,
                    number,
                )
        if sent:
            self.on_enqueue()
        return sent
