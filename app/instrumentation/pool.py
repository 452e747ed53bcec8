"""`tracetrack_db_pool_connections{state}` from the worker's connection pool.

The source is the app's `app.db.Database` (its `stats()`), or a SQLAlchemy Engine
(tests and benches that instrument a bare app).

Each worker samples its own pool into a `livesum` gauge (so /metrics shows the sum
over live workers). Sampling on a timer instead of counting pool events: the
checkin event fires before the connection is back in the pool and overflow
connections are closed rather than returned, so counters kept from events drift,
while `checkedout()`/`checkedin()` are exact at any moment.
"""

from __future__ import annotations

import threading
import weakref
from typing import Protocol

from prometheus_client import Gauge
from sqlalchemy import Engine

SAMPLE_INTERVAL_SECONDS = 1.0


class PoolStats(Protocol):
    def stats(self) -> tuple[int, int]:
        """(checked out, idle) connections right now."""
        ...


class PoolSampler:
    def __init__(
        self, engine: Engine | PoolStats, gauge: Gauge, interval: float = SAMPLE_INTERVAL_SECONDS
    ) -> None:
        # A weak reference: a sampler must not keep a discarded app's engine alive.
        self._engine = weakref.ref(engine)
        self._checked_out = gauge.labels(state="checked_out")
        self._idle = gauge.labels(state="idle")
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> bool:
        engine = self._engine()
        if engine is None:
            return False
        if not isinstance(engine, Engine):
            checked_out_now, idle_now = engine.stats()
            self._checked_out.set(checked_out_now)
            self._idle.set(idle_now)
            return True
        pool = engine.pool  # read each time: dispose() replaces it
        checked_out = getattr(pool, "checkedout", None)
        idle = getattr(pool, "checkedin", None)
        if checked_out is None or idle is None:  # pools without counts (NullPool)
            return True
        self._checked_out.set(checked_out())
        self._idle.set(idle())
        return True

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self.sample()
        self._thread = threading.Thread(target=self._run, name="db-pool-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if not self.sample():
                return
