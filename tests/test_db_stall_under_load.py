"""Issue 17, end to end: a real PostgreSQL stopped with SIGSTOP while clients keep
reading and scanning through the real `tracetrack app` (two workers).

Every request answers within the bound (no client timeout), a failure is a 503 with
Retry-After, and after SIGCONT each scan is stored exactly once: clients retry every
scan that did not get a 2xx with its Idempotency-Key, and the database holds exactly
one scan per key, the one the 2xx answers name. Nothing answered with an error is
stored except what its retry returns.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg2
import pytest

from app.db import migrate
from tests.support.appkit import add_user, start_app_process
from tests.support.faults import frozen, retry_scan
from tooling.pgserver import PostgresServer
from tooling.procs import wait_until

# The client deadline is 0.5 + 1 s; a request may also wait for a connection (2 s) or
# a thread. A client that waits longer than this has hung.
CLIENT_TIMEOUT = 15.0
PASSWORD = "correct-horse-battery"


@dataclass
class Outcomes:
    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: list[int] = field(default_factory=list)
    hung: list[str] = field(default_factory=list)
    bad_503: list[str] = field(default_factory=list)
    unanswered_scans: dict[str, dict[str, str]] = field(default_factory=dict)  # key -> body
    answered_scans: dict[str, int] = field(default_factory=dict)  # key -> scan id


@pytest.fixture()
def pg(tmp_path: Path) -> Iterator[PostgresServer]:
    server = PostgresServer(tmp_path / "pg" / "data").start()
    try:
        yield server
    finally:
        server.stop()


def test_a_frozen_database_answers_503_fast_and_retried_scans_are_stored_once(
    pg: PostgresServer, tmp_path: Path
) -> None:
    url = pg.create_database("stall")
    migrate(url)
    add_user(url, "dana", "dispatcher", PASSWORD)
    proc, port = start_app_process(
        tmp_path,
        url,
        workers=2,
        env={
            "DB_STATEMENT_TIMEOUT_MS": "500",
            "DB_LOCK_TIMEOUT_MS": "200",
            "DB_CONNECT_TIMEOUT_SECONDS": "2",
        },
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as c:
            tok = c.post("/api/auth/login", json={"username": "dana", "password": PASSWORD})
            h = {"Authorization": f"Bearer {tok.json()['access_token']}"}
            bags = [{"qr_id": f"S{i}", "bag_type": "parent"} for i in range(20)]
            assert c.post("/api/bags/bulk", json={"bags": bags}, headers=h).status_code == 201

        out = Outcomes()
        stop = threading.Event()

        def client(n: int) -> None:
            with httpx.Client(base_url=base, headers=h, timeout=CLIENT_TIMEOUT) as c:
                i = 0
                while not stop.is_set():
                    i += 1
                    try:
                        if i % 2:
                            key = str(uuid.uuid4())
                            body = {"qr_id": f"S{(n + i) % 20}", "location": f"hub-{n}"}
                            r = c.post("/api/scans", json=body, headers={"Idempotency-Key": key})
                            with out.lock:
                                if r.status_code == 201:
                                    out.answered_scans[key] = r.json()["id"]
                                else:
                                    out.unanswered_scans[key] = body
                        else:
                            r = c.get("/api/bags", params={"q": "S", "limit": 5})
                    except httpx.TimeoutException as exc:
                        with out.lock:
                            out.hung.append(repr(exc))
                        continue
                    with out.lock:
                        out.statuses.append(r.status_code)
                        if r.status_code == 503 and "Retry-After" not in r.headers:
                            out.bad_503.append(r.text)
                    time.sleep(0.02)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        try:
            wait_until(lambda: len(out.statuses) >= 40, 60, "traffic before the fault")
            with frozen(pg.pid):
                frozen_at = len(out.statuses)
                # Enough answers during the stall to see each kind: waited, then fast.
                wait_until(
                    lambda: out.statuses[frozen_at:].count(503) >= 30,
                    60,
                    "503s while PostgreSQL is stopped",
                )
            thawed_at = len(out.statuses)
            wait_until(
                lambda: 201 in out.statuses[thawed_at:] and 200 in out.statuses[thawed_at:],
                60,
                "reads and scans to succeed again",
            )
        finally:
            stop.set()
            for t in threads:
                t.join(CLIENT_TIMEOUT + 5)

        assert out.hung == [], out.hung[:5]
        assert out.bad_503 == [], out.bad_503[:3]
        assert set(out.statuses) <= {200, 201, 503}, set(out.statuses)

        # Clients retry every scan they did not see succeed, with the same key, until it
        # is stored: a 503 (with Retry-After) may still come while a worker's stall
        # breaker waits for its next probe, later on a busy machine than on an idle one.
        deadline = time.monotonic() + 90
        with httpx.Client(base_url=base, headers=h, timeout=CLIENT_TIMEOUT) as c:
            for key, body in out.unanswered_scans.items():
                r = retry_scan(c, key, body, deadline)
                assert r.status_code == 201, r.text
                out.answered_scans[key] = r.json()["id"]
    finally:
        proc.stop()

    conn = psycopg2.connect(pg.dsn("stall"))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id FROM scans")
            stored = sorted(row[0] for row in cur.fetchall())
    finally:
        conn.close()
    # One scan per key, exactly the ones the answers name: none twice, none lost, and
    # none stored for a request whose error was never followed by a retry returning it.
    assert stored == sorted(out.answered_scans.values())
    assert len(stored) == len(out.answered_scans)
