"""The named PromQL queries behind /analytics: the only PromQL the app ever sends.

Every query is a constant built from common/metric_names.py; no part of a request
(path, query string, header) is ever put into one. A query either yields one number
(`by` is None) or one number per value of the label `by`.
"""

from __future__ import annotations

from dataclasses import dataclass

from common import metric_names as m

WINDOW = "5m"
SERVER_ERRORS = 'status=~"5.."'
CACHE_HITS = 'result="hit"'


@dataclass(frozen=True)
class NamedQuery:
    name: str
    promql: str
    unit: str  # "ratio" | "seconds" | "count" | "per_minute"
    threshold: str | None = None  # key into common.thresholds.BY_KEY
    by: str | None = None


def _rate(metric: str, selector: str = "") -> str:
    braces = f"{{{selector}}}" if selector else ""
    return f"rate({metric}{braces}[{WINDOW}])"


def _quantile(q: float, by: str = "") -> str:
    group = f"le, {by}" if by else "le"
    return (
        f"histogram_quantile({q}, sum by ({group}) ({_rate(m.HTTP_REQUEST_DURATION + '_bucket')}))"
    )


def _per_minute(metric: str, by: str = "") -> str:
    group = f" by ({by})" if by else ""
    return f"sum{group}({_rate(metric)}) * 60"


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
        Q("db_connections", f"sum({m.DB_CONNECTIONS})", "count", "db_connections"),
        Q("db_max_connections", f"max({m.DB_MAX_CONNECTIONS})", "count"),
        # --- performance (app) ---------------------------------------------------------------
        Q(
            "avg_response_time",
            f"sum({_rate(m.HTTP_REQUEST_DURATION + '_sum')})"
            f" / sum({_rate(m.HTTP_REQUEST_DURATION + '_count')})",
            "seconds",
            "response_time",
        ),
        Q("p50_response_time", _quantile(0.5), "seconds"),
        Q("p95_response_time", _quantile(0.95), "seconds", "response_time"),
        Q("p99_response_time", _quantile(0.99), "seconds"),
        Q("p95_response_time_by_route", _quantile(0.95, "route"), "seconds", by="route"),
        Q("requests_per_minute", _per_minute(m.HTTP_REQUESTS), "per_minute"),
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
        # With no 5xx at all the numerator has no series: 0 %, not "unknown".
        Q(
            "error_rate",
            f"(sum({_rate(m.HTTP_REQUESTS, SERVER_ERRORS)})"
            f" or vector(0)) / sum({_rate(m.HTTP_REQUESTS)})",
            "ratio",
            "error_rate",
        ),
        Q(
            "cache_hit_rate",
            f"sum({_rate(m.CACHE_REQUESTS, CACHE_HITS)}) / sum({_rate(m.CACHE_REQUESTS)})",
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
        Q(
            "login_failures_last_hour",
            f"sum(increase({m.LOGIN_FAILURES}[1h])) or vector(0)",
            "count",
        ),
    )
}

# What each endpoint answers with, section by section.
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
USERS = {
    "users": ("active_users", "registered_users"),
    "security": ("login_failures_last_hour",),
}
