"""The PromQL behind the reports: the shared builders of common/promql.py and
common/slo.py, evaluated over the report's period.

Every function takes the period's window as a Prometheus duration (`86400s`) and is
evaluated at the end of the period; a ratio of rates over the window is the ratio of
the increases over it. `rw` is the range window of the charts' rates: at least four
scrape intervals, so each holds several samples.
"""

from __future__ import annotations

from common import metric_names as m
from common import promql, slo

LOGIN_ROUTE = "/api/auth/login"
WHOLE: tuple[str, ...] = ()  # one number for everything (no grouping)


def dur(seconds: float) -> str:
    return f"{int(seconds)}s"


def increase(metric: str, window: str, selector: str = "", by: str = "") -> str:
    return promql.increase_total(metric, window, selector, (by,) if by else WHOLE)


def error_ratio(window: str) -> str:
    return promql.errors_ratio(window, by=WHOLE)


def cache_hit_ratio(window: str) -> str:
    return promql.cache_hits_ratio(window, by=WHOLE)


def quantile(q: float, window: str) -> str:
    return promql.latency_quantile(q, window, by=WHOLE)


def buckets(window: str, by: str) -> str:
    """The latency histogram's buckets over the window, per `by` and `le`."""
    return promql.latency_buckets_rate(window, by=(by,))


def requests_per_minute(window: str) -> str:
    return promql.per_minute(m.HTTP_REQUESTS, window)


def peak(expr: str, window: str, resolution: str) -> str:
    """The highest value of an aggregated expression over the window (a subquery at
    `resolution`, the scrape interval: every sample counts)."""
    return f"max_over_time(({expr})[{window}:{resolution}])"


def gauge_peak(metric: str, window: str, by: str = "") -> str:
    group = f" by ({by})" if by else ""
    return f"max{group} (max_over_time({metric}[{window}]))"


def availability(window: str) -> str:
    return f"1 - ({slo.error_ratio(window)})"


def budget_remaining() -> str:
    return slo.budget_remaining(slo.error_ratio(slo.BUDGET_WINDOW))


def logins(window: str) -> str:
    return increase(m.HTTP_REQUESTS, window, f'route="{LOGIN_ROUTE}", status=~"2.."')
