"""A daemon thread calling a function every few seconds until stopped.

Background work that must never land on a request or a webhook answer: the bridge's
dead man's switch, reminders and outbox probe, the app guard's block refresher and
event writer. A tick that raises is logged and the schedule goes on (one bad check
must not end the dead man's switch for good). With `wake`, the thread sleeps until
that event is set and then waits one interval before calling (a writer that
batches: idle, it never wakes).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("tracetrack.periodic")


class Periodic:
    def __init__(
        self,
        name: str,
        interval: float,
        tick: Callable[[], object],
        wake: threading.Event | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.name = name
        self.interval = interval
        self._tick = tick
        self._wake = wake
        self._log = logger or log
        self.ticks = 0  # completed calls, failed ones included (tests wait on it)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._wake is not None:
            self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while True:
            if self._wake is not None:
                self._wake.wait()
            if self._stop.wait(self.interval):
                return
            try:
                self._tick()
            except Exception as exc:  # noqa: BLE001 - keep the schedule going
                self._log.error("%s failed: %s", self.name, exc)
            self.ticks += 1
