"""A deadline on every round trip the app makes to PostgreSQL, and failing fast while
the server does not answer.

PostgreSQL's `statement_timeout` bounds a slow statement, but only a server that runs
can enforce it: a stopped or wedged server (SIGSTOP, a hung disk, a network black hole
whose kernel still ACKs) would leave the request waiting for as long as the fault
lasts. So every statement, BEGIN, COMMIT and new connection has a client deadline a
little longer than `statement_timeout` (asyncpg's `command_timeout` and connect
`timeout`, app/db.py); when it passes, the connection is closed at once (the server
rolls back what it had not committed when it wakes) and the request answers 503.

After such a timeout the database is "stalled": rather than let every request wait the
full deadline (at 20 requests/s the waits pile up without bound), round trips fail at
once with `DatabaseStalled`, except one probe per `probe_interval`; the first probe
that gets an answer ends the stall. Everything here runs on the worker's event loop.

The app's handler (app/errors.py) answers 503 with `Retry-After` and counts each kind
in tracetrack_db_timeouts_total (`timeout_kind`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import asyncpg

log = logging.getLogger(__name__)

# How much longer than statement_timeout the client waits: the server's own cancel
# (which keeps the connection usable) should always come first when the server runs.
DEADLINE_GRACE_SECONDS = 1.0
PROBE_INTERVAL_SECONDS = 1.0
# Values of the `kind` label of tracetrack_db_timeouts_total.
TIMEOUT_KINDS = ("statement_timeout", "lock_timeout", "no_answer", "failed_fast")


class DatabaseTimeout(Exception):
    """PostgreSQL did not answer in time (a kind of "database unavailable")."""


class DatabaseNotAnswering(DatabaseTimeout):
    """The server did not answer a round trip within the client deadline."""


class DatabaseStalled(DatabaseTimeout):
    """Failed at once: the server stopped answering recently and a probe has not yet
    seen it answer again."""


def timeout_kind(error: BaseException | None) -> str | None:
    """Which of TIMEOUT_KINDS an error is, or None when it is no timeout."""
    if isinstance(error, DatabaseStalled):
        return "failed_fast"
    if isinstance(error, DatabaseNotAnswering):
        return "no_answer"
    if isinstance(error, asyncpg.LockNotAvailableError):
        return "lock_timeout"
    if isinstance(error, asyncpg.QueryCanceledError):
        return "statement_timeout"
    return None


class Deadlines:
    """The stall breaker: `admit()` before a round trip, `answered()` after an answer,
    `no_answer()` when the deadline passed. One event loop: no locks needed."""

    def __init__(
        self,
        seconds: float,
        probe_interval: float = PROBE_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seconds = seconds
        self.probe_interval = probe_interval
        self.clock = clock
        self._stalled_since: float | None = None
        self._next_probe = 0.0

    @property
    def stalled(self) -> bool:
        return self._stalled_since is not None

    def admit(self) -> None:
        """Raise DatabaseStalled unless the server is answering or it is time to probe."""
        if self._stalled_since is None:  # the common case
            return
        now = self.clock()
        if now >= self._next_probe:
            # One probe at a time: the next may go once this one had its whole deadline.
            self._next_probe = now + self.probe_interval + self.seconds
            return
        raise DatabaseStalled(
            f"PostgreSQL has not answered for {now - self._stalled_since:.0f}s (no answer"
            f" within {self.seconds:g}s); not waiting again until a probe gets an answer"
        )

    def answered(self) -> None:
        if self._stalled_since is None:
            return
        since = self.clock() - self._stalled_since
        self._stalled_since = None
        log.warning("PostgreSQL answers again after %.1fs without an answer", since)

    def no_answer(self) -> None:
        now = self.clock()
        if self._stalled_since is None:
            self._stalled_since = now
            log.error(
                "PostgreSQL did not answer within %gs: failing fast, probing every %gs",
                self.seconds,
                self.probe_interval,
            )
        self._next_probe = now + self.probe_interval
