"""Security events and the access log, as JSON lines (and events in PostgreSQL too).

An event is something the guard noticed or did: a failed login, a lockout, a rate
limit tripped, a block, a suspicious scan, an injection signature. Recording one
never blocks the request: it goes into a bounded in-memory batch that a background
thread writes every half second to the `security_events` table (what `tracetrack
security events` and `/analytics/api/security` read, from every worker and replica)
and to `var/log/security-events.jsonl`. The same event from the same client within
one batch is one row with a `count`, so a flood writes a handful of rows, not one per
request; past `max_pending` distinct events the rest are dropped and counted
(`tracetrack_security_events_dropped_total`).

Fields: time, kind, client_ip, user, route, status, count, detail. Never a
password, a token or a request body: callers put only the guard's own findings in
`detail` (a QR id, a threshold, a signature kind).

The access log (`var/log/access.jsonl`, TRACETRACK_ACCESS_LOG) has one line per
request answered 401, 403 or 429 ("denied", the default) or per request ("all"):
time, client_ip, user_id, method, route, status, duration_ms.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from app.models import SecurityEvent
from common.periodic import Periodic

log = logging.getLogger(__name__)

EVENTS_FILE = "security-events.jsonl"
ACCESS_FILE = "access.jsonl"
RETENTION_CHECK_SECONDS = 3600


# Events record hostile input by nature (a username with a NUL, a path with one), and
# PostgreSQL's text and JSONB refuse NUL and unpaired surrogates: one such event would
# fail the whole batch, and an attacker could hide the rest. They are stored replaced.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(value: Any) -> Any:
    """`value` with NUL and unpaired surrogates in its strings (keys too) as U+FFFD."""
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    return value


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


@dataclass
class Event:
    kind: str
    client_ip: str | None = None
    username: str | None = None
    route: str | None = None
    status: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)
    count: int = 1

    def key(self) -> tuple[Any, ...]:
        return (self.kind, self.client_ip, self.username, self.route, self.status)

    def as_json(self) -> dict[str, Any]:
        return {
            "time": iso(self.at),
            "kind": self.kind,
            "client_ip": self.client_ip,
            "user": self.username,
            "route": self.route,
            "status": self.status,
            "count": self.count,
            "detail": self.detail,
        }


class JsonLines:
    """Appends whole lines with one write each: lines from several worker processes
    (O_APPEND) never interleave."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._fd: int | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)

    def write(self, record: dict[str, Any]) -> None:
        if self._fd is not None:
            os.write(self._fd, (json.dumps(record, separators=(",", ":")) + "\n").encode())

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class EventLog:
    def __init__(
        self,
        sessions: sessionmaker[Session] | None,
        log_dir: Path | None,
        on_dropped: Callable[[], None] = lambda: None,
        retention_days: int = 30,
        flush_seconds: float = 0.5,
        max_pending: int = 5000,
    ) -> None:
        self._sessions = sessions
        self._file = JsonLines(log_dir / EVENTS_FILE if log_dir else None)
        self._on_dropped = on_dropped
        self._retention = timedelta(days=retention_days)
        self._max_pending = max_pending
        self._pending: dict[tuple[Any, ...], Event] = {}
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        # Wakes only when an event is pending (an idle app pays nothing), then waits
        # `flush_seconds` so that a burst becomes one batch.
        self._pending_event = threading.Event()
        self._writer = Periodic("guard-events", flush_seconds, self.flush, wake=self._pending_event)
        self._next_retention = 0.0
        # Listeners see every event once written, on the writer thread (the automatic
        # blocker), so none of their work lands on a request.
        self.listeners: list[Callable[[Event], None]] = []

    def record(self, event: Event) -> None:
        with self._lock:
            same = self._pending.get(event.key())
            if same is not None:
                same.count += event.count
            elif len(self._pending) >= self._max_pending:
                self._on_dropped()
                return
            else:
                self._pending[event.key()] = event
        self._pending_event.set()

    def flush(self) -> None:
        """Write what is pending now (the background thread calls this; so do tests)."""
        with self._write_lock:
            with self._lock:
                batch, self._pending = list(self._pending.values()), {}
                self._pending_event.clear()
            if not batch:
                return
            for event in batch:
                self._file.write(event.as_json())
            self._store(batch)
            for listener in self.listeners:
                for event in batch:
                    listener(event)

    def _store(self, batch: list[Event]) -> None:
        if self._sessions is None:
            return
        try:
            with self._sessions() as db:
                db.execute(
                    sa.insert(SecurityEvent),
                    [
                        storable(
                            {
                                "at": datetime.fromtimestamp(e.at, UTC),
                                "kind": e.kind,
                                "client_ip": e.client_ip,
                                "username": (e.username or None) and e.username[:64],
                                "route": (e.route or None) and e.route[:200],
                                "status": e.status,
                                "count": e.count,
                                "detail": e.detail,
                            }
                        )
                        for e in batch
                    ],
                )
                self._apply_retention(db)
                db.commit()
        except Exception as exc:  # noqa: BLE001 - the JSON lines have them; don't kill the writer
            log.warning("could not store %d security events: %s", len(batch), exc)

    def _apply_retention(self, db: Session) -> None:
        now = time.monotonic()
        if now < self._next_retention:
            return
        self._next_retention = now + RETENTION_CHECK_SECONDS
        cutoff = datetime.now(UTC) - self._retention
        db.execute(sa.delete(SecurityEvent).where(SecurityEvent.at < cutoff))

    def start(self) -> None:
        self._writer.start()

    def stop(self) -> None:
        self._writer.stop()
        self.flush()
        self._file.close()


# --- reading them back ------------------------------------------------------------


def recent_events(
    db: Session, since: datetime, kind: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    query = sa.select(SecurityEvent).where(SecurityEvent.at >= since)
    if kind:
        query = query.where(SecurityEvent.kind == kind)
    rows = db.scalars(query.order_by(SecurityEvent.at.desc(), SecurityEvent.id.desc()).limit(limit))
    return [
        {
            "time": r.at.isoformat(),
            "kind": r.kind,
            "client_ip": r.client_ip,
            "user": r.username,
            "route": r.route,
            "status": r.status,
            "count": r.count,
            "detail": r.detail,
        }
        for r in rows
    ]


def top_offenders(db: Session, since: datetime, limit: int = 10) -> dict[str, list[dict[str, Any]]]:
    """The client IPs and accounts with the most events since `since`."""

    def top(column: Any) -> list[dict[str, Any]]:
        total = sa.func.sum(SecurityEvent.count).label("events")
        rows = db.execute(
            sa.select(column, total, sa.func.max(SecurityEvent.at).label("last"))
            .where(SecurityEvent.at >= since, column.is_not(None))
            .group_by(column)
            .order_by(total.desc(), column)
            .limit(limit)
        )
        return [{"key": k, "events": int(n), "last": last.isoformat()} for k, n, last in rows]

    return {"ips": top(SecurityEvent.client_ip), "accounts": top(SecurityEvent.username)}
