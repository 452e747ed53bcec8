"""Exact "today" counts whose cost follows the last minute's rows, not the whole day's.

Counting a busy day's scans (250,000 of 5,000,000 at 5 % a day) costs tens to hundreds
of milliseconds per scrape, more before VACUUM has set the visibility map. Instead the
day is split at a boundary B:

    today = sealed count of [midnight, B)   (counted once, in the background)
          + count of [B, next midnight)     (counted on each scrape: only recent rows)

B is chosen so no row can still arrive below it: the app never sends timestamps, the
database stamps scans.scanned_at and bills.created_at with now(), which is the start of
the inserting transaction. So every row not yet committed has a timestamp at or after the
start of a transaction still open, and B = min(now, oldest open transaction's start) - 1 s
is final. The sealed part is recounted every `reseal_seconds` (a minute by default); rows
inserted with an explicit earlier timestamp (bulk loads, backfills) or deleted are
reflected by the next recount.

When the exporter's role cannot see other roles' transactions (no pg_monitor), B cannot be
proven final, so nothing is sealed and every scrape counts the whole day.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from common import tables
from exporter.collector import Deadline
from exporter.pg import PgConnection

log = logging.getLogger(__name__)

# table -> its timestamp column; both have a b-tree index (app/models.py).
DAY_COLUMNS = {tables.SCANS: "scanned_at", tables.BILLS: "created_at"}
SAFETY = timedelta(seconds=1)
RESEAL_TIMEOUT_SECONDS = 120.0
# A recount waiting behind a lock would in turn block whoever queues behind it (ALTER
# TABLE, then every query of the app); give up instead and try again at the next due time.
RESEAL_LOCK_TIMEOUT_MS = 1000

OPEN_TRANSACTIONS_SQL = """
SELECT now(),
       min(xact_start) FILTER (WHERE backend_type = 'client backend'),
       count(*) FILTER (WHERE backend_type IS NULL)  -- another role's session, details hidden
FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
"""
SEALED_COUNTS_SQL = "SELECT " + ", ".join(
    f"(SELECT count(*) FROM {table} WHERE {col} >= %(start)s AND {col} < %(boundary)s)"
    for table, col in DAY_COLUMNS.items()
)


@dataclass(frozen=True)
class Seal:
    day_start: datetime
    boundary: datetime
    counts: dict[str, int]


class DaySeals:
    """The current day's sealed prefix, recounted in a background thread."""

    def __init__(
        self, conn: PgConnection, clock: Callable[[], datetime], reseal_seconds: float = 60.0
    ) -> None:
        self.conn = conn  # its own connection: a recount never delays a scrape
        self.clock = clock
        self.reseal_seconds = reseal_seconds
        self._lock = threading.Lock()
        self._seal: Seal | None = None
        self._running = False
        self._last_started = float("-inf")
        self._warned_invisible = False

    def current(self, day_start: datetime) -> Seal | None:
        with self._lock:
            seal = self._seal
        return seal if seal is not None and seal.day_start == day_start else None

    def maybe_reseal(self, day_start: datetime, day_end: datetime) -> None:
        """Start a background recount when this day has no seal or the seal is old."""
        with self._lock:
            stale = time.monotonic() - self._last_started >= self.reseal_seconds
            missing = self._seal is None or self._seal.day_start != day_start
            if self._running or not (stale or missing):
                return
            self._running = True
            self._last_started = time.monotonic()
        threading.Thread(
            target=self._reseal_quietly, args=(day_start, day_end), name="day-reseal", daemon=True
        ).start()

    def _reseal_quietly(self, day_start: datetime, day_end: datetime) -> None:
        try:
            self.reseal(day_start, day_end)
        except Exception as exc:  # noqa: BLE001 - the old seal (or a full count) still answers
            log.warning(
                "recounting today's rows failed (scrapes count the unsealed range): %s", exc
            )
        finally:
            with self._lock:
                self._running = False

    def reseal(self, day_start: datetime, day_end: datetime) -> Seal | None:
        """Count [day_start, B) for a provably final B and keep it. Synchronous."""
        deadline = Deadline(RESEAL_TIMEOUT_SECONDS)
        [[(db_now, oldest_open, invisible)]] = self.conn.query(
            deadline, [(OPEN_TRANSACTIONS_SQL, None)]
        )
        if invisible:
            if not self._warned_invisible:
                self._warned_invisible = True
                log.warning(
                    "the exporter's PostgreSQL role cannot see other roles' transactions; "
                    "grant it pg_monitor so today's counts need not rescan the whole day"
                )
            return None
        boundary = min(t for t in (db_now, oldest_open, self.clock()) if t is not None) - SAFETY
        boundary = max(day_start, min(boundary, day_end))
        # A new statement, so a new snapshot: everything that committed before the
        # statement above is visible to this count.
        [[counts]] = self.conn.query(
            deadline,
            [(SEALED_COUNTS_SQL, {"start": day_start, "boundary": boundary})],
            lock_timeout_ms=RESEAL_LOCK_TIMEOUT_MS,
        )
        seal = Seal(
            day_start, boundary, dict(zip(DAY_COLUMNS, (int(c) for c in counts), strict=True))
        )
        with self._lock:
            self._seal = seal  # the newest count also reflects backfills and deletes
        return seal
