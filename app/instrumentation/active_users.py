"""`tracetrack_active_users`: distinct users with a request in the last 5 minutes.

Every worker must count the same user once, so the workers share one small SQLite
table (user_id primary key -> last seen) in the multiprocess directory: they are
processes of one `tracetrack app` on one host, which already share that directory,
so this needs no network hop and has no failure mode of its own beyond the disk.

The hot path is a dict lookup: a worker writes a user's timestamp at most once per
`write_interval` (30 s). The recorded time may therefore lag the user's last request
by up to that interval, so a user leaves the count up to 30 s early — immaterial
for a 5-minute window, and what keeps the cost per request at ~nothing.

Without a shared directory (one process, e.g. tests with TestClient) the same
throttled timestamps live in memory.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from pathlib import Path

log = logging.getLogger(__name__)

WINDOW_SECONDS = 300.0
WRITE_INTERVAL_SECONDS = 30.0

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS active_users ("
    " user_id INTEGER PRIMARY KEY, last_seen REAL NOT NULL) WITHOUT ROWID"
)
_UPSERT = (
    "INSERT INTO active_users (user_id, last_seen) VALUES (?, ?) "
    "ON CONFLICT (user_id) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)"
)


class ActiveUsers:
    """Records users seen by this worker; counts users seen by any worker."""

    def __init__(
        self,
        path: Path | None = None,
        window: float = WINDOW_SECONDS,
        write_interval: float = WRITE_INTERVAL_SECONDS,
    ) -> None:
        self.path = path
        self.window = window
        self.write_interval = write_interval
        # user_id -> when this worker last recorded them (the whole store without `path`).
        self._recorded: dict[int, float] = {}
        self._prune_above = 10_000
        self._writer: sqlite3.Connection | None = None
        self._writer_pid = 0
        self._last_error_log = 0.0

    # --- hot path (event loop) ---------------------------------------------
    def seen(self, user_id: int, now: float) -> None:
        last = self._recorded.get(user_id)
        if last is not None and now - last < self.write_interval:
            return
        self._recorded[user_id] = now
        if len(self._recorded) > self._prune_above:
            self._prune(now)
        if self.path is not None:
            self._write(user_id, now)

    def _write(self, user_id: int, now: float) -> None:
        try:
            self._connection().execute(_UPSERT, (user_id, now))
        except sqlite3.Error as exc:
            # Never fail a request for a metric; retry with this user's next request.
            self._recorded.pop(user_id, None)
            if now - self._last_error_log > 60:
                self._last_error_log = now
                log.warning("active users store %s: %s", self.path, exc)

    def _connection(self) -> sqlite3.Connection:
        if self._writer is None or self._writer_pid != os.getpid():
            self._writer = _connect(self.path)  # type: ignore[arg-type]
            self._writer_pid = os.getpid()
        return self._writer

    def _prune(self, now: float) -> None:
        horizon = now - max(self.window, self.write_interval)
        self._recorded = {u: t for u, t in self._recorded.items() if t >= horizon}
        # Doubling keeps pruning amortised O(1) even when every entry is recent.
        self._prune_above = max(10_000, 2 * len(self._recorded))

    # --- scrape (any thread) ---------------------------------------------------
    def count(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        horizon = now - self.window
        if self.path is None:
            return sum(1 for t in list(self._recorded.values()) if t >= horizon)
        conn = _connect(self.path)
        try:
            conn.execute("DELETE FROM active_users WHERE last_seen < ?", (horizon,))
            (n,) = conn.execute(
                "SELECT count(*) FROM active_users WHERE last_seen >= ?", (horizon,)
            ).fetchone()
            return int(n)
        finally:
            conn.close()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=1.0, isolation_level=None, check_same_thread=False)
    # Throwaway data shared by concurrent processes: WAL for readers beside the
    # writer, no fsync because a lost second of "last seen" after a crash is harmless.
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute(_SCHEMA)
    return conn
