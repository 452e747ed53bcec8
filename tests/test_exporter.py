"""The exporter against real PostgreSQL and redis-server: values, isolation, deadlines."""

from __future__ import annotations

import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil
import psycopg2
import pytest

from app.db import migrate
from common.settings import Settings
from exporter.collector import Deadline
from exporter.pg import libpq_dsn
from exporter.server import MAX_SCRAPE_TIMEOUT, TIMEOUT_HEADER, scrape_budget
from exporter.service import ConfigError, check_config
from exporter.settings import ExporterSettings
from exporter.system import CpuSampler, SystemCollector
from tests.support.exporterkit import (
    running_exporter,
    samples,
    scrape,
    sql,
    types,
    up,
    value,
)
from tooling.procs import TRACETRACK, start_redis, wait_until

KOLKATA = "Asia/Kolkata"  # UTC+5:30, no DST: local midnight is 18:30 UTC the day before


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def seed_small(database_url: str) -> None:
    """3 users, 7 bags, scans and bills around the Kolkata midnights of 15 March 2024."""
    migrate(database_url)
    sql(
        database_url,
        "INSERT INTO users (id, username, password_hash, role) VALUES "
        "(1, 'a', 'x', 'admin'), (2, 'd', 'x', 'dispatcher'), (3, 'b', 'x', 'biller')",
    )
    sql(
        database_url,
        "INSERT INTO bags (id, qr_id, bag_type) "
        "SELECT i, 'QR' || i, 'parent' FROM generate_series(1, 7) i",
    )
    scan_times = [
        "2024-03-14 18:29:59.999999",  # 23:59:59.999999 on the 14th in Kolkata: yesterday
        "2024-03-14 18:30:00",  # local midnight: today (inclusive)
        "2024-03-14 20:00:00",  # still the 14th in UTC, already the 15th in Kolkata
        "2024-03-15 04:29:00",
        "2024-03-15 18:29:59",  # 23:59:59 local: today
        "2024-03-15 18:30:00",  # next local midnight: tomorrow (exclusive)
    ]
    for i, ts in enumerate(scan_times, start=1):
        sql(
            database_url,
            "INSERT INTO scans (bag_id, user_id, location, scanned_at) VALUES (%s, 2, 'Hub', %s)",
            (i, utc(ts)),
        )
    for i, ts in enumerate(["2024-03-14 18:29:59", "2024-03-14 18:30:00", "2024-03-15 12:00:00"]):
        sql(
            database_url,
            "INSERT INTO bills (bill_number, created_by, created_at) VALUES (%s, 3, %s)",
            (f"B{i}", utc(ts)),
        )


def db_count_local_day(database_url: str, table: str, column: str, day: str) -> int:
    """The database's own answer to "how many on `day` in Kolkata"."""
    [(n,)] = sql(
        database_url,
        f"SELECT count(*) FROM {table} WHERE ({column} AT TIME ZONE %s)::date = %s::date",
        (KOLKATA, day),
    )
    return int(n)


def test_business_counts_follow_the_database_and_the_local_day(database_url: str) -> None:
    seed_small(database_url)
    clock = Clock(utc("2024-03-15 04:30:00"))  # 10:00 on the 15th in Kolkata
    with running_exporter(database_url, timezone=KOLKATA, clock=clock) as url:
        _, s = scrape(url)
        assert up(s, "business") == 1
        assert value(s, "tracetrack_scans_today") == 4
        assert value(s, "tracetrack_scans_today") == db_count_local_day(
            database_url, "scans", "scanned_at", "2024-03-15"
        )
        assert value(s, "tracetrack_bills_today") == 2
        assert value(s, "tracetrack_bills_today") == db_count_local_day(
            database_url, "bills", "created_at", "2024-03-15"
        )
        assert (
            value(s, "tracetrack_users")
            == sql(database_url, "SELECT count(*) FROM users")[0][0]
            == 3
        )
        # The bag figure is PostgreSQL's statistic, flushed shortly after the inserts commit.
        wait_until(lambda: value(scrape(url)[1], "tracetrack_bags") == 7, 60, "bags == 7")

        clock.now = utc("2024-03-15 18:30:00")  # local midnight: a new day, no restart
        _, s = scrape(url)
        assert value(s, "tracetrack_scans_today") == 1
        assert value(s, "tracetrack_scans_today") == db_count_local_day(
            database_url, "scans", "scanned_at", "2024-03-16"
        )
        assert value(s, "tracetrack_bills_today") == 0

        sql(
            database_url,
            "INSERT INTO scans (bag_id, user_id, location, scanned_at) VALUES (7, 1, 'Hub', %s)",
            (utc("2024-03-16 01:00:00"),),
        )
        assert value(scrape(url)[1], "tracetrack_scans_today") == 2


def test_postgres_connections_limits_and_table_maintenance(database_url: str) -> None:
    seed_small(database_url)
    dsn = libpq_dsn(database_url)
    in_txn = psycopg2.connect(dsn)
    idle = psycopg2.connect(dsn)
    try:
        with in_txn.cursor() as cur:
            cur.execute("SELECT 1")  # psycopg2 opened a transaction: now idle in transaction
        with running_exporter(database_url) as url:
            scrape(url)
            # Its three connections (postgres, business, the day-count recount) settle first.
            wait_until(
                lambda: (
                    sql(
                        database_url,
                        "SELECT count(*) FROM pg_stat_activity WHERE "
                        "application_name = 'tracetrack-exporter' AND datname = current_database()",
                    )[0][0]
                    == 3
                ),
                10,
                "the exporter's three connections",
            )
            _, s = scrape(url)
            assert up(s, "postgres") == 1
            by_state = dict(
                sql(
                    database_url,
                    "SELECT state, count(*) FROM pg_stat_activity "
                    "WHERE backend_type = 'client backend' GROUP BY state",
                )
            )
            assert (
                value(s, "tracetrack_db_connections", state="idle_in_transaction")
                == by_state["idle in transaction"]
                >= 1
            )
            total = sum(v for (name, _), v in s.items() if name == "tracetrack_db_connections")
            [(here,)] = sql(
                database_url,
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()",
            )
            # Client sessions of every database (other tests share this server), no
            # background processes; the connection asking above is one the exporter did not see.
            assert here - 1 <= total <= sum(by_state.values()) - 1
            assert here - 1 >= 5  # these two, the exporter's three
            assert value(s, "tracetrack_db_max_connections") == int(
                sql(database_url, "SHOW max_connections")[0][0]
            )
            assert value(s, "tracetrack_db_size_bytes") > 1_000_000
            assert value(s, "tracetrack_db_table_last_vacuum_timestamp_seconds", table="bags") == 0

            sql(database_url, "UPDATE bags SET status = 'in_transit' WHERE id <= 3")
            wait_until(
                lambda: value(scrape(url)[1], "tracetrack_db_table_dead_tuples", table="bags") == 3,
                10,
                "3 dead tuples in bags",
            )

            before = time.time()
            sql(database_url, "VACUUM ANALYZE bags")

            def vacuumed() -> bool:
                _, s = scrape(url)
                return (
                    value(s, "tracetrack_db_table_dead_tuples", table="bags") == 0
                    and value(s, "tracetrack_db_table_last_vacuum_timestamp_seconds", table="bags")
                    >= before - 1
                    and value(s, "tracetrack_db_table_last_analyze_timestamp_seconds", table="bags")
                    >= before - 1
                )

            wait_until(vacuumed, 60, "VACUUM ANALYZE seen")
            _, s = scrape(url)
            assert (
                value(s, "tracetrack_db_table_last_vacuum_timestamp_seconds", table="bags")
                <= time.time()
            )
            assert value(s, "tracetrack_db_table_live_tuples", table="bags") == 7
            assert (
                value(s, "tracetrack_db_table_last_vacuum_timestamp_seconds", table="bill_bags")
                == 0
            )
    finally:
        in_txn.close()
        idle.close()


def test_the_system_collector_never_waits_for_a_cpu_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    """`cpu_percent(interval=1)` would sleep a second inside every scrape; the collector
    reads cpu_times() deltas instead (CpuSampler), so the blocking call is never made."""

    def blocking(*args: object, **kwargs: object) -> float:
        raise AssertionError("psutil.cpu_percent called inside the scrape")

    monkeypatch.setattr(psutil, "cpu_percent", blocking)
    families = {f.name for f in SystemCollector().collect(Deadline(5))}
    assert "tracetrack_cpu_usage_ratio" in families


def test_system_ratios_match_the_host() -> None:
    with running_exporter(None) as url:
        _, s = scrape(url)
        assert up(s, "system") == 1
        assert 0 <= value(s, "tracetrack_cpu_usage_ratio") <= 1
        vm = psutil.virtual_memory()
        assert value(s, "tracetrack_memory_usage_ratio") == pytest.approx(
            (vm.total - vm.available) / vm.total, abs=0.05
        )
        disk = shutil.disk_usage("/")
        assert value(s, "tracetrack_disk_usage_ratio", mountpoint="/") == pytest.approx(
            disk.used / (disk.used + disk.free), abs=0.01
        )
        # Its time is reported; that it never blocks on a CPU reading is the test above
        # (a wall-clock bound here would fail a busy machine, not a slow collector).
        assert value(s, "tracetrack_exporter_collector_duration_seconds", collector="system") >= 0


def test_cpu_ratio_is_the_busy_share_between_readings() -> None:
    from collections import namedtuple

    Times = namedtuple("Times", "user nice system idle iowait irq softirq steal guest guest_nice")
    readings = iter(
        [
            Times(10, 0, 10, 80, 0, 0, 0, 0, 0, 0),
            Times(40, 0, 20, 120, 20, 0, 0, 0, 0, 0),  # +40 busy, +60 idle/iowait
            Times(40, 0, 20, 220, 20, 0, 0, 0, 0, 0),
        ]
    )  # +100 idle
    now = [0.0]
    sampler = CpuSampler(min_window=1.0, read=lambda: next(readings), clock=lambda: now[0])
    now[0] = 5.0
    assert sampler.ratio() == pytest.approx(0.4)
    now[0] = 5.5  # closer than min_window: the last ratio, no new reading
    assert sampler.ratio() == pytest.approx(0.4)
    now[0] = 7.0
    assert sampler.ratio() == 0.0


def test_redis_down_drops_only_the_redis_collector(database_url: str, tmp_path: Path) -> None:
    import redis

    seed_small(database_url)
    proc, port = start_redis(tmp_path / "redis")
    redis_url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(redis_url)
        client.set("bag:QR1", "x")
        client.get("bag:QR1")
        client.get("bag:missing")
        with running_exporter(
            database_url,
            redis_url=redis_url,
            timezone=KOLKATA,
            clock=Clock(utc("2024-03-15 04:30:00")),
        ) as url:
            _, s = scrape(url)
            info = client.info()
            assert up(s, "redis") == value(s, "tracetrack_redis_up") == 1
            assert value(s, "tracetrack_redis_keyspace_hits_total") == info["keyspace_hits"] == 1
            assert (
                value(s, "tracetrack_redis_keyspace_misses_total") == info["keyspace_misses"] == 1
            )
            assert value(s, "tracetrack_redis_memory_used_bytes") > 0
            client.close()

            proc.stop()
            _, down = scrape(url, timeout=2.0)
            assert up(down, "redis") == value(down, "tracetrack_redis_up") == 0
            assert ("tracetrack_redis_memory_used_bytes", frozenset()) not in down
            for collector in ("system", "postgres", "business"):
                assert up(down, collector) == 1
            for name in (
                "tracetrack_bags",
                "tracetrack_users",
                "tracetrack_scans_today",
                "tracetrack_bills_today",
                "tracetrack_db_max_connections",
            ):
                assert value(down, name) == value(s, name)

            proc, _ = start_redis(tmp_path / "redis", port=port)
            wait_until(lambda: up(scrape(url)[1], "redis") == 1, 60, "redis collector up again")
    finally:
        proc.stop()


def test_slow_database_misses_the_deadline_not_the_scrape(database_url: str) -> None:
    seed_small(database_url)
    with running_exporter(database_url) as url:
        assert up(scrape(url)[1], "business") == 1
        # The first scrape started the background recount of today (exporter.daycount);
        # let it finish, so the only exporter query the lock can hold up is the scrape's.
        wait_until(
            lambda: (
                sql(
                    database_url,
                    "SELECT count(*) FROM pg_stat_activity WHERE "
                    "application_name = 'tracetrack-exporter' AND datname = current_database() "
                    "AND state = 'idle'",
                )[0][0]
                == 3
            ),
            10,
            "the exporter's connections idle",
        )
        locker = psycopg2.connect(libpq_dsn(database_url))
        try:
            with locker.cursor() as cur:  # counting today's scans now waits for this lock
                cur.execute("LOCK TABLE scans IN ACCESS EXCLUSIVE MODE")
            # The lock is held for the whole scrape, so only the scrape's deadline (from
            # its 1 s timeout header) can end the business query: an answer at all, with
            # business down and the rest up, is the proof. No wall-clock bound: a busy
            # machine may take longer to deliver the answer.
            _, s = scrape(url, timeout=1.0)
            assert up(s, "business") == 0
            assert ("tracetrack_scans_today", frozenset()) not in s
            assert up(s, "postgres") == up(s, "system") == 1

            def exporter_waits_on_lock() -> bool:
                return bool(
                    sql(
                        database_url,
                        "SELECT 1 FROM pg_stat_activity WHERE application_name "
                        "= 'tracetrack-exporter' AND datname = current_database() "
                        "AND wait_event_type = 'Lock'",
                    )
                )

            # statement_timeout cancels the query in PostgreSQL too; it does not linger
            # holding a connection while the lock is still held.
            wait_until(lambda: not exporter_waits_on_lock(), 30, "the exporter's query cancelled")
            assert up(scrape(url, timeout=1.0)[1], "business") == 0
        finally:
            locker.close()
        assert up(scrape(url)[1], "business") == 1


def test_missing_schema_and_unreachable_database_are_up_0(
    database_url: str, tmp_path: Path
) -> None:
    with running_exporter(database_url) as url:
        _, s = scrape(url)
        assert up(s, "business") == 0  # no tables yet
        assert up(s, "postgres") == up(s, "system") == 1
        migrate(database_url)
        assert up(scrape(url)[1], "business") == 1  # no restart needed

    nowhere = "postgresql+psycopg2://postgres@127.0.0.1:1/none"
    with running_exporter(nowhere) as url:
        _, s = scrape(url)
        assert up(s, "postgres") == up(s, "business") == 0
        assert up(s, "system") == 1


def test_http_contract(database_url: str) -> None:
    migrate(database_url)
    with running_exporter(database_url) as url:
        r = httpx.get(f"{url}/metrics", headers={TIMEOUT_HEADER: "soon"})
        assert r.status_code == 400 and TIMEOUT_HEADER in r.text
        assert httpx.get(f"{url}/metrics", headers={TIMEOUT_HEADER: "-1"}).status_code == 400
        r = httpx.get(f"{url}/nope")
        assert r.status_code == 404 and "/metrics" in r.text
        assert httpx.get(f"{url}/healthz").text == "ok\n"
        r = httpx.get(
            f"{url}/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
        assert r.headers["content-type"].startswith("application/openmetrics-text")
        assert r.text.endswith("# EOF\n")
        # Every scrape builds fresh families: values change between scrapes.
        before = value(scrape(url)[1], "tracetrack_users")
        sql(
            database_url,
            "INSERT INTO users (username, password_hash, role) VALUES ('z', 'x', 'admin')",
        )
        assert value(scrape(url)[1], "tracetrack_users") == before + 1


def test_odd_requests_are_answered_and_no_label_carries_a_password(database_url: str) -> None:
    migrate(database_url)
    with running_exporter(database_url, app_urls="http://probe:s3cret-pw@127.0.0.1:1") as url:
        for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):  # http.server said 501
            r = httpx.request(method, f"{url}/metrics")
            assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD", method
        r = httpx.get(f"{url}/{'a' * 60_000}")  # named, not echoed whole
        assert r.status_code == 404 and len(r.content) < 200
        head = httpx.head(f"{url}/metrics")
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["content-length"]) > 0
        # 1e308 s is finite, but overflowed every collector's socket timeout.
        r = httpx.get(f"{url}/metrics", headers={TIMEOUT_HEADER: "1e308"})
        assert r.status_code == 200
        assert up(samples(r.text), "postgres") == up(samples(r.text), "business") == 1
        text, s = scrape(url)
        assert "s3cret" not in text  # a label is public to every Prometheus reader
        assert value(s, "tracetrack_app_ready", app="127.0.0.1:1") == 0


def test_app_urls_without_a_scheme_are_refused_without_showing_them() -> None:
    with pytest.raises(ConfigError) as refused:
        check_config(Settings(), ExporterSettings(app_urls="http://a:8000,u:pw@app:8000"))
    assert str(refused.value).startswith("TRACETRACK_EXPORTER_APP_URLS: URL 2 is not")
    assert "pw" not in str(refused.value)


def test_scrape_budget_leaves_a_margin() -> None:
    assert scrape_budget("10", 5) == pytest.approx(9.5)
    assert scrape_budget("1", 5) == pytest.approx(0.9)
    assert scrape_budget(None, 5) == pytest.approx(4.5)
    assert 0 < scrape_budget("0.2", 5) < 0.2
    assert scrape_budget("1e308", 5) == pytest.approx(MAX_SCRAPE_TIMEOUT - 0.5)


def test_output_passes_promtool(database_url: str, redis_url: str) -> None:
    seed_small(database_url)
    with running_exporter(database_url, redis_url=redis_url) as url:
        text, s = scrape(url)
    assert all(up(s, c) == 1 for c in ("system", "postgres", "business", "redis"))
    assert types(text)["tracetrack_redis_keyspace_hits_total"] == "counter"
    check = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True
    )
    assert check.returncode == 0 and not check.stdout.strip() and not check.stderr.strip(), (
        check.stdout + check.stderr
    )


def test_command_rejects_a_bad_timezone(tmp_path: Path) -> None:
    exe = TRACETRACK
    r = subprocess.run(
        [exe, "exporter", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "PATH": "/usr/bin:/bin",
            "TRACETRACK_TIMEZONE": "Mars/Olympus",
            "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/x",
            "TRACETRACK_VAR_DIR": str(tmp_path),
        },
    )
    assert r.returncode == 2
    assert "TRACETRACK_TIMEZONE" in r.stderr and "Mars/Olympus" in r.stderr


def test_bench_helper_measures_scrapes(database_url: str) -> None:
    from bench.exporter_scrape import measure_scrape

    migrate(database_url)
    with running_exporter(database_url) as url:
        result = measure_scrape(f"{url}/metrics", 20)
    assert result["n"] == 20
    assert 0 < result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]
    assert result["collectors_down"] == []


def test_day_counts_stay_exact_across_seals_and_open_transactions(database_url: str) -> None:
    """Today's count = a sealed earlier part + the recent rows; no row may fall between."""
    from zoneinfo import ZoneInfo

    from exporter.business import BusinessCollector, day_bounds, utc_now
    from exporter.daycount import DaySeals
    from exporter.pg import PgConnection

    seed_small(database_url)
    dsn = libpq_dsn(database_url)
    seals = DaySeals(PgConnection(dsn), utc_now, reseal_seconds=3600)
    collector = BusinessCollector(PgConnection(dsn), KOLKATA, seals=seals)
    start, end = day_bounds(utc_now(), ZoneInfo(KOLKATA))

    def exported() -> int:
        families = {f.name: f for f in collector.collect(Deadline(5))}
        return int(families["tracetrack_scans_today"].samples[0].value)

    def in_database() -> int:
        return int(
            sql(
                database_url,
                "SELECT count(*) FROM scans WHERE scanned_at >= %s AND scanned_at < %s",
                (start, end),
            )[0][0]
        )

    def scan_now() -> None:
        sql(database_url, "INSERT INTO scans (bag_id, user_id, location) VALUES (1, 2, 'Hub')")

    for _ in range(3):
        scan_now()
    time.sleep(1.2)  # the seal stops a second short of now
    assert exported() == in_database() == 3  # no seal yet: the whole day is counted
    wait_until(lambda: seals.current(start) is not None, 60, "the first seal")
    assert seals.current(start).counts["scans"] == 3  # type: ignore[union-attr]

    # A scan inserted by a transaction still open while the seal is recounted: its
    # scanned_at (its transaction's start) is already in the past, yet it is not visible.
    open_txn = psycopg2.connect(dsn)
    try:
        with open_txn.cursor() as cur:
            cur.execute("INSERT INTO scans (bag_id, user_id, location) VALUES (2, 2, 'Hub')")
        time.sleep(1.5)  # now() - 1 s has moved past that scanned_at
        seal = seals.reseal(start, end)
        assert seal is not None and seal.counts["scans"] == 3
        open_txn.commit()
    finally:
        open_txn.close()
    assert exported() == in_database() == 4

    scan_now()
    assert exported() == in_database() == 5
    # A backfill below the seal is counted once the seal is recounted.
    sql(
        database_url,
        "INSERT INTO scans (bag_id, user_id, location, scanned_at) VALUES (3, 2, 'Hub', %s)",
        (start + (seal.boundary - start) / 2,),
    )
    seals.reseal(start, end)
    assert exported() == in_database() == 6


def test_day_counts_are_not_sealed_when_other_transactions_are_invisible(
    database_url: str, postgres: object
) -> None:
    """Without pg_monitor the exporter cannot prove a seal final: it counts the whole day."""
    import uuid
    from zoneinfo import ZoneInfo

    from exporter.business import day_bounds, utc_now
    from exporter.daycount import DaySeals
    from exporter.pg import PgConnection

    migrate(database_url)
    role = f"limited_{uuid.uuid4().hex[:8]}"
    sql(database_url, f"CREATE ROLE {role} LOGIN")
    sql(database_url, f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    other = psycopg2.connect(libpq_dsn(database_url))  # a superuser session it cannot inspect
    try:
        limited_dsn = libpq_dsn(database_url).replace("postgres@", f"{role}@", 1)
        seals = DaySeals(PgConnection(limited_dsn), utc_now)
        start, end = day_bounds(utc_now(), ZoneInfo(KOLKATA))
        assert seals.reseal(start, end) is None
        assert seals.current(start) is None
    finally:
        other.close()
        sql(database_url, f"DROP OWNED BY {role}")
        sql(database_url, f"DROP ROLE {role}")


def test_postgres_restart_is_survived_without_restarting_the_exporter(tmp_path: Path) -> None:
    from tooling.pgserver import PostgresServer

    server = PostgresServer(tmp_path / "pg").start()
    try:
        database_url = server.create_database("restart")
        seed_small(database_url)
        with running_exporter(database_url) as url:
            assert up(scrape(url)[1], "business") == 1
            server.stop()
            _, s = scrape(url, timeout=2.0)
            assert up(s, "postgres") == up(s, "business") == 0
            assert up(s, "system") == 1
            server.start()
            wait_until(
                lambda: all(up(scrape(url)[1], c) == 1 for c in ("postgres", "business")),
                20,
                "database collectors up after the restart",
            )
            assert value(scrape(url)[1], "tracetrack_users") == 3
    finally:
        server.stop()
