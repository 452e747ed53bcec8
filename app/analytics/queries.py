"""The named PromQL queries behind /analytics: the only PromQL the app ever sends.

Every query is a constant built by common/promql.py from common/metric_names.py; no
part of a request (path, query string, header) is ever put into one. Where the rules
record a measurement, the query reads the recorded series, so /analytics shows the
number the alerts compare. A query either yields one number (`by` is None) or one
number per value of the label `by`.
"""

from __future__ import annotations

from dataclasses import dataclass

from common import metric_names as m
from common import promql as p
from common import slo
from common.thresholds import SECURITY_BY_KEY


@dataclass(frozen=True)
class NamedQuery:
    name: str
    promql: str
    unit: str  # "ratio" | "seconds" | "count" | "per_minute"
    threshold: str | None = None  # key into common.thresholds.BY_KEY or SECURITY_BY_KEY
    by: str | None = None


def _per_minute(counter: str, by: str = "") -> str:
    return p.per_minute(counter, p.WINDOW, by=(by,) if by else ())


def _security(key: str) -> NamedQuery:
    """A security alert's measurement over every instance; for the alerts split by a
    label (kind, route class, scope), the worst value, which is what would page."""
    t = SECURITY_BY_KEY[key]
    expr = p.security_measurement(t.measure, t.metric, t.window, by=t.by)
    if t.by:
        expr = p.worst(expr)
    suffix = "per_minute" if t.measure == "per_minute" else f"last_{t.window}"
    return NamedQuery(f"{key}_{suffix}", expr, t.measure, threshold=key)


Q = NamedQuery
QUERIES: dict[str, NamedQuery] = {
    q.name: q
    for q in (
        # --- system (exporter) ---------------------------------------------------------------
        Q("cpu_usage", f"max({m.CPU_USAGE})", "ratio", "cpu_usage"),
        Q("memory_usage", f"max({m.MEMORY_USAGE})", "ratio", "memory_usage"),
        Q("disk_usage", f"max({m.DISK_USAGE})", "ratio"),
        Q(
            "disk_usage_by_mountpoint",
            f"max by (mountpoint) ({m.DISK_USAGE})",
            "ratio",
            by="mountpoint",
        ),
        Q("db_connections", p.recorded(p.DB_CONNECTIONS_SUM), "count", "db_connections"),
        Q("db_max_connections", f"max({m.DB_MAX_CONNECTIONS})", "count"),
        # --- performance (app) ---------------------------------------------------------------
        Q(
            "avg_response_time",
            p.latency_mean(p.WINDOW, by=()),
            "seconds",
            "response_time",
        ),
        Q("p50_response_time", p.recorded_latency_quantile(0.5), "seconds"),
        Q("p95_response_time", p.recorded_latency_quantile(0.95), "seconds", "response_time"),
        Q("p99_response_time", p.recorded_latency_quantile(0.99), "seconds"),
        Q(
            "p95_response_time_by_route",
            p.latency_quantile(0.95, p.WINDOW, by=("route",)),
            "seconds",
            by="route",
        ),
        Q("requests_per_minute", f"{p.recorded(p.REQUESTS_RATE)} * 60", "per_minute"),
        Q(
            "requests_per_minute_by_route",
            _per_minute(m.HTTP_REQUESTS, "route"),
            "per_minute",
            by="route",
        ),
        Q(
            "requests_per_minute_by_status",
            _per_minute(m.HTTP_REQUESTS, "status"),
            "per_minute",
            by="status",
        ),
        Q(
            "error_rate",
            p.recorded_ratio(p.SERVER_ERRORS_RATE, p.REQUESTS_RATE),
            "ratio",
            "error_rate",
        ),
        Q(
            "cache_hit_rate",
            p.recorded_ratio(p.CACHE_HITS_RATE, p.CACHE_LOOKUPS_RATE),
            "ratio",
            "cache_hit_rate",
        ),
        Q("requests_in_progress", f"sum({m.HTTP_REQUESTS_IN_PROGRESS})", "count"),
        Q("cache_backend", f"max by (backend) ({m.CACHE_BACKEND})", "count", by="backend"),
        # --- business ------------------------------------------------------------------------
        Q("total_bags", f"max({m.BAGS})", "count"),
        Q("scans_today", f"max({m.SCANS_TODAY})", "count"),
        Q("bills_today", f"max({m.BILLS_TODAY})", "count"),
        Q("scans_per_minute", _per_minute(m.SCANS), "per_minute"),
        Q("bags_created_per_minute", _per_minute(m.BAGS_CREATED), "per_minute"),
        Q("bills_created_per_minute", _per_minute(m.BILLS_CREATED), "per_minute"),
        Q("scans_last_hour", f"sum(increase({m.SCANS}[1h]))", "count"),
        # --- users ---------------------------------------------------------------------------
        Q("active_users", f"sum({m.ACTIVE_USERS})", "count", "concurrent_users"),
        Q("registered_users", f"max({m.USERS})", "count"),
        # --- security (app/guard): each with the measurement its alert compares ------------
        # No `or vector(0)`: every labelled security counter starts at 0, so no data means
        # the app is not scraped, and that reads as unknown, never as a made-up 0.
        Q("login_failures_last_hour", p.increase_total(m.LOGIN_FAILURES, "1h"), "count"),
        *(_security(key) for key in SECURITY_BY_KEY),
        Q("blocked_requests_per_minute", _per_minute(m.BLOCKED_REQUESTS), "per_minute"),
        Q("blocked_clients", f"max({m.BLOCKED_CLIENTS})", "count"),
    )
}

# The availability SLO (common/slo.py): the same expressions as the rules and dashboards.
SLO_QUERIES = (
    Q("availability", f"1 - ({slo.error_ratio(slo.BUDGET_WINDOW)})", "ratio"),
    Q("error_budget_remaining", slo.budget_remaining(slo.error_ratio(slo.BUDGET_WINDOW)), "ratio"),
    *(
        Q(f"burn_rate_{a.long}", slo.burn_rate(slo.error_ratio(a.long)), "burn_rate")
        for a in slo.BURN_RATE_ALERTS
    ),
)
QUERIES.update({q.name: q for q in SLO_QUERIES})

# What each endpoint answers with, section by section.
# The Security section of /analytics/dashboard (and of realtime).
SECURITY = {
    "security": (
        "login_failures_per_minute",
        "account_lockouts_last_15m",
        "rate_limited_per_minute",
        "suspicious_scans_last_15m",
        "injection_attempts_last_15m",
        "blocked_requests_per_minute",
        "blocked_clients",
    ),
}
REALTIME = {
    "system": ("cpu_usage", "memory_usage", "disk_usage", "db_connections"),
    "performance": (
        "avg_response_time",
        "p95_response_time",
        "requests_per_minute",
        "error_rate",
        "cache_hit_rate",
    ),
    "business": ("total_bags", "active_users", "scans_today", "bills_today"),
    **SECURITY,
}
PERFORMANCE = {
    "response_time": (
        "avg_response_time",
        "p50_response_time",
        "p95_response_time",
        "p99_response_time",
    ),
    "throughput": ("requests_per_minute", "requests_in_progress"),
    "errors": ("error_rate",),
    "cache": ("cache_hit_rate", "cache_backend"),
    "by_route": ("p95_response_time_by_route", "requests_per_minute_by_route"),
    "by_status": ("requests_per_minute_by_status",),
}
BAGS = {
    "bags": ("total_bags", "bags_created_per_minute"),
    "scans": ("scans_today", "scans_per_minute", "scans_last_hour"),
    "bills": ("bills_today", "bills_created_per_minute"),
}
SLO = {
    "slo": ("availability", "error_budget_remaining"),
    "burn_rates": tuple(f"burn_rate_{a.long}" for a in slo.BURN_RATE_ALERTS),
}
USERS = {
    "users": ("active_users", "registered_users"),
    "security": ("login_failures_last_hour",),
}
