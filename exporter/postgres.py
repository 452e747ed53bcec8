"""PostgreSQL server facts: connections, their limit, size and table maintenance.

Series:
    tracetrack_db_connections{state}                          gauge  client connections by pg_stat_activity state
    tracetrack_db_max_connections                             gauge  the server's max_connections
    tracetrack_db_size_bytes                                  gauge  size of the app's database
    tracetrack_db_table_live_tuples{table}                    gauge  estimated live rows (statistics)
    tracetrack_db_table_dead_tuples{table}                    gauge  dead rows waiting for VACUUM
    tracetrack_db_table_last_vacuum_timestamp_seconds{table}  gauge  last VACUUM (manual or auto), 0 = never
    tracetrack_db_table_last_analyze_timestamp_seconds{table} gauge  last ANALYZE (manual or auto), 0 = never

Every query reads statistics views or settings: nothing scans the tables themselves.
"""

from __future__ import annotations

import re

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from common import metric_names as names
from common.tables import TABLES
from exporter.collector import Deadline
from exporter.pg import PgConnection

# pg_stat_activity.state values, as label values without spaces; all are always
# published (0 when none) so a state does not vanish from dashboards when it is unused.
STATES = {
    "active": "active",
    "idle": "idle",
    "idle in transaction": "idle_in_transaction",
    "idle in transaction (aborted)": "idle_in_transaction_aborted",
    "fastpath function call": "fastpath_function_call",
    "disabled": "disabled",
}
# Without pg_monitor the exporter's role sees other roles' sessions with backend_type and
# state NULL; those with a database are client sessions, counted as "unknown".
UNKNOWN_STATE = "unknown"

CONNECTIONS_SQL = """
SELECT state, count(*) FROM pg_stat_activity
WHERE backend_type = 'client backend' OR (backend_type IS NULL AND datname IS NOT NULL)
GROUP BY state
"""
SERVER_SQL = "SELECT current_setting('max_connections')::int, pg_database_size(current_database())"
# Series for a table of common.tables appear once the table exists.
TABLES_SQL = """
SELECT relname, n_live_tup, n_dead_tup,
       coalesce(extract(epoch FROM greatest(last_vacuum, last_autovacuum)), 0)::float8,
       coalesce(extract(epoch FROM greatest(last_analyze, last_autoanalyze)), 0)::float8
FROM pg_stat_user_tables
WHERE schemaname = current_schema() AND relname = ANY(%s)
ORDER BY relname
"""


def state_label(state: str | None) -> str:
    if state is None:
        return UNKNOWN_STATE
    return STATES.get(state) or re.sub(r"[^a-z0-9]+", "_", state.lower()).strip("_")


class PostgresCollector:
    name = "postgres"

    def __init__(self, conn: PgConnection) -> None:
        self.conn = conn

    def collect(self, deadline: Deadline) -> list[Metric]:
        by_state, server, tables = self.conn.query(
            deadline,
            [
                (CONNECTIONS_SQL, None),
                (SERVER_SQL, None),
                (TABLES_SQL, (list(TABLES),)),
            ],
        )

        counts = dict.fromkeys(STATES.values(), 0)
        for state, n in by_state:
            label = state_label(state)
            counts[label] = counts.get(label, 0) + int(n)
        conns = GaugeMetricFamily(
            names.DB_CONNECTIONS,
            "Client connections to the PostgreSQL "
            "server (all databases) by pg_stat_activity state.",
            labels=["state"],
        )
        for label, n in counts.items():
            conns.add_metric([label], n)

        max_conns, size = server[0]
        maxc = GaugeMetricFamily(names.DB_MAX_CONNECTIONS, "The server's max_connections setting.")
        maxc.add_metric([], max_conns)
        dbsize = GaugeMetricFamily(names.DB_SIZE, "Size of the app's database on disk.")
        dbsize.add_metric([], size)

        live = GaugeMetricFamily(
            names.DB_TABLE_LIVE_TUPLES,
            "Live rows per table, PostgreSQL's "
            "statistics estimate (pg_stat_user_tables.n_live_tup).",
            labels=["table"],
        )
        dead = GaugeMetricFamily(
            names.DB_TABLE_DEAD_TUPLES,
            "Dead rows per table waiting for VACUUM (pg_stat_user_tables.n_dead_tup).",
            labels=["table"],
        )
        vacuum = GaugeMetricFamily(
            names.DB_TABLE_LAST_VACUUM,
            "Unix time of the table's last VACUUM, manual or autovacuum; 0 = never.",
            labels=["table"],
        )
        analyze = GaugeMetricFamily(
            names.DB_TABLE_LAST_ANALYZE,
            "Unix time of the table's last ANALYZE, manual or autoanalyze; 0 = never.",
            labels=["table"],
        )
        for table, n_live, n_dead, vacuumed, analyzed in tables:
            live.add_metric([table], n_live)
            dead.add_metric([table], n_dead)
            vacuum.add_metric([table], vacuumed)
            analyze.add_metric([table], analyzed)
        return [conns, maxc, dbsize, live, dead, vacuum, analyze]

    def down_families(self) -> list[Metric]:
        return []

    def close(self) -> None:
        self.conn.close()
