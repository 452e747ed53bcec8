"""App replicas with the real parts: two `tracetrack app` processes behind HAProxy
(Debian's, the shipped frontend/backend settings), reaching a real PostgreSQL through
PgBouncer in transaction mode (Debian's, configured as compose's), each scraped on its
own by a real Prometheus with the shipped rules. One replica is killed with -9 while
clients read and write through the load balancer: requests keep succeeding, only the
dead instance's TraceTrackTargetDown fires, and every write a client sent is stored."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg2
import pytest

from app.db import migrate
from common import topology
from common.settings import Settings
from tests.support.appkit import add_user, auth, start_app_process
from tests.support.hakit import HAProxyHandle, PgBouncerHandle, start_haproxy, start_pgbouncer
from tests.support.stack import PrometheusHandle, start_prometheus
from tooling import haconfig, stackconfig
from tooling.pgserver import PostgresServer
from tooling.procs import ManagedProcess, wait_until

PASSWORD = "correct-horse-battery"
# Small pools: the session's PostgreSQL is shared with every other test.
BUDGET = haconfig.ConnectionBudget(app_replicas=2, pool=8, reserve=2)
REPLICA_ENV = {
    "TRACETRACK_MIGRATE_ON_START": "false",  # compose's `migrate` service did it, directly
    "DB_POOL_SIZE_TOTAL": "4",
    "DB_POOL_MAX_OVERFLOW_TOTAL": "4",
    "TRUSTED_PROXY_HOPS": "1",
    # PgBouncer 1.18 in transaction mode cannot follow named prepared statements.
    "DB_STATEMENT_CACHE_SIZE": "0",
}


@dataclass
class Replicas:
    lb: HAProxyHandle
    pgbouncer: PgBouncerHandle
    apps: dict[str, tuple[ManagedProcess, int]]
    prometheus: PrometheusHandle
    database_dsn: str


@pytest.fixture()
def replicas(tmp_path: Path, postgres: PostgresServer, database_url: str) -> Iterator[Replicas]:
    migrate(database_url)
    add_user(database_url, "disp", "dispatcher", PASSWORD)
    name = database_url.rsplit("/", 1)[1]
    started: list[ManagedProcess] = []
    pgbouncer = start_pgbouncer(
        tmp_path / "pgbouncer",
        db_port=postgres.port,
        db_name=name,
        budget=BUDGET,
        settings=Settings(),
    )
    started.append(pgbouncer.proc)
    try:
        apps = {}
        for replica in ("app-1", "app-2"):
            proc, port = start_app_process(
                tmp_path / replica, pgbouncer.url(name), workers=1, env=REPLICA_ENV
            )
            started.append(proc)
            apps[replica] = (proc, port)
        lb = start_haproxy(
            tmp_path / "haproxy",
            {replica: f"127.0.0.1:{port}" for replica, (_p, port) in apps.items()},
        )
        started.append(lb.proc)
        rules = stackconfig.write_rules(tmp_path / "rules.yml", for_=stackconfig.FAST_FOR)
        prom = start_prometheus(
            tmp_path / "prometheus",
            targets={topology.APP_JOB: [f"127.0.0.1:{port}" for _p, port in apps.values()]},
            rule_files=[rules],
        )
        started.append(prom.proc)
        prom.wait_targets_up({topology.APP_JOB})
        yield Replicas(lb, pgbouncer, apps, prom, postgres.dsn(name))
    finally:
        for proc in reversed(started):
            proc.stop()


@dataclass
class Traffic:
    """Clients of the load balancer, as a real client behaves: a failed request
    (connection error or 5xx) is retried; a create that finds its bag already there
    (409, the first attempt got through) counts as done."""

    base_url: str
    token: str
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    written: list[str] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    first_try_failures: list[str] = field(default_factory=list)
    gave_up: list[str] = field(default_factory=list)

    def _send(self, client: httpx.Client, method: str, path: str, **kw: object) -> int | None:
        for attempt in range(20):
            try:
                status = client.request(method, path, headers=auth(self.token), **kw).status_code  # type: ignore[arg-type]
            except httpx.TransportError as exc:
                status, why = None, type(exc).__name__
            else:
                why = str(status)
            if status is not None and status < 500:
                return status
            with self.lock:
                self.outcomes[f"retry after {why}"] += 1
                if attempt == 0:
                    self.first_try_failures.append(f"{method} {path}: {why}")
            self.stop.wait(0.2)
        with self.lock:
            self.gave_up.append(f"{method} {path}")
        return None

    def writer(self, prefix: str) -> None:
        with httpx.Client(base_url=self.base_url, timeout=10) as client:
            n = 0
            while not self.stop.is_set():
                qr = f"{prefix}{n:06d}"
                status = self._send(
                    client, "POST", "/api/bags", json={"qr_id": qr, "bag_type": "parent"}
                )
                with self.lock:
                    self.outcomes[f"create {status}"] += 1
                    if status in (201, 409):
                        self.written.append(qr)
                n += 1

    def reader(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=10) as client:
            while not self.stop.is_set():
                with self.lock:
                    known = self.written[-1] if self.written else None
                if known is None:
                    self.stop.wait(0.05)
                    continue
                status = self._send(client, "GET", f"/api/bags/{known}")
                with self.lock:
                    self.outcomes[f"read {status}"] += 1


def firing_target_down(prom: PrometheusHandle) -> set[str]:
    return {
        a["labels"]["instance"]
        for a in prom.alerts()
        if a["labels"]["alertname"] == "TraceTrackTargetDown" and a["state"] == "firing"
    }


def test_killing_a_replica_loses_no_request_and_no_write(replicas: Replicas) -> None:
    with httpx.Client(base_url=replicas.lb.url, timeout=10) as client:
        login = client.post("/api/auth/login", json={"username": "disp", "password": PASSWORD})
        assert login.status_code == 200, login.text
    traffic = Traffic(replicas.lb.url, login.json()["access_token"])
    threads = [
        threading.Thread(target=traffic.writer, args=("HAW1",)),
        threading.Thread(target=traffic.writer, args=("HAW2",)),
        threading.Thread(target=traffic.reader),
    ]
    for t in threads:
        t.start()
    victim, (victim_proc, victim_port) = "app-1", replicas.apps["app-1"]
    survivor_port = replicas.apps["app-2"][1]
    try:
        wait_until(lambda: len(traffic.written) >= 30, 60, "writes through the load balancer")
        victim_proc.kill9()
        killed_at = len(traffic.written)
        wait_until(
            lambda: firing_target_down(replicas.prometheus) == {f"127.0.0.1:{victim_port}"},
            60,
            f"TraceTrackTargetDown for {victim}",
        )
        wait_until(lambda: len(traffic.written) >= killed_at + 30, 60, "writes after the kill")
    finally:
        traffic.stop.set()
        for t in threads:
            t.join(30)

    # Only the dead instance is reported, and the survivor is still up.
    assert firing_target_down(replicas.prometheus) == {f"127.0.0.1:{victim_port}"}
    up = {
        r["metric"]["instance"]: r["value"][1]
        for r in replicas.prometheus.query(f'up{{job="{topology.APP_JOB}"}}')
    }
    assert up == {f"127.0.0.1:{victim_port}": "0", f"127.0.0.1:{survivor_port}": "1"}

    # Requests kept succeeding: at most the ones in flight on the victim when it died
    # failed once (one per client), and every one succeeded on its retry.
    assert not traffic.gave_up, traffic.gave_up
    assert len(traffic.first_try_failures) <= len(threads), traffic.first_try_failures
    assert traffic.outcomes["read 200"] > 0, traffic.outcomes

    # No write lost: every bag a client was told about is in PostgreSQL.
    conn = psycopg2.connect(replicas.database_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT qr_id FROM bags WHERE qr_id = ANY(%s)", (traffic.written,))
            stored = {row[0] for row in cur.fetchall()}
    finally:
        conn.close()
    assert len(traffic.written) >= killed_at + 30
    assert stored == set(traffic.written), sorted(set(traffic.written) - stored)[:5]
