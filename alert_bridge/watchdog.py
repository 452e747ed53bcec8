"""Dead man's switch: Alertmanager's always-firing `Watchdog` alert is routed to
`/alertmanager/watchdog`; each firing notification is a heartbeat.

Once none has arrived for `BRIDGE_WATCHDOG_PROBE_AFTER_SECONDS`, the bridge asks
Prometheus and Alertmanager their health (alert_bridge/probe.py): one that is down
pages at once, naming it. With both healthy, the page waits for the full
`BRIDGE_WATCHDOG_TIMEOUT_SECONDS` (the break is between them and the bridge: the
rule, the route, the token). The critical recipients of every channel are paged
directly (bypassing Alertmanager, which may be what is broken), once; when
heartbeats resume they get a "recovered" notice saying how long it lasted. The state
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
import time
from collections.abc import Callable
from typing import Any

from alert_bridge.config import AlertConfig
from alert_bridge.direct import DirectPager
from alert_bridge.messages import watchdog_title
from alert_bridge.probe import Finding, PipelineProbe
from alert_bridge.store import Store, is_storage_error
from common.periodic import Periodic

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
        probe: PipelineProbe | None = None,
        probe_after: float | None = None,
        runbook_url: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        # Heartbeats, timeouts and the grace after a restart are judged on this clock
        # (tests pass one they move by hand; the outbox keeps real time).
        self.clock = clock
        self.store = store
        self.runbook_url = runbook_url
        self.probe = probe
        self.probe_after = timeout if probe_after is None else min(probe_after, timeout)
        self.direct = direct
        # When the "missing" page went out directly (outbox not writable): since when.
        self._paged_directly: float | None = None
        self.config = config
        self.timeout = timeout
        self.interval = interval
        self.on_enqueue = on_enqueue
        # No page before this process has itself waited a full timeout: after downtime
        # of the bridge, Alertmanager needs a moment to reach it again.
        self.started_at = clock()
        # Its `ticks` count completed checks (tests wait on them).
        self.loop = Periodic(
            "bridge-watchdog", interval, lambda: self.check(self.clock()), logger=log
        )

    @property
    def enabled(self) -> bool:
        return self.timeout > 0

    def start(self) -> None:
        with self.store.tx() as conn:
            self.store.watchdog_row(conn, self.clock())
        if self.enabled:
            self.loop.start()

    def stop(self) -> None:
        self.loop.stop()

    def _enqueue(self, conn, event: str, reference: float, body: dict[str, Any]) -> int:  # type: ignore[no-untyped-def]
        body = {**body, "runbook_url": self.runbook_url}
        new, _ = self.store.add_notification(
            conn,
            key=_key(event, reference),
            kind="watchdog",
            severity="critical",
            status=event,
            title=watchdog_title(event, body),
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

    def _overdue(self, now: float) -> float | None:
        """Seconds since the last sign of life, or None when there is nothing to check."""
        with self.store.tx() as conn:
            row = self.store.watchdog_row(conn, now)
        if row["state"] == "missing" or self._paged_directly is not None:
            return None
        return float(now - max(row["last_heartbeat"] or row["armed_at"], self.started_at))

    def _findings(self, now: float) -> list[Finding]:
        """Ask Prometheus and Alertmanager once the heartbeat is late (outside any
        transaction: a probe can take seconds)."""
        try:
            overdue = self._overdue(now)
        except Exception:  # noqa: BLE001 - the store's trouble is check()'s to handle
            overdue = self.probe_after
        if self.probe is None or overdue is None or overdue < self.probe_after:
            return []
        findings = self.probe.check()
        for f in findings:
            if not f.healthy:
                log.error(
                    "no watchdog heartbeat for %.0fs and %s %s", overdue, f.component, f.detail
                )
        return findings

    def check(self, now: float) -> bool:
        """Page if the heartbeat is overdue; True when this call paged."""
        findings = self._findings(now)
        broken = any(not f.healthy for f in findings)
        body: dict[str, object] | None = None
        direct = self._paged_directly
        try:
            with self.store.tx() as conn:
                row = self.store.lock_watchdog(conn, now)
                if row["state"] == "missing":
                    return False
                reference = max(row["last_heartbeat"] or row["armed_at"], self.started_at)
                overdue = now - reference
                if overdue < self.timeout and not (broken and overdue >= self.probe_after):
                    return False
                body = {
                    "last_heartbeat": row["last_heartbeat"],
                    "timeout_seconds": self.timeout,
                    "silent_seconds": overdue,
                    "findings": [f.as_dict() for f in findings],
                }
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
        body["runbook_url"] = self.runbook_url
        self.direct.page(_key("missing", now), "missing", body, self.config.critical_pager())
        return True

    def state(self) -> dict[str, object]:
        with self.store.tx() as conn:
            row = self.store.watchdog_row(conn, self.clock())
        return {
            "state": row["state"],
            "last_heartbeat": row["last_heartbeat"],
            "timeout_seconds": self.timeout,
            "probe_after_seconds": self.probe_after,
            "probes": sorted(self.probe.components) if self.probe else [],
            "enabled": self.enabled,
        }
