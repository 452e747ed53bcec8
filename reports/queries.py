"""The PromQL behind the reports, built from common/metric_names.py and common/slo.py.

Every function takes the report's window as a Prometheus duration (`86400s`) and is
evaluated at the end of the period. `rw` is the range window of rates drawn over
time: at least four scrape intervals, so each holds several samples.
"""

from __future__ import annotations

from common import metric_names as m
from common import slo

LOGIN_ROUTE = "/api/auth/login"
SERVER_ERRORS = 'status=~"5.."'


def dur(seconds: float) -> str:
    return f"{int(seconds)}s"


def increase(metric: str, window: str, selector: str = "", by: str = "") -> str:
    braces = f"{{{selector}}}" if selector else ""
    group = f" by ({by})" if by else ""
    return f"sum{group} (increase({metric}{braces}[{window}]))"


def ratio(numerator: str, denominator: str) -> str:
    """`numerator / denominator`, 0 when the numerator has no series but the
    denominator does, and no result (no data) when the denominator is 0."""
    return f"({numerator} or {denominator} * 0) / ({denominator} > 0)"


def error_ratio(window: str) -> str:
    return ratio(
        increase(m.HTTP_REQUESTS, window, SERVER_ERRORS), increase(m.HTTP_REQUESTS, window)
    )


def cache_hit_ratio(window: str) -> str:
    return ratio(
        increase(m.CACHE_REQUESTS, window, 'result="hit"'), increase(m.CACHE_REQUESTS, window)
    )


def quantile(q: float, window: str, by: str = "") -> str:
    group = f"{by}, le" if by else "le"
    return (
        f"histogram_quantile({q}, sum by ({group})"
        f" (increase({m.HTTP_REQUEST_DURATION}_bucket[{window}])))"
    )


def buckets(window: str, by: str = "") -> str:
    """The latency histogram's buckets summed over the window (`le` and `by` kept)."""
    group = f"{by}, le" if by else "le"
    return f"sum by ({group}) (increase({m.HTTP_REQUEST_DURATION}_bucket[{window}]))"


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


def requests_per_minute(rw: str) -> str:
    return f"sum(rate({m.HTTP_REQUESTS}[{rw}])) * 60"


def error_ratio_over_time(rw: str) -> str:
    return ratio(
        f"sum(rate({m.HTTP_REQUESTS}{{{SERVER_ERRORS}}}[{rw}]))",
        f"sum(rate({m.HTTP_REQUESTS}[{rw}]))",
    )


def quantile_over_time(q: float, rw: str) -> str:
    return f"histogram_quantile({q}, sum by (le) (rate({m.HTTP_REQUEST_DURATION}_bucket[{rw}])))"


def logins(window: str) -> str:
    return increase(m.HTTP_REQUESTS, window, f'route="{LOGIN_ROUTE}", status=~"2.."')
