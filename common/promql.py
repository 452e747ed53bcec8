"""Each measurement's PromQL, written once: the rules record it, /analytics and the
dashboards read the recorded series (as the kubernetes mixin does).

- `tooling/rules_gen.py` records RECORDINGS (5-minute window, per job and instance);
  alerts compare those series with common/thresholds.py.
- `app/analytics/queries.py` and `grafana/build.py` aggregate the recorded series
  (`recorded(...)`), so a number in /analytics, on a dashboard and in an alert is the
  same number. Where no recording fits (another grouping such as `by route`, or a
  dashboard's `$__rate_interval`), they call the same builder the recording uses.

Adding a rule family (five helpers add rules, panels and queries through this module):
1. Write each measurement as a small function here taking `window`, `selector` (extra
   label matchers, e.g. `instance=~"$instance"`) and `by` (the grouping), built from
   `rate`, `sum_by` and `ratio`. No PromQL string for a shared measurement elsewhere.
2. If an alert, a panel or /analytics needs it at the standard window, add a `Recording`
   (named `level:metric:operation`) to your family and have the family module beside
   `tooling/rules_gen.py` emit `{"record": r.name, "expr": r.expr}` before its alerts.
3. Read it with `recorded(NAME, selector, by)`; `tests/test_promql.py` evaluates the
   rule, the /analytics query and the panel query on one Prometheus and checks they agree.

No-data rules, the same everywhere: a numerator that has no series yet (no 5xx answer,
no cache hit so far) counts as 0, not as "no data"; a ratio or a quantile over a window
without any traffic is no data, never NaN and never a made-up 0 %; a rate is 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from common import metric_names as m

# The window every recording uses; alerts and the 5-minute panels read it.
WINDOW = "5m"
# Recordings keep these labels: one series per scraped process.
INSTANCE: tuple[str, ...] = ("job", "instance")

SERVER_ERRORS = 'status=~"5.."'
CACHE_HITS = 'result="hit"'


def sample_number(raw: str) -> float | None:
    """A sample's value as the HTTP API returns it (a string), as a number; None for
    NaN or an infinity (a ratio or quantile without data), which JSON cannot carry."""
    value = float(raw)
    return None if math.isnan(value) or math.isinf(value) else value


# --- building blocks -------------------------------------------------------------------


def matchers(*parts: str) -> str:
    """Label matchers joined for one selector; empty parts are left out."""
    return ", ".join(p for p in parts if p)


def series(metric: str, selector: str = "") -> str:
    return f"{metric}{{{selector}}}" if selector else metric


def rate(metric: str, window: str, selector: str = "") -> str:
    return f"rate({series(metric, selector)}[{window}])"


def sum_by(by: Sequence[str], expr: str) -> str:
    """`sum by (...)`, or a plain `sum` for one number."""
    return f"sum by ({', '.join(by)}) ({expr})" if by else f"sum({expr})"


def ratio(numerator: str, denominator: str) -> str:
    """numerator / denominator; no data (not NaN) while the denominator is 0."""
    return f"({numerator})\n/\n({denominator} > 0)"


def at_least_zero(expr: str, fallback: str) -> str:
    """`expr`, or 0 for every series of `fallback` that `expr` has no match for."""
    return f"{expr} or {fallback} * 0"


def quantile(q: float, buckets: str) -> str:
    """The q-quantile of rated histogram buckets (grouped by `le` and more); no data,
    not NaN, while the buckets saw nothing (`>= 0` drops NaN)."""
    return f"histogram_quantile({q:g}, {buckets}) >= 0"


# --- counted events and the share of them that are of one kind --------------------------


def _rate(counter: str, window: str, selector: str, by: Sequence[str]) -> str:
    return sum_by(by, rate(counter, window, selector))


def _part_rate(counter: str, part: str, window: str, selector: str, by: Sequence[str]) -> str:
    """Events matching `part` per second; 0 while no such series exists yet."""
    return at_least_zero(
        _rate(counter, window, matchers(selector, part), by), _rate(counter, window, selector, by)
    )


def _share(counter: str, part: str, window: str, selector: str, by: Sequence[str]) -> str:
    return ratio(
        _part_rate(counter, part, window, selector, by), _rate(counter, window, selector, by)
    )


# --- the app's HTTP requests -----------------------------------------------------------


def requests_rate(window: str, selector: str = "", by: Sequence[str] = INSTANCE) -> str:
    """Requests per second, every route and status."""
    return _rate(m.HTTP_REQUESTS, window, selector, by)


def server_errors_rate(window: str, selector: str = "", by: Sequence[str] = INSTANCE) -> str:
    """5xx answers per second; 0 while no 5xx series exists yet."""
    return _part_rate(m.HTTP_REQUESTS, SERVER_ERRORS, window, selector, by)


def errors_ratio(window: str, selector: str = "", by: Sequence[str] = INSTANCE) -> str:
    """Share of answers that were 5xx."""
    return _share(m.HTTP_REQUESTS, SERVER_ERRORS, window, selector, by)


def latency_buckets_rate(window: str, selector: str = "", by: Sequence[str] = INSTANCE) -> str:
    """The request-duration histogram's buckets per second, per `by` and `le`."""
    return sum_by((*by, "le"), rate(f"{m.HTTP_REQUEST_DURATION}_bucket", window, selector))


def latency_quantile(
    q: float, window: str, selector: str = "", by: Sequence[str] = INSTANCE
) -> str:
    """The q-quantile of request duration (seconds)."""
    return quantile(q, latency_buckets_rate(window, selector, by))


def latency_mean(window: str, selector: str = "", by: Sequence[str] = INSTANCE) -> str:
    """Mean request duration (seconds)."""
    total = _rate(f"{m.HTTP_REQUEST_DURATION}_sum", window, selector, by)
    count = _rate(f"{m.HTTP_REQUEST_DURATION}_count", window, selector, by)
    return ratio(total, count)


def per_minute(counter: str, window: str, selector: str = "", by: Sequence[str] = ()) -> str:
    """A counter's increase per minute, averaged over `window`."""
    return f"{_rate(counter, window, selector, by)} * 60"


# --- the app's cache -------------------------------------------------------------------


def cache_lookups_rate(window: str, selector: str = "", by: Sequence[str] = INSTANCE) -> str:
    return _rate(m.CACHE_REQUESTS, window, selector, by)


def cache_hits_rate(window: str, selector: str = "", by: Sequence[str] = INSTANCE) -> str:
    """Cache hits per second; 0 while the app has not had a hit yet."""
    return _part_rate(m.CACHE_REQUESTS, CACHE_HITS, window, selector, by)


def cache_hits_ratio(window: str, selector: str = "", by: Sequence[str] = INSTANCE) -> str:
    """Share of cache lookups that were hits."""
    return _share(m.CACHE_REQUESTS, CACHE_HITS, window, selector, by)


# --- PostgreSQL ------------------------------------------------------------------------


def db_connections(selector: str = "", by: Sequence[str] = INSTANCE) -> str:
    """PostgreSQL connections in every state, as the exporter sees them."""
    return sum_by(by, series(m.DB_CONNECTIONS, selector))


# --- security (app/guard) ----------------------------------------------------------------


def increase_total(counter: str, window: str, selector: str = "", by: Sequence[str] = ()) -> str:
    """How much a counter grew over `window` (events in the window), summed per `by`."""
    return sum_by(by, f"increase({series(counter, selector)}[{window}])")


def security_measurement(
    measure: str, counter: str, window: str, selector: str = "", by: Sequence[str] = ()
) -> str:
    """What a security alert compares (common/thresholds.py SECURITY): events per
    minute over `window` ("per_minute"), or events within it ("count")."""
    if measure == "per_minute":
        return per_minute(counter, window, selector, by)
    return increase_total(counter, window, selector, by)


def worst(expr: str) -> str:
    """The largest of the series (the kind or class nearest its alert)."""
    return f"max({expr})"


# --- recorded series -------------------------------------------------------------------


@dataclass(frozen=True)
class Recording:
    name: str
    expr: str


REQUESTS_RATE = "instance:tracetrack_http_requests:rate5m"
SERVER_ERRORS_RATE = "instance:tracetrack_http_request_errors:rate5m"
ERRORS_RATIO = "instance:tracetrack_http_request_errors:ratio_rate5m"
LATENCY_BUCKETS_RATE = "instance_le:tracetrack_http_request_duration_seconds_bucket:rate5m"
LATENCY_P95 = "instance:tracetrack_http_request_duration_seconds:p95_rate5m"
CACHE_LOOKUPS_RATE = "instance:tracetrack_cache_requests:rate5m"
CACHE_HITS_RATE = "instance:tracetrack_cache_hits:rate5m"
CACHE_HITS_RATIO = "instance:tracetrack_cache_hits:ratio_rate5m"
DB_CONNECTIONS_SUM = "instance:tracetrack_db_connections:sum"

# In evaluation order: a ratio or a quantile reads the rates recorded before it in the
# same group, so it sees this evaluation's values.
RECORDINGS: tuple[Recording, ...] = (
    Recording(REQUESTS_RATE, requests_rate(WINDOW)),
    Recording(SERVER_ERRORS_RATE, server_errors_rate(WINDOW)),
    Recording(ERRORS_RATIO, ratio(SERVER_ERRORS_RATE, REQUESTS_RATE)),
    Recording(LATENCY_BUCKETS_RATE, latency_buckets_rate(WINDOW)),
    Recording(LATENCY_P95, quantile(0.95, LATENCY_BUCKETS_RATE)),
    Recording(CACHE_LOOKUPS_RATE, cache_lookups_rate(WINDOW)),
    Recording(CACHE_HITS_RATE, cache_hits_rate(WINDOW)),
    Recording(CACHE_HITS_RATIO, ratio(CACHE_HITS_RATE, CACHE_LOOKUPS_RATE)),
    Recording(DB_CONNECTIONS_SUM, db_connections()),
)


def recorded(name: str, selector: str = "", by: Sequence[str] = ()) -> str:
    """A recorded per-instance series summed over instances (per `by`)."""
    return sum_by(by, series(name, selector))


def recorded_ratio(numerator: str, denominator: str, selector: str = "") -> str:
    """A ratio over every selected instance from two recorded rates: the sum of the
    parts, not the mean of per-instance ratios."""
    return ratio(recorded(numerator, selector), recorded(denominator, selector))


def recorded_latency_quantile(q: float, selector: str = "") -> str:
    """The q-quantile of request duration over every selected instance."""
    return quantile(q, sum_by(("le",), series(LATENCY_BUCKETS_RATE, selector)))
