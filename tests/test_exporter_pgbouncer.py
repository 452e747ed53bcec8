"""The exporter's pgbouncer collector against a real PgBouncer (Debian's, configured by
tooling.haconfig) in front of the test's real PostgreSQL: pools, waits and traffic as
PgBouncer reports them, and a dead PgBouncer costs only this collector."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from app.db import migrate
from common.settings import Settings
from exporter.service import ConfigError, check_config
from exporter.settings import ExporterSettings
from tests.support.exporterkit import running_exporter, scrape, up, value
from tests.support.hakit import PgBouncerHandle, start_pgbouncer
from tooling import haconfig
from tooling.pgserver import PostgresServer
from tooling.procs import wait_until

# Two server connections at most, so a third transaction has to wait.
TINY = haconfig.ConnectionBudget(app_replicas=1, pool=2, reserve=0)


@pytest.fixture()
def pgbouncer(
    tmp_path: Path, postgres: PostgresServer, database_url: str
) -> Iterator[PgBouncerHandle]:
    name = database_url.rsplit("/", 1)[1]
    handle = start_pgbouncer(
        tmp_path / "pgbouncer",
        db_port=postgres.port,
        db_name=name,
        budget=TINY,
        settings=Settings(),
    )
    try:
        yield handle
    finally:
        handle.proc.stop()


def test_pools_waits_and_traffic_are_reported(
    pgbouncer: PgBouncerHandle, database_url: str
) -> None:
    name = database_url.rsplit("/", 1)[1]
    dsn = pgbouncer.dsn(name)
    holders = [psycopg2.connect(dsn) for _ in range(2)]
    waiter = psycopg2.connect(dsn)
    waited: list[int] = []
    try:
        for conn in holders:  # each holds a server connection in an open transaction
            with conn.cursor() as cur:
                cur.execute("SELECT 1")

        def wait_for_a_server() -> None:
            with waiter.cursor() as cur:
                cur.execute("SELECT 1")
                waited.append(cur.fetchone()[0])

        blocked = threading.Thread(target=wait_for_a_server, daemon=True)
        blocked.start()
        with running_exporter(database_url, pgbouncer_url=pgbouncer.dsn("pgbouncer")) as url:

            def waiting() -> bool:
                s = scrape(url)[1]
                return (
                    value(
                        s, "tracetrack_pgbouncer_client_connections", database=name, state="waiting"
                    )
                    == 1
                )

            wait_until(waiting, 20, "a client waiting in PgBouncer")
            _text, s = scrape(url)
            assert up(s, "pgbouncer") == value(s, "tracetrack_pgbouncer_up") == 1
            assert up(s, "postgres") == 1  # the other collectors are unaffected
            server = {
                state: value(
                    s, "tracetrack_pgbouncer_server_connections", database=name, state=state
                )
                for state in ("active", "idle", "used", "tested", "login")
            }
            assert server["active"] == 2 and sum(server.values()) == 2, server
            assert (
                value(s, "tracetrack_pgbouncer_client_connections", database=name, state="active")
                == 2
            )
            assert value(s, "tracetrack_pgbouncer_max_wait_seconds", database=name) > 0
            assert value(s, "tracetrack_pgbouncer_pool_size", database=name) == 2
            assert value(s, "tracetrack_pgbouncer_database_max_connections", database=name) == 2
            assert value(s, "tracetrack_pgbouncer_max_client_connections") == (
                TINY.max_client_connections(Settings())
            )
            # The admin database is PgBouncer's, not a pool of ours.
            assert not [k for k in s if dict(k[1]).get("database") == "pgbouncer"]

            for conn in holders:
                conn.commit()
            blocked.join(10)
            assert waited == [1]
            waiter.commit()

            def counted() -> bool:
                s = scrape(url)[1]
                return value(s, "tracetrack_pgbouncer_transactions_total", database=name) >= 3

            wait_until(counted, 30, "PgBouncer's transaction count")
            s = scrape(url)[1]
            assert value(s, "tracetrack_pgbouncer_queries_total", database=name) >= 3
            assert value(s, "tracetrack_pgbouncer_client_wait_seconds_total", database=name) > 0
            assert value(s, "tracetrack_pgbouncer_query_seconds_total", database=name) >= 0
    finally:
        for conn in [*holders, waiter]:
            conn.close()


def test_pgbouncer_down_costs_only_its_collector(
    pgbouncer: PgBouncerHandle, database_url: str
) -> None:
    migrate(database_url)  # the business collector needs the schema
    with running_exporter(database_url, pgbouncer_url=pgbouncer.dsn("pgbouncer")) as url:
        assert up(scrape(url)[1], "pgbouncer") == 1
        pgbouncer.proc.stop()
        s = scrape(url)[1]
        assert up(s, "pgbouncer") == value(s, "tracetrack_pgbouncer_up") == 0
        assert up(s, "postgres") == up(s, "business") == 1
        assert not [k for k in s if k[0] == "tracetrack_pgbouncer_server_connections"]


def test_a_pgbouncer_url_that_is_not_postgresql_stops_startup() -> None:
    with pytest.raises(ConfigError, match="PGBOUNCER_URL: scheme 'redis'"):
        check_config(Settings(), ExporterSettings(pgbouncer_url="redis://h:6432/pgbouncer"))


def test_the_apps_session_timeouts_hold_through_pgbouncer(
    pgbouncer: PgBouncerHandle, database_url: str
) -> None:
    """The app asks for them at connect time, which PgBouncer cannot forward; its
    connect_query sets them on every server connection instead (tooling/haconfig.py)."""
    settings = Settings()
    name = database_url.rsplit("/", 1)[1]
    conn = psycopg2.connect(pgbouncer.dsn(name), options="-c statement_timeout=1 -c lock_timeout=1")
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT current_setting('statement_timeout', true),"
                " current_setting('lock_timeout', true)"
            )
            got = cur.fetchone()
    finally:
        conn.close()
    assert got == (
        f"{settings.db_statement_timeout_ms}ms",
        f"{settings.db_lock_timeout_ms}ms",
    ) or got == (
        f"{settings.db_statement_timeout_ms // 1000}s",
        f"{settings.db_lock_timeout_ms // 1000}s",
    )
