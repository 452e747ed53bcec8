"""PgBouncer, the pooler between the app replicas and PostgreSQL: its pools and traffic,
read from its admin console (`SHOW POOLS`, `SHOW STATS`, `SHOW DATABASES`, `SHOW CONFIG`).

Series (`database` is a pooled database; PgBouncer's own admin database is left out):
    tracetrack_pgbouncer_up                                 gauge    1 when the console answered
    tracetrack_pgbouncer_client_connections{database,state} gauge    active | waiting (for a server)
    tracetrack_pgbouncer_server_connections{database,state} gauge    active | idle | used | tested | login
    tracetrack_pgbouncer_max_wait_seconds{database}         gauge    oldest waiting client's wait
    tracetrack_pgbouncer_pool_size{database}                gauge    default_pool_size in effect
    tracetrack_pgbouncer_database_max_connections{database} gauge   max_db_connections (0 = none)
    tracetrack_pgbouncer_max_client_connections             gauge    max_client_conn
    tracetrack_pgbouncer_transactions_total{database}       counter  transactions pooled
    tracetrack_pgbouncer_queries_total{database}            counter  queries pooled
    tracetrack_pgbouncer_query_seconds_total{database}      counter  time spent in queries
    tracetrack_pgbouncer_client_wait_seconds_total{database} counter time clients waited for a server

Only built when PGBOUNCER_URL is set (`postgresql://user:pw@host:6432/pgbouncer`, a user
in PgBouncer's `stats_users`). Clients waiting, or a long max wait, mean the pool is
too small for the load (docs/scaling.md); PostgreSQL's own view of the same
connections is the `postgres` collector's tracetrack_db_connections.
"""

from __future__ import annotations

import math
from typing import Any

import psycopg2
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from common import metric_names as names
from exporter.collector import CollectorError, Deadline
from exporter.pg import APPLICATION_NAME

ADMIN_DATABASE = "pgbouncer"
CLIENT_STATES = {"active": "cl_active", "waiting": "cl_waiting"}
SERVER_STATES = {
    "active": "sv_active",
    "idle": "sv_idle",
    "used": "sv_used",
    "tested": "sv_tested",
    "login": "sv_login",
}
MICROSECONDS = 1e-6

Rows = list[dict[str, Any]]


def _up(value: int) -> GaugeMetricFamily:
    up = GaugeMetricFamily(
        names.PGBOUNCER_UP, "1 when PgBouncer's admin console answered the exporter, else 0."
    )
    up.add_metric([], value)
    return up


def _rows(cur: Any, command: str) -> Rows:
    cur.execute(command)
    columns = [c.name for c in cur.description]
    return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]


class PgBouncerCollector:
    name = "pgbouncer"

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def _read(self, deadline: Deadline) -> tuple[Rows, Rows, Rows, Rows]:
        # A connection per scrape: the console has no statement timeout to bound a
        # query with, and a fresh connect is cheap next to a scrape interval.
        try:
            conn = psycopg2.connect(
                self.dsn,
                connect_timeout=max(2, math.ceil(deadline.remaining())),
                application_name=APPLICATION_NAME,
            )
        except psycopg2.Error as exc:
            raise CollectorError(f"PgBouncer: {str(exc).strip()}") from exc
        try:
            conn.autocommit = True  # the console knows no BEGIN
            with conn.cursor() as cur:
                return (
                    _rows(cur, "SHOW POOLS"),
                    _rows(cur, "SHOW STATS"),
                    _rows(cur, "SHOW DATABASES"),
                    _rows(cur, "SHOW CONFIG"),
                )
        except psycopg2.Error as exc:
            raise CollectorError(f"PgBouncer: {str(exc).strip()}") from exc
        finally:
            conn.close()

    def collect(self, deadline: Deadline) -> list[Metric]:
        pools, stats, databases, config = self._read(deadline)
        pools = [p for p in pools if p["database"] != ADMIN_DATABASE]
        stats = [s for s in stats if s["database"] != ADMIN_DATABASE]
        databases = [d for d in databases if d["name"] != ADMIN_DATABASE]

        clients = GaugeMetricFamily(
            names.PGBOUNCER_CLIENT_CONNECTIONS,
            "Client connections to PgBouncer by state: active (paired with a server or "
            "idle) or waiting for a server connection.",
            labels=["database", "state"],
        )
        servers = GaugeMetricFamily(
            names.PGBOUNCER_SERVER_CONNECTIONS,
            "PgBouncer's connections to PostgreSQL by state.",
            labels=["database", "state"],
        )
        max_wait = GaugeMetricFamily(
            names.PGBOUNCER_MAX_WAIT,
            "How long the oldest client waiting for a server connection has waited.",
            labels=["database"],
        )
        by_db: dict[str, dict[str, float]] = {}
        for pool in pools:  # one pool per (database, user): summed per database
            totals = by_db.setdefault(pool["database"], {"maxwait": 0.0})
            for column in (*CLIENT_STATES.values(), *SERVER_STATES.values()):
                totals[column] = totals.get(column, 0) + float(pool.get(column) or 0)
            wait = float(pool.get("maxwait") or 0) + float(pool.get("maxwait_us") or 0) * 1e-6
            totals["maxwait"] = max(totals["maxwait"], wait)
        for db in sorted({d["name"] for d in databases} | set(by_db)):
            totals = by_db.get(db, {})
            for state, column in CLIENT_STATES.items():
                clients.add_metric([db, state], totals.get(column, 0))
            for state, column in SERVER_STATES.items():
                servers.add_metric([db, state], totals.get(column, 0))
            max_wait.add_metric([db], totals.get("maxwait", 0))

        pool_size = GaugeMetricFamily(
            names.PGBOUNCER_POOL_SIZE,
            "Server connections PgBouncer keeps per pool in steady state (default_pool_size).",
            labels=["database"],
        )
        db_max = GaugeMetricFamily(
            names.PGBOUNCER_DATABASE_MAX_CONNECTIONS,
            "Most server connections PgBouncer opens to the database (max_db_connections; "
            "0 = no limit).",
            labels=["database"],
        )
        for d in sorted(databases, key=lambda d: d["name"]):
            pool_size.add_metric([d["name"]], float(d.get("pool_size") or 0))
            db_max.add_metric([d["name"]], float(d.get("max_connections") or 0))

        settings = {row["key"]: row["value"] for row in config}
        max_clients = GaugeMetricFamily(
            names.PGBOUNCER_MAX_CLIENT_CONNECTIONS,
            "Most client connections PgBouncer accepts (max_client_conn).",
        )
        max_clients.add_metric([], float(settings.get("max_client_conn") or 0))

        counters = [
            (names.PGBOUNCER_TRANSACTIONS, "Transactions PgBouncer pooled.", "total_xact_count", 1),
            (names.PGBOUNCER_QUERIES, "Queries PgBouncer pooled.", "total_query_count", 1),
            (
                names.PGBOUNCER_QUERY_SECONDS,
                "Time spent in queries on server connections.",
                "total_query_time",
                MICROSECONDS,
            ),
            (
                names.PGBOUNCER_CLIENT_WAIT_SECONDS,
                "Time clients spent waiting for a server connection.",
                "total_wait_time",
                MICROSECONDS,
            ),
        ]
        by_stats = {s["database"]: s for s in stats}
        families: list[Metric] = [_up(1), clients, servers, max_wait, pool_size, db_max]
        families.append(max_clients)
        for name, doc, column, scale in counters:
            family = CounterMetricFamily(name.removesuffix("_total"), doc, labels=["database"])
            # Every pooled database from the start (0 before its first client), so
            # increase() sees the first transaction.
            for db in sorted({d["name"] for d in databases} | set(by_stats)):
                family.add_metric([db], float(by_stats.get(db, {}).get(column) or 0) * scale)
            families.append(family)
        return families

    def down_families(self) -> list[Metric]:
        return [_up(0)]

    def close(self) -> None:
        pass
