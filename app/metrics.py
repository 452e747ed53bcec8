"""The app's Prometheus metrics (docs/architecture.md §6), defined once.

The app may run several worker processes, so these live in prometheus_client's
multiprocess mode when PROMETHEUS_MULTIPROC_DIR is set (`tracetrack app` sets it
before any worker imports this module); gauges declare how workers' values combine.
Code elsewhere in the app imports the objects from here and never redefines them.

`tracetrack_active_users` is not an object here: it is computed when /metrics is
scraped, from a store all workers share (app/instrumentation/active_users.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from app.db_deadline import TIMEOUT_KINDS
from common import metric_names as names

# The `route` label of requests that matched no route: one value, so that scanners
# probing random paths cannot grow the number of series.
UNMATCHED_ROUTE = "unmatched"


@dataclass(frozen=True)
class HttpMetrics:
    """What the instrumentation middleware and the pool sampler write."""

    requests: Counter
    duration: Histogram
    in_progress: Gauge
    db_pool: Gauge


def make_http_metrics(registry: CollectorRegistry = REGISTRY) -> HttpMetrics:
    """The HTTP and pool metrics, registered in `registry` (tests pass a fresh one)."""
    return HttpMetrics(
        requests=Counter(
            names.HTTP_REQUESTS.removesuffix("_total"),
            "HTTP requests handled, by route template and status code.",
            ["method", "route", "status"],
            registry=registry,
        ),
        duration=Histogram(
            names.HTTP_REQUEST_DURATION,
            "Time from request start to the end of the response body.",
            ["method", "route"],
            buckets=names.HTTP_DURATION_BUCKETS,
            registry=registry,
        ),
        in_progress=Gauge(
            names.HTTP_REQUESTS_IN_PROGRESS,
            "HTTP requests being handled right now, all workers.",
            multiprocess_mode="livesum",
            registry=registry,
        ),
        db_pool=Gauge(
            names.DB_POOL_CONNECTIONS,
            "Connections of the app's SQLAlchemy pools by state, all workers.",
            ["state"],
            multiprocess_mode="livesum",
            registry=registry,
        ),
    )


HTTP = make_http_metrics()
HTTP_REQUESTS = HTTP.requests
HTTP_REQUEST_DURATION = HTTP.duration
HTTP_REQUESTS_IN_PROGRESS = HTTP.in_progress
DB_POOL_CONNECTIONS = HTTP.db_pool

CACHE_REQUESTS = Counter(
    names.CACHE_REQUESTS.removesuffix("_total"),
    "Cache lookups by result (hit or miss), whichever backend is in use.",
    ["result"],
)
CACHE_BACKEND = Gauge(
    names.CACHE_BACKEND,
    "1 for the cache backend in use (redis or memory), 0 for the other.",
    ["backend"],
    multiprocess_mode="mostrecent",
)
SCANS = Counter(names.SCANS.removesuffix("_total"), "Bag scans recorded.")
BAGS_CREATED = Counter(names.BAGS_CREATED.removesuffix("_total"), "Bags created (single and bulk).")
BILLS_CREATED = Counter(names.BILLS_CREATED.removesuffix("_total"), "Bills created.")
DB_TIMEOUTS = Counter(
    names.DB_TIMEOUTS.removesuffix("_total"),
    "Requests answered 503 because PostgreSQL did not answer in time: statement_timeout,"
    " lock_timeout, no_answer (the client deadline passed), failed_fast (while it is stalled).",
    ["kind"],
)
for _kind in TIMEOUT_KINDS:
    DB_TIMEOUTS.labels(_kind)
