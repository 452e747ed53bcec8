"""The app's availability SLO: one definition for its rules, dashboards, /analytics and reports.

Objective: 99.9 % of the app's answers are good over a rolling 30 days (the operator
guide's "99.9 % uptime"). Good means not 5xx; time the app's scrape target is down
counts as bad time too, because a dead app answers nothing and would otherwise look
perfect. The error ratio over a window is therefore

    1 - (1 - 5xx answers / all answers) * (share of the window the app was up)

so an hour fully down is an error ratio of 1 for that hour whatever the traffic was,
and a window without any request falls back to the down time alone.

The burn rate is that ratio divided by the allowed one (1 - 0.999): 1 spends the
budget exactly over 30 days. The alerts are the multi-window, multi-burn-rate alerts
of Google's SRE workbook (chapter "Alerting on SLOs"): a long window says the burn
is significant, a short one that it is still going on, so the alert resolves soon
after the burn stops.
"""

from __future__ import annotations

from dataclasses import dataclass

from common import promql
from common.topology import APP_JOB

OBJECTIVE = 0.999
WINDOW_DAYS = 30
BUDGET = 1 - OBJECTIVE  # the error ratio the objective allows


@dataclass(frozen=True)
class BurnRateAlert:
    """One line of the SRE workbook's table: page or ticket at `factor` x the
    sustainable burn, when both the long and the short window exceed it."""

    severity: str
    factor: float
    long: str
    short: str
    for_: str
    budget_spent: str  # how much of the 30-day budget this burn spends over `long`


BURN_RATE_ALERTS: tuple[BurnRateAlert, ...] = (
    # Page: 2 % of the budget in an hour, or 5 % in six hours.
    BurnRateAlert("critical", 14.4, "1h", "5m", "2m", "2 %"),
    BurnRateAlert("critical", 6, "6h", "30m", "15m", "5 %"),
    # Ticket: 10 % of the budget in a day, or in three days.
    BurnRateAlert("warning", 3, "1d", "2h", "1h", "10 %"),
    BurnRateAlert("warning", 1, "3d", "6h", "3h", "10 %"),
)

# Every window an alert needs, shortest first; each gets recording rules.
ALERT_WINDOWS: tuple[str, ...] = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
BUDGET_WINDOW = f"{WINDOW_DAYS}d"

# Recording rules (`level:metric:operation`), one set per window.
REQUEST_ERRORS = "job:tracetrack_slo_request_errors:ratio_rate{window}"
UPTIME = "job:tracetrack_slo_uptime:avg{window}"
ERRORS = "job:tracetrack_slo_errors:ratio_rate{window}"
# 1 = untouched, 0 = spent, negative = overspent; over BUDGET_WINDOW.
BUDGET_REMAINING = "job:tracetrack_slo_error_budget:remaining"

_APP = f'job="{APP_JOB}"'


def recorded(name: str, window: str) -> str:
    return name.format(window=window)


def _sel(extra: str) -> str:
    return f"{_APP}, {extra}" if extra else _APP


def request_errors(window: str, selector: str = "") -> str:
    """5xx answers / all answers over `window`, per job: common/promql.py's error ratio
    (no result while the app answered nothing: 0/0 would be NaN, and a NaN error ratio
    compares false, so a dead app would never page)."""
    return promql.errors_ratio(window, _sel(selector), by=("job",))


def uptime(window: str, selector: str = "") -> str:
    """The share of `window` the app's scrape target answered (up == 1)."""
    return f"avg by (job) (avg_over_time(up{{{_sel(selector)}}}[{window}]))"


def combine(request_errors_expr: str, uptime_expr: str) -> str:
    """The SLO's error ratio from its two parts; a window without requests counts
    its down time only."""
    return (
        f"1 - (1 - ({request_errors_expr} or on (job) 0 * {uptime_expr})) * on (job) {uptime_expr}"
    )


def error_ratio(window: str, selector: str = "") -> str:
    """The SLO's error ratio over `window`, straight from the raw series (reports,
    dashboards, /analytics); the rules record the same for the alert windows.
    `selector` narrows it further (a dashboard's `instance=~"$instance"`)."""
    return combine(f"({request_errors(window, selector)})", uptime(window, selector))


def budget_remaining(error_ratio_expr: str) -> str:
    return f"1 - ({error_ratio_expr}) / {BUDGET:g}"


def burn_rate(error_ratio_expr: str) -> str:
    return f"({error_ratio_expr}) / {BUDGET:g}"


def objective_percent() -> str:
    return f"{OBJECTIVE * 100:g} %"
