"""Metric names only the exporter publishes, beyond the contract in common/metric_names.py.

The contract names (DESIGN §6) are imported from common.metric_names; these are the
exporter's extras. Rules and dashboards may use them too: rename only with every consumer.
"""

# --- postgres: size and the maintenance facts behind the weekly VACUUM ANALYZE advice ---
DB_SIZE = "tracetrack_db_size_bytes"
DB_TABLE_LIVE_TUPLES = "tracetrack_db_table_live_tuples"
DB_TABLE_DEAD_TUPLES = "tracetrack_db_table_dead_tuples"
# Unix timestamps (0 = never), the Prometheus convention for "when did X last happen":
# alert on `time() - metric > 7 * 86400`.
DB_TABLE_LAST_VACUUM = "tracetrack_db_table_last_vacuum_timestamp_seconds"
DB_TABLE_LAST_ANALYZE = "tracetrack_db_table_last_analyze_timestamp_seconds"

# --- redis ---------------------------------------------------------------------
REDIS_UP = "tracetrack_redis_up"
REDIS_MEMORY_USED = "tracetrack_redis_memory_used_bytes"
REDIS_KEYSPACE_HITS = "tracetrack_redis_keyspace_hits_total"
REDIS_KEYSPACE_MISSES = "tracetrack_redis_keyspace_misses_total"

ALL = (
    DB_SIZE, DB_TABLE_LIVE_TUPLES, DB_TABLE_DEAD_TUPLES, DB_TABLE_LAST_VACUUM,
    DB_TABLE_LAST_ANALYZE, REDIS_UP, REDIS_MEMORY_USED, REDIS_KEYSPACE_HITS,
    REDIS_KEYSPACE_MISSES,
)
