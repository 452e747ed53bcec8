"""A daemon thread calling a function every few seconds until stopped (the block list's
refresher, the event writer): their work never lands on a request. With `wake`, it
sleeps until that event is set and then waits one interval before calling (a writer
that batches: idle, it never wakes)."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Periodic:
    def __init__(
        self,
        name: str,
        interval: float,
        tick: Callable[[], None],
        wake: threading.Event | None = None,
    ) -> None:
        self.name = name
        self._wake = wake
        self.interval = interval
        self._tick = tick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._wake is not None:
            self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while True:
            if self._wake is not None:
                self._wake.wait()
            if self._stop.wait(self.interval):
                return
            self._tick()
