"""Metric names of the contract in docs/architecture.md §6.

Rules, dashboards, /analytics and reports depend on these names: import them
from here instead of retyping the strings. Adding is fine; renaming means
changing every consumer.
"""

PREFIX = "tracetrack"

# --- app ---------------------------------------------------------------------
HTTP_REQUESTS = "tracetrack_http_requests_total"
HTTP_REQUEST_DURATION = "tracetrack_http_request_duration_seconds"
HTTP_REQUESTS_IN_PROGRESS = "tracetrack_http_requests_in_progress"
ACTIVE_USERS = "tracetrack_active_users"
CACHE_REQUESTS = "tracetrack_cache_requests_total"
CACHE_BACKEND = "tracetrack_cache_backend"
DB_POOL_CONNECTIONS = "tracetrack_db_pool_connections"
SCANS = "tracetrack_scans_total"
BAGS_CREATED = "tracetrack_bags_created_total"
BILLS_CREATED = "tracetrack_bills_created_total"
# Requests answered 503 because PostgreSQL did not answer in time, by kind
# (app/db_deadline.py TIMEOUT_KINDS).
DB_TIMEOUTS = "tracetrack_db_timeouts_total"
# security (app/guard): bounded label sets only, never an IP or a user name.
LOGIN_FAILURES = "tracetrack_login_failures_total"
ACCOUNT_LOCKOUTS = "tracetrack_account_lockouts_total"
RATE_LIMITED = "tracetrack_rate_limited_total"
SUSPICIOUS_SCANS = "tracetrack_suspicious_scans_total"
INJECTION_ATTEMPTS = "tracetrack_injection_attempts_total"
BLOCKED_REQUESTS = "tracetrack_blocked_requests_total"
BLOCKED_CLIENTS = "tracetrack_blocked_clients"
SECURITY_EVENTS_DROPPED = "tracetrack_security_events_dropped_total"
# The label values each security counter starts at 0 with.
LOGIN_FAILURE_REASONS = ("bad_password", "unknown_user", "locked_out")
LOCKOUT_SCOPES = ("account", "client_ip")
ROUTE_CLASSES = ("login", "writes", "reads")
SUSPICIOUS_SCAN_KINDS = ("impossible_travel", "scan_burst", "unknown_qr_probing", "billed_bag")
INJECTION_KINDS = ("sql", "script", "path_traversal")

# --- exporter ----------------------------------------------------------------
CPU_USAGE = "tracetrack_cpu_usage_ratio"
MEMORY_USAGE = "tracetrack_memory_usage_ratio"
DISK_USAGE = "tracetrack_disk_usage_ratio"
DB_CONNECTIONS = "tracetrack_db_connections"
DB_MAX_CONNECTIONS = "tracetrack_db_max_connections"
BAGS = "tracetrack_bags"
SCANS_TODAY = "tracetrack_scans_today"
BILLS_TODAY = "tracetrack_bills_today"
USERS = "tracetrack_users"
COLLECTOR_UP = "tracetrack_exporter_collector_up"
COLLECTOR_DURATION = "tracetrack_exporter_collector_duration_seconds"
# Beyond the contract: database size and the maintenance facts behind the weekly
# VACUUM ANALYZE advice. Timestamps (0 = never), the Prometheus convention for "when
# did X last happen": alert on `time() - metric > 7 * 86400`.
DB_SIZE = "tracetrack_db_size_bytes"
DB_TABLE_LIVE_TUPLES = "tracetrack_db_table_live_tuples"
DB_TABLE_DEAD_TUPLES = "tracetrack_db_table_dead_tuples"
DB_TABLE_LAST_VACUUM = "tracetrack_db_table_last_vacuum_timestamp_seconds"
DB_TABLE_LAST_ANALYZE = "tracetrack_db_table_last_analyze_timestamp_seconds"
REDIS_UP = "tracetrack_redis_up"
# GET /readyz on each app, from the exporter (exporter/appready.py).
APP_READY = "tracetrack_app_ready"
REDIS_MEMORY_USED = "tracetrack_redis_memory_used_bytes"
REDIS_KEYSPACE_HITS = "tracetrack_redis_keyspace_hits_total"
REDIS_KEYSPACE_MISSES = "tracetrack_redis_keyspace_misses_total"
# PgBouncer (exporter/pgbouncer.py), when PGBOUNCER_URL is set.
PGBOUNCER_UP = "tracetrack_pgbouncer_up"
PGBOUNCER_CLIENT_CONNECTIONS = "tracetrack_pgbouncer_client_connections"
PGBOUNCER_SERVER_CONNECTIONS = "tracetrack_pgbouncer_server_connections"
PGBOUNCER_MAX_WAIT = "tracetrack_pgbouncer_max_wait_seconds"
PGBOUNCER_POOL_SIZE = "tracetrack_pgbouncer_pool_size"
PGBOUNCER_DATABASE_MAX_CONNECTIONS = "tracetrack_pgbouncer_database_max_connections"
PGBOUNCER_MAX_CLIENT_CONNECTIONS = "tracetrack_pgbouncer_max_client_connections"
PGBOUNCER_TRANSACTIONS = "tracetrack_pgbouncer_transactions_total"
PGBOUNCER_QUERIES = "tracetrack_pgbouncer_queries_total"
PGBOUNCER_QUERY_SECONDS = "tracetrack_pgbouncer_query_seconds_total"
PGBOUNCER_CLIENT_WAIT_SECONDS = "tracetrack_pgbouncer_client_wait_seconds_total"

# --- alert bridge ------------------------------------------------------------
NOTIFICATIONS = "tracetrack_notifications_total"
NOTIFICATION_QUEUE_DEPTH = "tracetrack_notification_queue_depth"
NOTIFICATION_DELIVERY = "tracetrack_notification_delivery_seconds"
# 1 while the bridge's last write to its outbox succeeded (a background probe writes when
# nothing was written for a while), 0 while it fails: webhooks then get 503.
OUTBOX_WRITABLE = "tracetrack_bridge_outbox_writable"
OUTBOX_WRITE_FAILURES = "tracetrack_bridge_outbox_write_failures_total"
# Webhooks refused with a 4xx (Alertmanager does not retry those: the notification is
# dropped), by reason: unauthorized | unknown_receiver | too_large | invalid.
WEBHOOKS_REJECTED = "tracetrack_bridge_webhooks_rejected_total"
# Actions taken from a notification page: action = ack | silence, outcome = ok | failed.
BRIDGE_ACTIONS = "tracetrack_bridge_actions_total"
# On-call response: from an alert group's start to its acknowledgement / resolution.
TIME_TO_ACK = "tracetrack_bridge_time_to_acknowledge_seconds"
TIME_TO_RESOLVE = "tracetrack_bridge_time_to_resolve_seconds"

# Buckets include the 2 s and 5 s thresholds so the p95 alert is exact at them.
HTTP_DURATION_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.0,
    5.0,
    10.0,
)
