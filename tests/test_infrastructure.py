"""The fixtures start real services and stop them by PID."""

import psutil
import pytest
import redis
import sqlalchemy as sa

from tooling.procs import wait_until


def test_postgres_fixture_gives_an_empty_database(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        tables = conn.execute(
            sa.text("select count(*) from information_schema.tables where table_schema='public'")
        ).scalar()
        max_conn = conn.execute(sa.text("show max_connections")).scalar()
    engine.dispose()
    assert tables == 0
    assert int(str(max_conn)) >= 250  # the app's 100-250 connection pool must fit


def test_redis_fixture_stops_by_pid(redis_server) -> None:
    proc, port = redis_server
    client = redis.Redis(port=port)
    assert client.ping()
    pid = proc.pid
    proc.stop()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_wait_until_reports_the_last_error_when_it_gives_up() -> None:
    attempts: list[int] = []

    def check() -> bool:
        attempts.append(1)
        raise ConnectionRefusedError(f"refused (attempt {len(attempts)})")

    with pytest.raises(TimeoutError) as caught:
        wait_until(check, 0.2, "the service", interval=0.01)
    message = str(caught.value)
    assert "waiting for the service" in message
    assert f"ConnectionRefusedError: refused (attempt {len(attempts)})" in message
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)


def test_wait_until_says_when_the_check_was_merely_false() -> None:
    with pytest.raises(TimeoutError, match="the check was still false"):
        wait_until(lambda: False, 0.05, "nothing", interval=0.01)
