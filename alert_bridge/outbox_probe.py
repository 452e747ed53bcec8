"""Keeps the outbox's write health fresh in the background.

Readiness and `/metrics` report whether the outbox takes writes
(`Store.write_health`): the outcome of the last write transaction. When nothing was
written for a while, this thread writes a probe row, so the answer is never stale
by more than `interval`. It runs on its own thread because a write can wait on
SQLite's busy timeout or a slow disk, and a scrape or a health check must answer
at once.
"""

from __future__ import annotations

import logging

from alert_bridge.store import Store
from common.periodic import Periodic

log = logging.getLogger("alert_bridge.outbox")


class OutboxProbe:
    def __init__(self, store: Store, owner: str, interval: float) -> None:
        self.store = store
        self.owner = owner
        self.interval = interval
        self._was_ok = True
        self._loop = Periodic("bridge-outbox-probe", interval, self._probe, logger=log)

    def start(self) -> None:
        self.store.probe_write(self.owner)  # known before the first readiness check
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop(10)

    def _probe(self) -> None:
        health = self.store.probe_write(self.owner, max_age=self.interval)
        if health.ok != self._was_ok:  # log changes, not every probe
            if health.ok:
                log.warning("the outbox takes writes again")
            else:
                log.error("the outbox cannot be written: %s", health.error)
            self._was_ok = health.ok
