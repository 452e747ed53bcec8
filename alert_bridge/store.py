"""The durable outbox: accepted notifications and their per-recipient deliveries.

SQLite (WAL, synchronous=FULL, every write transaction `BEGIN IMMEDIATE`) for one
bridge, PostgreSQL for several: rows are claimed with a lease (`FOR UPDATE SKIP
LOCKED` on PostgreSQL, the database write lock on SQLite), so each delivery is
worked on by one replica at a time and a dead replica's claims expire.

A delivery is unique per (notification key, channel, recipient); the
notification key covers the group key, status and each alert's fingerprint and
start time, so a payload delivered twice adds nothing the second time.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
    create_engine,
    event,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from alert_bridge.config import Recipient

metadata = MetaData()

notifications = Table(
    "bridge_notifications",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),  # alert | watchdog
    Column("severity", String(16), nullable=False),
    Column("status", String(16), nullable=False),  # firing | resolved | missing | recovered
    Column("title", Text, nullable=False),
    Column("group_key", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("received_at", Float, nullable=False),
)

deliveries = Table(
    "bridge_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("notification_key", String(64), ForeignKey(notifications.c.key), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("recipient", Text, nullable=False),
    Column("format", String(16)),
    Column("severity", String(16), nullable=False),
    # pending -> sending (claimed, leased) -> sent | logged | failed; back to pending on retry
    Column("status", String(16), nullable=False, default="pending"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
    Column("next_attempt_at", Float, nullable=False),
    Column("lease_owner", String(200)),
    Column("lease_expires", Float),
    Column("last_error", Text),
    Column("sent_at", Float),
    Column("provider_ref", Text),
    UniqueConstraint("notification_key", "channel", "recipient", name="uq_bridge_delivery"),
    Index("ix_bridge_deliveries_due", "status", "next_attempt_at"),
)

watchdog = Table(
    "bridge_watchdog",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("state", String(16), nullable=False),  # waiting | ok | missing
    Column("armed_at", Float, nullable=False),
    Column("last_heartbeat", Float),
    Column("changed_at", Float, nullable=False),
)

# One row per bridge instance, rewritten by `probe_write`: readiness and the
# outbox-writable gauge need a real write, since reads keep working on a full disk.
probes = Table(
    "bridge_probe",
    metadata,
    Column("owner", String(200), primary_key=True),
    Column("at", Float, nullable=False),
)

OPEN_STATUSES = ("pending", "sending")
# suppressed: over a phone's SMS budget, recorded but not sent (alert_bridge/budget.py).
DONE_STATUSES = ("sent", "logged", "failed", "suppressed")


@dataclass
class WriteHealth:
    """The outcome of the store's most recent write transaction (any of them)."""

    ok: bool = True
    error: str | None = None
    failing_since: float | None = None  # wall clock of the first failure in a row
    checked_at: float = 0.0  # monotonic time of the last write attempt
    failures: int = 0  # write transactions that failed, ever (a counter)


# Errors of the storage rather than of the statement: a full or read-only disk, I/O
# errors, a lost connection. A constraint violation is the caller's business.
def is_storage_error(exc: BaseException) -> bool:
    from sqlalchemy.exc import IntegrityError, OperationalError

    return isinstance(exc, OperationalError) and not isinstance(exc, IntegrityError)


@dataclass(frozen=True)
class Claimed:
    id: int
    notification_key: str
    channel: str
    recipient: str
    format: str | None
    severity: str
    attempts: int
    created_at: float
    kind: str
    status: str
    body: str


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        # We issue BEGIN ourselves: pysqlite's implicit BEGIN is DEFERRED, which lets two
        # writers deadlock on the lock upgrade instead of queueing on busy_timeout.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")  # a 2xx means the row survives power loss
        cur.execute("PRAGMA busy_timeout=15000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Connection) -> None:
        # Writers take the lock up front; readers stay deferred so they never block them.
        write = conn.get_execution_options().get("bridge_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


_WROTE = "bridge_wrote"


def _track_writes(engine: Engine) -> None:
    @event.listens_for(engine, "before_cursor_execute")
    def flag(
        conn: Connection, _cur: Any, _sql: str, _params: Any, context: Any, _many: bool
    ) -> None:
        if context is not None and (context.isinsert or context.isupdate or context.isdelete):
            conn.info[_WROTE] = True


def _private_file(path: Path) -> None:
    """Create the SQLite outbox (and its -wal/-shm companions, which SQLite gives the
    database's mode) as 0600: it holds webhook URLs with their secrets and recipients'
    addresses. An outbox made world-readable by an older version is tightened."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for companion in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if companion.exists():
            os.chmod(companion, 0o600)


def make_engine(url: str, pool_size: int = 10) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            _private_file(Path(path))
        engine = create_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            connect_args={"check_same_thread": False, "timeout": 15},
        )
        _sqlite_pragmas(engine)
    else:
        engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
    _track_writes(engine)
    return engine


def _insert(engine: Engine, table: Table) -> Any:
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


class Store:
    def __init__(self, url: str, pool_size: int = 10) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size)
        self.is_postgres = self.engine.dialect.name == "postgresql"
        self.write_health = WriteHealth()
        self._write_lock = threading.Lock() if self.engine.dialect.name == "sqlite" else None
        # Built once: the intake path runs these for every webhook.
        self._insert_notification = _insert(self.engine, notifications).on_conflict_do_nothing(
            index_elements=["key"]
        )
        self._insert_delivery = _insert(self.engine, deliveries).on_conflict_do_nothing(
            index_elements=["notification_key", "channel", "recipient"]
        )

    def create_schema(self) -> None:
        metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def tx(self) -> Iterator[Connection]:
        """A write transaction. On SQLite, this process's writers queue on a lock here:
        SQLite's own busy handler sleeps up to 100 ms between retries, which is what
        a webhook waiting behind a delivery commit would otherwise pay."""
        info: dict[Any, Any] = {}
        try:
            if self._write_lock is None:
                with self.engine.begin() as conn:
                    info = conn.info
                    yield conn
            else:
                with (
                    self._write_lock,
                    self.engine.connect().execution_options(bridge_write=True) as conn,
                    conn.begin(),
                ):
                    info = conn.info
                    yield conn
        except BaseException as exc:
            info.pop(_WROTE, None)
            if is_storage_error(exc):
                self._wrote(exc)
            raise
        else:
            # Only a transaction that wrote says the outbox takes writes: the worker's
            # idle polls commit nothing and succeed on a full disk.
            if info.pop(_WROTE, False):
                self._wrote(None)

    def _wrote(self, error: BaseException | None) -> None:
        h = self.write_health
        h.checked_at = time.monotonic()
        if error is None:
            h.ok, h.error, h.failing_since = True, None, None
            return
        h.failures += 1
        h.error = str(getattr(error, "orig", None) or error).strip().splitlines()[0][:300]
        if h.ok:
            h.ok, h.failing_since = False, time.time()

    def probe_write(self, owner: str, max_age: float = 0.0) -> WriteHealth:
        """Write a row unless a write was tried in the last `max_age` seconds; the health.

        Catches the failure (it is in the returned health): callers ask "can the outbox
        be written?", and a full disk is an answer, not an error."""
        if time.monotonic() - self.write_health.checked_at >= max_age:
            stmt = (
                _insert(self.engine, probes)
                .values(owner=owner, at=time.time())
                .on_conflict_do_update(index_elements=["owner"], set_={"at": time.time()})
            )
            try:
                with self.tx() as conn:
                    conn.execute(stmt)
            except Exception:  # noqa: BLE001 - recorded in write_health by tx()
                pass
        return self.write_health

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(select(1))

    # --- intake -------------------------------------------------------------------

    def add_notification(
        self,
        conn: Connection,
        *,
        key: str,
        kind: str,
        severity: str,
        status: str,
        title: str,
        group_key: str,
        body: str,
        recipients: Sequence[Recipient],
        now: float,
    ) -> tuple[list[Recipient], list[Recipient]]:
        """Insert the notification and one delivery per recipient, skipping what exists.

        Returns (new, duplicate) recipients. Runs inside the caller's transaction so
        the intake commits everything or nothing.
        """
        conn.execute(
            self._insert_notification,
            {
                "key": key,
                "kind": kind,
                "severity": severity,
                "status": status,
                "title": title,
                "group_key": group_key,
                "body": body,
                "received_at": now,
            },
        )
        new: list[Recipient] = []
        dup: list[Recipient] = []
        for r in recipients:
            res = conn.execute(
                self._insert_delivery,
                {
                    "notification_key": key,
                    "channel": r.channel,
                    "recipient": r.address,
                    "format": r.format,
                    "severity": severity,
                    "status": "pending",
                    "attempts": 0,
                    "created_at": now,
                    "next_attempt_at": now,
                },
            )
            (new if res.rowcount == 1 else dup).append(r)
        return new, dup

    # --- the worker's side ------------------------------------------------------------

    def release_own_claims(self, owner: str) -> int:
        """After a crash and restart under the same identity, our in-flight claims are
        retried at once instead of waiting for their leases to expire."""
        with self.tx() as conn:
            res = conn.execute(
                update(deliveries)
                .where(deliveries.c.status == "sending", deliveries.c.lease_owner == owner)
                .values(status="pending", lease_owner=None, lease_expires=None)
            )
            return int(res.rowcount)

    def claim(self, owner: str, now: float, lease_seconds: float, limit: int) -> list[Claimed]:
        due = or_(
            and_(deliveries.c.status == "pending", deliveries.c.next_attempt_at <= now),
            and_(deliveries.c.status == "sending", deliveries.c.lease_expires < now),
        )
        with self.tx() as conn:
            q = (
                select(deliveries.c.id)
                .where(due)
                .order_by(deliveries.c.next_attempt_at)
                .limit(limit)
            )
            if self.is_postgres:
                q = q.with_for_update(skip_locked=True)
            ids = [row[0] for row in conn.execute(q)]
            if not ids:
                return []
            conn.execute(
                update(deliveries)
                .where(deliveries.c.id.in_(ids))
                .values(
                    status="sending",
                    lease_owner=owner,
                    lease_expires=now + lease_seconds,
                    attempts=deliveries.c.attempts + 1,
                )
            )
            rows = conn.execute(
                select(
                    deliveries.c.id,
                    deliveries.c.notification_key,
                    deliveries.c.channel,
                    deliveries.c.recipient,
                    deliveries.c.format,
                    deliveries.c.severity,
                    deliveries.c.attempts,
                    deliveries.c.created_at,
                    notifications.c.kind,
                    notifications.c.status,
                    notifications.c.body,
                )
                .join(notifications, notifications.c.key == deliveries.c.notification_key)
                .where(deliveries.c.id.in_(ids))
                .order_by(deliveries.c.next_attempt_at)
            ).all()
        return [Claimed(*row) for row in rows]

    def finish_many(self, owner: str, items: Sequence[tuple[int, dict[str, Any]]]) -> list[bool]:
        """Record many outcomes in one transaction (group commit: one fsync for all).
        Each row must still be ours (status sending, our lease); False where it is not."""
        stmt = update(deliveries).where(
            deliveries.c.id == bindparam("b_id"),
            deliveries.c.status == "sending",
            deliveries.c.lease_owner == owner,
        )
        done = []
        with self.tx() as conn:
            for delivery_id, values in items:
                res = conn.execute(
                    stmt.values(lease_owner=None, lease_expires=None, **values),
                    {"b_id": delivery_id},
                )
                done.append(res.rowcount == 1)
        return done

    def next_due(self) -> float | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(func.min(deliveries.c.next_attempt_at)).where(
                    deliveries.c.status == "pending"
                )
            ).scalar()

    # --- operators --------------------------------------------------------------------

    def queue_depth(self) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(deliveries)
                    .where(deliveries.c.status.in_(OPEN_STATUSES))
                ).scalar_one()
            )

    def counts_by_status(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(deliveries.c.status, func.count()).group_by(deliveries.c.status)
            ).all()
        return {status: int(n) for status, n in rows}

    def recent(self, limit: int = 100, status: str | None = None) -> list[dict[str, Any]]:
        q = (
            select(
                deliveries.c.id,
                deliveries.c.notification_key,
                notifications.c.kind,
                notifications.c.title,
                notifications.c.status.label("notification_status"),
                deliveries.c.severity,
                deliveries.c.channel,
                deliveries.c.recipient,
                deliveries.c.format,
                deliveries.c.status,
                deliveries.c.attempts,
                deliveries.c.created_at,
                deliveries.c.next_attempt_at,
                deliveries.c.sent_at,
                deliveries.c.last_error,
                deliveries.c.provider_ref,
            )
            .join(notifications, notifications.c.key == deliveries.c.notification_key)
            .order_by(deliveries.c.id.desc())
            .limit(limit)
        )
        if status:
            q = q.where(deliveries.c.status == status)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(q)]

    def notification_body(self, key: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            body = conn.execute(
                select(notifications.c.body).where(notifications.c.key == key)
            ).scalar()
        return json.loads(body) if body else None

    # --- dead man's switch ----------------------------------------------------------

    def watchdog_row(self, conn: Connection, now: float) -> dict[str, Any]:
        row = conn.execute(select(watchdog).where(watchdog.c.id == 1)).first()
        if row is None:
            conn.execute(
                _insert(self.engine, watchdog)
                .values(id=1, state="waiting", armed_at=now, last_heartbeat=None, changed_at=now)
                .on_conflict_do_nothing(index_elements=["id"])
            )
            row = conn.execute(select(watchdog).where(watchdog.c.id == 1)).first()
        assert row is not None
        return dict(row._mapping)

    def set_watchdog(self, conn: Connection, **values: Any) -> None:
        conn.execute(update(watchdog).where(watchdog.c.id == 1).values(**values))

    def lock_watchdog(self, conn: Connection, now: float) -> dict[str, Any]:
        """The watchdog row, locked for this transaction (replicas must not both page)."""
        row = self.watchdog_row(conn, now)
        if self.is_postgres:
            locked = conn.execute(
                select(watchdog).where(watchdog.c.id == 1).with_for_update()
            ).first()
            assert locked is not None
            row = dict(locked._mapping)
        return row
