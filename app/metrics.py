"""The app's Prometheus metrics (DESIGN §6), defined once.

The app may run several worker processes, so these live in prometheus_client's
multiprocess mode when PROMETHEUS_MULTIPROC_DIR is set (the app's entry point sets
it before importing this module); gauges declare how workers' values combine.
Code elsewhere in the app imports the objects from here and never redefines them.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from common import metric_names as names

HTTP_REQUESTS = Counter(
    names.HTTP_REQUESTS.removesuffix("_total"), "HTTP requests handled, by route template and status code.",
    ["method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    names.HTTP_REQUEST_DURATION, "Time from request start to the end of the response body.",
    ["method", "route"], buckets=names.HTTP_DURATION_BUCKETS,
)
HTTP_REQUESTS_IN_PROGRESS = Gauge(
    names.HTTP_REQUESTS_IN_PROGRESS, "HTTP requests being handled right now, all workers.",
    multiprocess_mode="livesum",
)
CACHE_REQUESTS = Counter(
    names.CACHE_REQUESTS.removesuffix("_total"), "Cache lookups by result (hit or miss), whichever backend is in use.",
    ["result"],
)
CACHE_BACKEND = Gauge(
    names.CACHE_BACKEND, "1 for the cache backend in use (redis or memory), 0 for the other.",
    ["backend"], multiprocess_mode="mostrecent",
)
DB_POOL_CONNECTIONS = Gauge(
    names.DB_POOL_CONNECTIONS, "Connections of the app's SQLAlchemy pools by state, all workers.",
    ["state"], multiprocess_mode="livesum",
)
SCANS = Counter(names.SCANS.removesuffix("_total"), "Bag scans recorded.")
BAGS_CREATED = Counter(names.BAGS_CREATED.removesuffix("_total"), "Bags created (single and bulk).")
BILLS_CREATED = Counter(names.BILLS_CREATED.removesuffix("_total"), "Bills created.")
