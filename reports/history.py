"""The alert history, read from the alert bridge's store.

Alertmanager keeps no history; the bridge stores every webhook it accepts, as
received (Alertmanager's webhook payload, version 4), in `bridge_notifications`.
Each alert instance is one (fingerprint, startsAt): it fired at startsAt and, once
a resolved notification for it arrived, ended at that notification's endsAt.
On-call acknowledges an alert group on its notification page (`/n/<token>`); the
bridge keeps who and when in `bridge_acks`. An acknowledgement covers the group's
instances firing at that moment (started, not yet ended): their time to acknowledge is
from their start to the group's first acknowledgement while they fired.
The reports read the tables over the bridge's database URL (SQLite by default,
PostgreSQL for several bridges), read-only, so they work while the bridge is down.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from common.alerting import WATCHDOG


class HistoryError(RuntimeError):
    """The store cannot be read; names the database URL (without its password)."""


@dataclass
class AlertInstance:
    name: str
    severity: str
    fingerprint: str
    labels: dict[str, str]
    starts_at: float
    ends_at: float | None = None  # None: not resolved (as far as the store knows)
    acknowledged_at: float | None = None  # None: nobody acknowledged it while it fired
    group_keys: set[str] = field(default_factory=set)  # Alertmanager groups it was sent in

    def firing_at(self, t: float) -> bool:
        return self.starts_at <= t and (self.ends_at is None or t <= self.ends_at)

    def duration(self, until: float) -> float:
        return (self.ends_at if self.ends_at is not None else until) - self.starts_at


def _ts(value: str) -> float | None:
    if not value or value.startswith("0001-"):
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def instances_from_payloads(
    payloads: Iterable[tuple[str, dict[str, Any], str | None]],
) -> list[AlertInstance]:
    """(row severity, webhook payload, group key) of each notification, oldest first ->
    alert instances."""
    found: dict[tuple[str, str], AlertInstance] = {}
    for severity, payload, group_key in payloads:
        for alert in payload.get("alerts", []):
            labels = alert.get("labels", {})
            name = labels.get("alertname", "alert")
            starts = _ts(alert.get("startsAt", ""))
            if name == WATCHDOG or starts is None:
                continue
            fingerprint = alert.get("fingerprint") or json.dumps(labels, sort_keys=True)
            key = (fingerprint, alert["startsAt"])
            inst = found.get(key)
            if inst is None:
                inst = found[key] = AlertInstance(
                    name, labels.get("severity", severity), fingerprint, labels, starts
                )
            if group_key:
                inst.group_keys.add(group_key)
            if alert.get("status") == "resolved":
                inst.ends_at = _ts(alert.get("endsAt", ""))
    return sorted(found.values(), key=lambda i: i.starts_at)


def apply_acks(instances: list[AlertInstance], acks: Iterable[tuple[str, float]]) -> None:
    """(group key, acknowledged at) of each acknowledgement, oldest first: each instance
    takes the first acknowledgement of one of its groups made while it fired."""
    by_group: dict[str, list[float]] = {}
    for group_key, at in acks:
        by_group.setdefault(group_key, []).append(at)
    for inst in instances:
        times = sorted(t for g in inst.group_keys for t in by_group.get(g, ()))
        inst.acknowledged_at = next((t for t in times if inst.firing_at(t)), None)


class AlertHistory:
    def __init__(self, database_url: str) -> None:
        self.url = database_url
        self.engine = create_engine(database_url)

    def close(self) -> None:
        self.engine.dispose()

    def instances(self, since: float, until: float) -> list[AlertInstance] | None:
        """Alert instances that started in [since, until), with what the store knows
        about their end (a resolved notification may arrive after `until`); None when
        the bridge has not created its store yet (no data, which is not zero alerts)."""
        if self.url.startswith("sqlite"):
            path = self.url.split("///", 1)[-1]
            if path and path != ":memory:" and not Path(path).exists():
                return None
        # Notifications of an instance arrive after it starts: read from `since` on.
        query = text(
            "SELECT severity, body, group_key FROM bridge_notifications"
            " WHERE kind = 'alert' AND received_at >= :since ORDER BY received_at"
        )
        # An acknowledgement comes after its alert started, possibly after `until`.
        acks_query = text(
            "SELECT group_key, acked_at FROM bridge_acks WHERE acked_at >= :since ORDER BY acked_at"
        )
        try:
            with self.engine.connect() as conn:
                tables = inspect(conn)
                if not tables.has_table("bridge_notifications"):
                    return None
                rows = conn.execute(query, {"since": since}).all()
                # A store from before acknowledgements existed has none: no data.
                acks = (
                    conn.execute(acks_query, {"since": since}).all()
                    if tables.has_table("bridge_acks")
                    else []
                )
        except SQLAlchemyError as exc:
            safe = self.engine.url.render_as_string(hide_password=True)
            raise HistoryError(
                f"cannot read the alert history from the bridge's store at {safe}:"
                f" {type(exc).__name__}: {str(exc).splitlines()[0]}"
            ) from exc
        payloads = []
        for severity, body, group_key in rows:
            try:
                payloads.append((severity, json.loads(body), group_key))
            except ValueError:
                continue  # the bridge validated it; a damaged row must not stop a report
        found = [i for i in instances_from_payloads(payloads) if since <= i.starts_at < until]
        apply_acks(found, ((g, float(at)) for g, at in acks))
        return found
