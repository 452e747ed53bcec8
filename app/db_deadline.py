"""A deadline on every round trip the app makes to PostgreSQL, and failing fast while
the server does not answer.

PostgreSQL's `statement_timeout` bounds a slow statement, but only a server that runs
can enforce it: a stopped or wedged server (SIGSTOP, a hung disk, a network black hole
whose kernel still ACKs) leaves the request waiting on its pooled connection for as
long as the fault lasts. So each execute, commit and rollback is armed with a client
deadline a little longer than `statement_timeout`; when it passes, one monitor thread
shuts the connection's socket down, which wakes libpq at once with "server closed the
connection" (SQLAlchemy then discards the connection, and the server rolls back what
it had not committed when it wakes).

After such a timeout the database is "stalled": rather than let every request queue a
thread for the full deadline (at 20 requests/s that exhausts the thread pool and the
wait grows without bound), round trips fail at once with `DatabaseStalled`, except one
probe per `probe_interval`; the first probe that gets an answer ends the stall.

Used through `connect_args(...)` in app/db.py; the errors are psycopg2
`OperationalError`s, which SQLAlchemy wraps in its own, so the app's handler answers
503 with `Retry-After` (app/main.py) and counts them by `timeout_kind`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2
import psycopg2.errors
import psycopg2.extensions

log = logging.getLogger(__name__)

# How much longer than statement_timeout the client waits: the server's own cancel
# (which keeps the connection usable) should always come first when the server runs.
DEADLINE_GRACE_SECONDS = 1.0
PROBE_INTERVAL_SECONDS = 1.0
# Values of the `kind` label of tracetrack_db_timeouts_total.
TIMEOUT_KINDS = ("statement_timeout", "lock_timeout", "no_answer", "failed_fast")


class DatabaseNotAnswering(psycopg2.OperationalError):
    """The server did not answer a round trip within the client deadline."""


class DatabaseStalled(psycopg2.OperationalError):
    """Failed at once: the server stopped answering recently and a probe has not yet
    seen it answer again."""


def timeout_kind(error: BaseException | None) -> str | None:
    """Which of TIMEOUT_KINDS a DBAPI error is, or None when it is no timeout."""
    if isinstance(error, DatabaseStalled):
        return "failed_fast"
    if isinstance(error, DatabaseNotAnswering):
        return "no_answer"
    if isinstance(error, psycopg2.errors.LockNotAvailable):
        return "lock_timeout"
    if isinstance(error, psycopg2.extensions.QueryCanceledError):
        return "statement_timeout"
    return None


class _Call:
    __slots__ = ("conn", "deadline", "fired")

    def __init__(self, conn: Any, deadline: float) -> None:
        self.conn = conn
        self.deadline = deadline
        self.fired = False


def _shutdown_socket(conn: Any) -> None:
    # On a duplicate of the descriptor: shutdown() acts on the socket itself, so libpq,
    # blocked in poll() on the original, sees end-of-file; closing our duplicate leaves
    # libpq's descriptor for psycopg2 to close.
    try:
        sock = socket.socket(fileno=os.dup(conn.fileno()))
    except (OSError, psycopg2.Error):
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()


class Deadlines:
    """Arms round trips with a deadline; one monitor thread enforces them; tracks stalls."""

    def __init__(
        self,
        seconds: float,
        probe_interval: float = PROBE_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seconds = seconds
        self.probe_interval = probe_interval
        self.clock = clock
        self._cond = threading.Condition()
        self._armed: set[_Call] = set()
        self._thread: threading.Thread | None = None
        self._stalled_since: float | None = None
        self._next_probe = 0.0

    # --- the stall breaker ----------------------------------------------------------
    @property
    def stalled(self) -> bool:
        return self._stalled_since is not None

    def admit(self) -> None:
        """Raise DatabaseStalled unless the server is answering or it is time to probe."""
        if self._stalled_since is None:  # the common case: no lock taken
            return
        with self._cond:
            if self._stalled_since is None:
                return
            now = self.clock()
            if now >= self._next_probe:
                self._next_probe = now + self.probe_interval + self.seconds
                return
            since = now - self._stalled_since
        raise DatabaseStalled(
            f"PostgreSQL has not answered for {since:.0f}s (no answer within"
            f" {self.seconds:g}s); not waiting again until a probe gets an answer"
        )

    def answered(self) -> None:
        if self._stalled_since is None:
            return
        with self._cond:
            if self._stalled_since is None:
                return
            since = self.clock() - self._stalled_since
            self._stalled_since = None
        log.warning("PostgreSQL answers again after %.1fs without an answer", since)

    def no_answer(self) -> None:
        """A round trip the monitor did not see timed out (libpq's connect_timeout)."""
        with self._cond:
            self._stall(self.clock())

    def _stall(self, now: float) -> None:
        if self._stalled_since is None:
            self._stalled_since = now
            log.error(
                "PostgreSQL did not answer within %gs: failing fast, probing every %gs",
                self.seconds,
                self.probe_interval,
            )
        self._next_probe = now + self.probe_interval

    # --- deadlines ----------------------------------------------------------------------
    def arm(self, conn: Any) -> _Call:
        call = _Call(conn, self.clock() + self.seconds)
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._monitor, name="db-deadlines", daemon=True
                )
                self._thread.start()
            was_empty = not self._armed
            self._armed.add(call)
            if was_empty:  # every deadline is now + seconds: only then is it the earliest
                self._cond.notify()
        return call

    def disarm(self, call: _Call) -> bool:
        """True when the deadline had already fired (the connection is shut down)."""
        with self._cond:
            self._armed.discard(call)
            return call.fired

    def _monitor(self) -> None:
        with self._cond:
            while True:
                if not self._armed:
                    self._cond.wait()
                    continue
                now = self.clock()
                for call in [c for c in self._armed if c.deadline <= now]:
                    # Under the lock: the call cannot be disarmed (and its connection
                    # reused or closed) while we shut its socket down.
                    call.fired = True
                    self._armed.discard(call)
                    _shutdown_socket(call.conn)
                    self._stall(now)
                if self._armed:
                    earliest = min(c.deadline for c in self._armed)
                    self._cond.wait(max(0.01, earliest - now))

    @contextmanager
    def round_trip(self, conn: Any) -> Iterator[None]:
        """Bound one blocking libpq call on `conn`."""
        try:
            self.admit()
        except DatabaseStalled:
            # Never let a stalled connection go back to the pool in a transaction:
            # closed, SQLAlchemy discards it instead of rolling it back (which would wait).
            conn.close()
            raise
        call = self.arm(conn)
        try:
            yield
        except psycopg2.OperationalError as exc:
            if self.disarm(call):
                raise DatabaseNotAnswering(
                    f"PostgreSQL did not answer within {self.seconds:g}s"
                ) from exc
            if timeout_kind(exc) is not None:
                self.answered()  # the server cancelled it: it is running
            raise
        except BaseException:
            if not self.disarm(call):
                self.answered()  # an SQL error is an answer too
            raise
        else:
            self.disarm(call)
            self.answered()


class _Cursor(psycopg2.extensions.cursor):
    def execute(self, query: Any, vars: Any = None) -> Any:  # noqa: A002 - DBAPI name
        with self.connection.deadlines.round_trip(self.connection):
            return super().execute(query, vars)

    def executemany(self, query: Any, vars_list: Any) -> Any:
        with self.connection.deadlines.round_trip(self.connection):
            return super().executemany(query, vars_list)


class _Connection(psycopg2.extensions.connection):
    deadlines: Deadlines  # set on the subclass `connection_factory` builds

    def __init__(self, dsn: str, *args: Any, **kwargs: Any) -> None:
        # No connection attempt while stalled, but a probe may connect; libpq's own
        # connect_timeout bounds it (the monitor cannot: there is no socket yet).
        self.deadlines.admit()
        try:
            super().__init__(dsn, *args, **kwargs)
        except psycopg2.OperationalError as exc:
            if "timeout expired" in str(exc):
                self.deadlines.no_answer()
                raise DatabaseNotAnswering(f"PostgreSQL did not answer: {exc}".strip()) from exc
            raise
        self.deadlines.answered()
        self.cursor_factory = _Cursor

    def commit(self) -> None:
        with self.deadlines.round_trip(self):
            super().commit()

    def rollback(self) -> None:
        with self.deadlines.round_trip(self):
            super().rollback()


def report_pre_ping_timeout(ctx: Any) -> None:
    """SQLAlchemy `handle_error` hook: when the pool's pre-ping hits the deadline, fail
    the checkout with that error rather than reconnect (which would fail fast and make
    a request that waited the whole deadline look like it had not waited at all)."""
    if ctx.is_pre_ping and isinstance(ctx.original_exception, DatabaseNotAnswering):
        raise DatabaseNotAnswering(str(ctx.original_exception))


def connection_factory(deadlines: Deadlines) -> type[psycopg2.extensions.connection]:
    """A psycopg2 connection class whose round trips are bounded by `deadlines`."""
    return type("DeadlineConnection", (_Connection,), {"deadlines": deadlines})
