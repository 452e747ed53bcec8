"""The faults the fault suite injects (tests/test_faults.py), what on-call is told about
each, what users see and what to do: one table, which the suite asserts and
docs/runbook.md shows ("Faults" section, checked against `render_table()`).

    python -m tooling.fault_catalog      # print the runbook table
"""

from __future__ import annotations

import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Fault:
    key: str  # the suite's test id
    fault: str
    injected: str  # how the suite does it
    # The alert that is the one page, or (dms) the start of the title of the bridge's
    # dead man's switch page (alert_bridge/watchdog.py), which names what is down.
    page: str | None
    severity: str | None
    told: str  # what on-call is told, in words
    users: str  # the client-visible impact
    action: str  # what to do

    dms: bool = False  # paged by the bridge's dead man's switch, not by an alert

    @property
    def told_cell(self) -> str:
        if self.page is None:
            return self.told
        name = f'dead man\'s switch page "{self.page} …"' if self.dms else f"`{self.page}`"
        return f"{self.severity}: {name}. {self.told}"


FAULTS: tuple[Fault, ...] = (
    Fault(
        "postgres_stopped",
        "PostgreSQL stopped",
        "the server shut down (fast mode), then started again",
        "TraceTrackPostgresDown",
        "critical",
        "The symptoms (error rate, error budget, latency, app readiness) are muted.",
        "503 with `Retry-After` on every request that needs the database; cached bag"
        " lookups still answer",
        "Start PostgreSQL. The app reconnects by itself; clients retrying writes with"
        " their `Idempotency-Key` store each once.",
    ),
    Fault(
        "postgres_hung",
        "PostgreSQL hung",
        "the postmaster and every backend stopped with SIGSTOP, then SIGCONT",
        "TraceTrackPostgresDown",
        "critical",
        "Same page: the exporter cannot read it within the scrape, the app's requests"
        " give up on it.",
        "503 with `Retry-After` within the statement timeout + 1 s, then at once until it"
        " answers; no request hangs",
        "Find why it does not answer (`ps` state `T`, a full or hung disk, swapping) and"
        " unblock or restart it; nothing to do in the app.",
    ),
    Fault(
        "redis_killed",
        "Redis killed",
        "redis-server killed with SIGKILL, started again later",
        "TraceTrackRedisDown",
        "warning",
        "Email and webhook only: nobody is woken. The cache fallback warning is muted.",
        "nothing: the app serves from its in-process cache (lower hit rate)",
        "Restart Redis (`tracetrack up` does it by itself); the app returns to it.",
    ),
    Fault(
        "exporter_killed",
        "Exporter killed",
        "`tracetrack exporter` killed with SIGKILL, started again later",
        "TraceTrackTargetDown",
        "warning",
        "Its metrics' alerts (CPU, memory, database, Redis) are blind meanwhile.",
        "nothing",
        "Restart the exporter (`tracetrack up` does it by itself) and read its log.",
    ),
    Fault(
        "app_worker_killed",
        "An app worker killed",
        "one uvicorn worker process killed with SIGKILL",
        None,
        None,
        "Nothing pages: the app's master process starts a new worker within seconds.",
        "the requests in flight on that worker fail; the others are served",
        "Nothing; if it repeats, read the app log (out of memory?).",
    ),
    Fault(
        "alertmanager_hung",
        "Alertmanager hung",
        "Alertmanager stopped with SIGSTOP, then SIGCONT",
        "Alertmanager down",
        "critical",
        "When the Watchdog heartbeats stop, the bridge probes Prometheus and"
        " Alertmanager and pages the critical recipients directly, naming the one down;"
        " a RECOVERED notice follows.",
        "nothing",
        "Restart Alertmanager; alerts held meanwhile are sent when it runs again.",
        dms=True,
    ),
    Fault(
        "bridge_killed",
        "Alert bridge killed",
        "`tracetrack bridge` killed with SIGKILL, started again later",
        "TraceTrackAlertBridgeDown",
        "critical",
        "Sent by Alertmanager itself (its own email, Slack and Discord receivers; no SMS)"
        ' as "Every alert bridge is down". Alerts that fire meanwhile wait in'
        " Alertmanager's retries and reach the bridge when it is back, once.",
        "nothing",
        "Restart the bridge (`tracetrack up` does it by itself); its outbox survives `kill -9`.",
    ),
    Fault(
        "prometheus_killed",
        "Prometheus killed",
        "Prometheus killed with SIGKILL, started again later",
        "Prometheus down",
        "critical",
        "No alert can fire without Prometheus: when the Watchdog heartbeats stop, the"
        " bridge probes and pages directly, naming it; RECOVERED when they resume.",
        "nothing",
        "Restart Prometheus and read its log (disk full? out of memory?).",
        dms=True,
    ),
    Fault(
        "outbox_disk_full",
        "Bridge outbox disk full",
        "the filesystem under the bridge's SQLite outbox filled to ENOSPC, then freed",
        "No alert heartbeat",
        "critical",
        "The bridge cannot store heartbeats or alerts (`/readyz` 503,"
        " `tracetrack_bridge_outbox_writable` 0): it pages directly, saying the outbox"
        " cannot be written. Webhooks get 503, so Alertmanager keeps every alert and"
        " retries.",
        "nothing",
        "Free disk space under the bridge's var directory; the bridge stores and"
        " delivers the retried alerts once.",
        dms=True,
    ),
)

BY_KEY = {f.key: f for f in FAULTS}

TABLE_START = "<!-- faults table: generated by `python -m tooling.fault_catalog` -->"
TABLE_END = "<!-- end of faults table -->"


def render_table() -> str:
    rows = [
        "| Fault | What you are told | What users see | What to do |",
        "|---|---|---|---|",
    ]
    for f in FAULTS:
        rows.append(f"| {f.fault} | {f.told_cell} | {f.users} | {f.action} |")
    return "\n".join([TABLE_START, *rows, TABLE_END])


def main() -> int:
    sys.stdout.write(render_table() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
