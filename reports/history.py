"""The alert history, read from the alert bridge's store.

Alertmanager keeps no history; the bridge stores every webhook it accepts, as
received (Alertmanager's webhook payload, version 4), in `bridge_notifications`.
Each alert instance is one (fingerprint, startsAt): it fired at startsAt and, once
a resolved notification for it arrived, ended at that notification's endsAt.
The reports read the table over the bridge's database URL (SQLite by default,
PostgreSQL for several bridges), read-only, so they work while the bridge is down.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
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
    acknowledged_at: float | None = None

    def duration(self, until: float) -> float:
        return (self.ends_at if self.ends_at is not None else until) - self.starts_at


def _ts(value: str) -> float | None:
    if not value or value.startswith("0001-"):
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def instances_from_payloads(payloads: Iterable[tuple[str, dict[str, Any]]]) -> list[AlertInstance]:
    """(row severity, webhook payload) pairs, oldest first -> alert instances."""
    found: dict[tuple[str, str], AlertInstance] = {}
    for severity, payload in payloads:
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
            if alert.get("status") == "resolved":
                inst.ends_at = _ts(alert.get("endsAt", ""))
    return sorted(found.values(), key=lambda i: i.starts_at)


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
            "SELECT severity, body FROM bridge_notifications"
            " WHERE kind = 'alert' AND received_at >= :since ORDER BY received_at"
        )
        try:
            with self.engine.connect() as conn:
                if not inspect(conn).has_table("bridge_notifications"):
                    return None
                rows = conn.execute(query, {"since": since}).all()
        except SQLAlchemyError as exc:
            safe = self.engine.url.render_as_string(hide_password=True)
            raise HistoryError(
                f"cannot read the alert history from the bridge's store at {safe}:"
                f" {type(exc).__name__}: {str(exc).splitlines()[0]}"
            ) from exc
        payloads = []
        for severity, body in rows:
            try:
                payloads.append((severity, json.loads(body)))
            except ValueError:
                continue  # the bridge validated it; a damaged row must not stop a report
        return [i for i in instances_from_payloads(payloads) if since <= i.starts_at < until]
