"""Dead man's switch: Alertmanager's always-firing `Watchdog` alert is routed to
`/alertmanager/watchdog`; each firing notification is a heartbeat.

When none arrives for `BRIDGE_WATCHDOG_TIMEOUT_SECONDS`, the critical email and SMS
recipients are paged directly (bypassing Alertmanager, which may be what is
broken), once; when heartbeats resume they get a "recovered" notice. The state
lives in the store, so a restart neither re-pages nor forgets an open page, and
replicas sharing PostgreSQL page once between them.

When the page cannot be written to the outbox (full disk, store down), it is sent
at once without it (alert_bridge/direct.py) and remembered in memory; the store
learns of it when it takes writes again, without a second page.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable

from alert_bridge.config import AlertConfig
from alert_bridge.direct import DirectPager
from alert_bridge.store import Store, is_storage_error

log = logging.getLogger("alert_bridge.watchdog")


def _key(event: str, reference: float) -> str:
    return hashlib.sha256(f"watchdog:{event}:{reference:.6f}".encode()).hexdigest()


class Watchdog:
    def __init__(
        self,
        store: Store,
        config: AlertConfig,
        timeout: float,
        interval: float,
        on_enqueue: Callable[[], None],
        direct: DirectPager | None = None,
    ) -> None:
        self.store = store
        self.direct = direct
        # When the "missing" page went out directly (outbox not writable): since when.
        self._paged_directly: float | None = None
        self.config = config
        self.timeout = timeout
        self.interval = interval
        self.on_enqueue = on_enqueue
        # No page before this process has itself waited a full timeout: after downtime
        # of the bridge, Alertmanager needs a moment to reach it again.
        self.started_at = time.time()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self.timeout > 0

    def start(self) -> None:
        with self.store.tx() as conn:
            self.store.watchdog_row(conn, time.time())
        if self.enabled:
            self._thread = threading.Thread(target=self._run, name="bridge-watchdog", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check(time.time())
            except Exception as exc:  # noqa: BLE001 - keep watching
                log.error("watchdog check failed: %s", exc)

    def _enqueue(self, conn, event: str, reference: float, body: dict) -> int:  # type: ignore[no-untyped-def]
        new, _ = self.store.add_notification(
            conn,
            key=_key(event, reference),
            kind="watchdog",
            severity="critical",
            status=event,
            title="Alerting pipeline (dead man's switch)",
            group_key="watchdog",
            body=json.dumps(body),
            recipients=self.config.critical_pager(),
            now=time.time(),
        )
        return len(new)

    def heartbeat(self, now: float) -> str:
        """Record a heartbeat; returns the state before it."""
        direct = self._paged_directly
        with self.store.tx() as conn:
            row = self.store.lock_watchdog(conn, now)
            missing = row["state"] == "missing" or direct is not None
            since = float(row["changed_at"] if row["state"] == "missing" else direct or now)
            self.store.set_watchdog(
                conn,
                state="ok",
                last_heartbeat=now,
                changed_at=now if row["state"] != "ok" else row["changed_at"],
            )
            if missing:
                n = self._enqueue(
                    conn,
                    "recovered",
                    since,
                    {"last_heartbeat": now, "missing_since": since},
                )
                log.warning("watchdog heartbeats resumed; recovery notice to %d recipients", n)
        self._paged_directly = None
        if missing:
            self.on_enqueue()
        return "missing" if missing else str(row["state"])

    def check(self, now: float) -> bool:
        """Page if the heartbeat is overdue; True when this call paged."""
        body: dict[str, object] | None = None
        direct = self._paged_directly
        try:
            with self.store.tx() as conn:
                row = self.store.lock_watchdog(conn, now)
                if row["state"] == "missing":
                    return False
                reference = max(row["last_heartbeat"] or row["armed_at"], self.started_at)
                if now - reference < self.timeout:
                    return False
                body = {"last_heartbeat": row["last_heartbeat"], "timeout_seconds": self.timeout}
                self.store.set_watchdog(conn, state="missing", changed_at=direct or now)
                # Already paged without the outbox: the store only learns the state.
                n = 0 if direct else self._enqueue(conn, "missing", now, body)
        except Exception as exc:
            if body is None or self.direct is None or not is_storage_error(exc):
                raise
            return self._page_directly(now, body, exc)
        self._paged_directly = None
        if direct:
            return False
        log.error(
            "no watchdog heartbeat for %.0fs: paging %d critical recipients", now - reference, n
        )
        self.on_enqueue()
        return True

    def _page_directly(self, now: float, body: dict[str, object], exc: BaseException) -> bool:
        assert self.direct is not None
        if self._paged_directly is not None:
            self.direct.retry()  # recipients that failed last time
            return False
        self._paged_directly = now
        body["outbox_error"] = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        log.error(
            "no watchdog heartbeat and the outbox cannot be written (%s): paging directly",
            body["outbox_error"],
        )
        self.direct.page(_key("missing", now), "missing", body, self.config.critical_pager())
        return True

    def state(self) -> dict[str, object]:
        with self.store.tx() as conn:
            row = self.store.watchdog_row(conn, time.time())
        return {
            "state": row["state"],
            "last_heartbeat": row["last_heartbeat"],
            "timeout_seconds": self.timeout,
            "enabled": self.enabled,
        }
