"""The fixtures start real services and stop them by PID."""

import psutil
import redis
import sqlalchemy as sa


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
