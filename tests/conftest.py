"""Fixtures starting the real services on free ports in temp dirs, stopped by PID.

Shared by every test module. Service-specific fixtures (Prometheus, Alertmanager,
the bridge's sinks, ...) live in tests/support/ modules and are imported where used.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tooling.pgserver import PostgresServer
from tooling.procs import ManagedProcess, start_redis

# Fixture modules, registered here (the root conftest, loaded first) so pytest rewrites
# their asserts: a test module naming them would be too late once another imported them.
pytest_plugins = [
    "tests.support.apifixtures",  # client, admin, dispatcher, biller
    "tests.support.sinks",
    "tests.support.stack",
    "tests.support.leaks",  # fails the run if a process it started outlives it
]


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """One real PostgreSQL for the session; tests get their own database in it."""
    server = PostgresServer(tmp_path_factory.mktemp("pg") / "data").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def database_url(postgres: PostgresServer) -> str:
    """A fresh, empty database (no schema) in the session's PostgreSQL."""
    return postgres.create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture()
def redis_server(tmp_path: Path) -> Iterator[tuple[ManagedProcess, int]]:
    """A real redis-server of the test's own (tests may stop and restart it)."""
    proc, port = start_redis(tmp_path / "redis")
    try:
        yield proc, port
    finally:
        proc.stop()


@pytest.fixture()
def redis_url(redis_server: tuple[ManagedProcess, int]) -> str:
    return f"redis://127.0.0.1:{redis_server[1]}/0"
