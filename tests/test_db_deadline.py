"""Issue 17: a hung PostgreSQL must not hang requests (app/db_deadline.py).

A real PostgreSQL is stopped with SIGSTOP: statements on pooled connections, commits
and new connections all give up at the client deadline, the app answers 503 with
Retry-After and counts the timeout; once the server runs again the app recovers
without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from app.db import Database, migrate
from app.db_deadline import (
    DatabaseNotAnswering,
    DatabaseStalled,
    Deadlines,
    timeout_kind,
)
from app.main import create_app
from common.settings import Settings
from tests.support.appkit import add_user, app_settings, auth, token
from tests.support.faults import frozen
from tooling.pgserver import PostgresServer
from tooling.procs import wait_until

# Short bounds keep the test quick: the client deadline is 0.5 + 1 s.
FAST: dict[str, Any] = {
    "db_statement_timeout_ms": 500,
    "db_lock_timeout_ms": 200,
    "db_connect_timeout_seconds": 2,
}


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A PostgreSQL of this module's own: the tests stop it with SIGSTOP."""
    server = PostgresServer(tmp_path_factory.mktemp("pg-deadline") / "data").start()
    try:
        yield server
    finally:
        server.stop()


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_stall_fails_fast_until_a_probe_gets_an_answer() -> None:
    clock = FakeClock()
    d = Deadlines(2.0, probe_interval=1.0, clock=clock)
    d.admit()  # not stalled: passes
    d.no_answer()
    assert d.stalled
    with pytest.raises(DatabaseStalled, match="has not answered"):
        d.admit()
    clock.now += 1.0
    d.admit()  # the probe
    with pytest.raises(DatabaseStalled):
        d.admit()  # one probe at a time, even after the interval
    d.answered()
    assert not d.stalled
    d.admit()


def test_timeout_kinds() -> None:
    assert timeout_kind(DatabaseNotAnswering("x")) == "no_answer"
    assert timeout_kind(DatabaseStalled("x")) == "failed_fast"
    assert timeout_kind(asyncpg.QueryCanceledError("x")) == "statement_timeout"
    assert timeout_kind(asyncpg.LockNotAvailableError("x")) == "lock_timeout"
    assert timeout_kind(asyncpg.ConnectionDoesNotExistError("server closed")) is None


async def _open(url: str) -> Database:
    db = Database(url, Settings(**FAST))
    await db.open()
    return db


def test_statement_timeout_is_set_and_the_connection_survives_it(pg: PostgresServer) -> None:
    async def check() -> None:
        db = await _open(pg.url())
        try:
            async with db.connection() as conn:
                assert await conn.fetchval("SHOW statement_timeout") == "500ms"
                assert await conn.fetchval("SHOW lock_timeout") == "200ms"
                with pytest.raises(asyncpg.QueryCanceledError) as info:
                    await conn.execute("SELECT pg_sleep(3)")
                assert timeout_kind(info.value) == "statement_timeout"
                assert await conn.fetchval("SELECT 1") == 1
        finally:
            await db.close()

    asyncio.run(check())


def test_statements_on_a_frozen_server_give_up_at_the_deadline(pg: PostgresServer) -> None:
    async def check() -> None:
        db = await _open(pg.url())
        try:
            assert await db.fetchval("SELECT 1") == 1
            opened = sum(db.stats())
            with frozen(pg.pid):
                # The server stays frozen until this block ends: only the deadline
                # can end the statement, so raising at all is the proof.
                with pytest.raises(DatabaseNotAnswering):
                    await db.fetchval("SELECT 2")
                # The connection was closed, not given back: one fewer, none in use.
                assert db.stats() == (0, opened - 1)
                # Stalled now: the next attempt (a new connection) fails at once.
                with pytest.raises((DatabaseStalled, DatabaseNotAnswering)) as info:
                    await db.fetchval("SELECT 3")
                assert timeout_kind(info.value) in ("failed_fast", "no_answer")

            # Running again: a probe gets its answer and the pool serves as before.
            deadline = time.monotonic() + 30
            while True:
                try:
                    assert await db.fetchval("SELECT 4") == 4
                    break
                except (DatabaseStalled, DatabaseNotAnswering):
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)
        finally:
            await db.close()

    asyncio.run(check())


def test_a_commit_on_a_frozen_server_gives_up_too(pg: PostgresServer) -> None:
    url = pg.create_database("deadline_commit")

    async def check() -> None:
        db = await _open(url)
        try:
            await db.execute("CREATE TABLE t (id int)")
            with contextlib.ExitStack() as unfreeze, pytest.raises(DatabaseNotAnswering):
                async with db.transaction() as conn:
                    await conn.execute("INSERT INTO t VALUES (1)")
                    unfreeze.enter_context(frozen(pg.pid))  # COMMIT meets a frozen server
        finally:
            await db.close()

    asyncio.run(check())


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_the_app_answers_503_with_retry_after_while_postgres_is_frozen(
    pg: PostgresServer, tmp_path: Path
) -> None:
    url = pg.create_database("deadline_app")
    migrate(url)
    add_user(url, "dana", "dispatcher")
    settings = app_settings(url, tmp_path, cache_warm_entries=0, **FAST)
    with TestClient(create_app(settings)) as client:
        h = auth(token(client, "dana"))
        assert client.get("/api/bags", headers=h).status_code == 200
        before = {
            k: _sample("tracetrack_db_timeouts_total", kind=k) for k in ("no_answer", "failed_fast")
        }
        with frozen(pg.pid):
            first = client.get("/api/bags", headers=h)
            second = client.post("/api/bags", json={"qr_id": "F1", "bag_type": "parent"}, headers=h)
            ready = client.get("/readyz")
        for r in (first, second):
            assert r.status_code == 503, r.text
            assert r.headers["Retry-After"] == "5"
            assert "database did not answer in time" in r.json()["detail"]
        assert ready.status_code == 503
        after = {
            k: _sample("tracetrack_db_timeouts_total", kind=k) for k in ("no_answer", "failed_fast")
        }
        assert sum(after.values()) - sum(before.values()) >= 2
        assert after["no_answer"] > before["no_answer"]

        def serves() -> bool:
            return client.get("/api/bags", headers=h).status_code == 200

        wait_until(serves, 30, "the app to serve again after SIGCONT", interval=0.2)
        # The bag whose request timed out was never committed.
        assert client.get("/api/bags/F1", headers=h).status_code == 404
