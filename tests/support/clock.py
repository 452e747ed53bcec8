"""A clock the test moves by hand: time-dependent logic takes `clock=` and the test
decides when a timeout has passed, whatever the machine's load."""

from __future__ import annotations

import threading
import time


class FakeClock:
    """Seconds since the epoch, starting now and moving only on `advance`."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds
