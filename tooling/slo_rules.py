"""The SLO rule family: recording rules and burn-rate alerts built from common/slo.py.

Two groups. `tracetrack-slo` records the error ratio over each alert window and
holds the alerts after them (same group, so an alert sees this evaluation's
values). `tracetrack-slo-budget` records the 30-day error budget every 5 minutes:
a 30-day range is too costly to read every 10 s and the budget moves slowly.
"""

from __future__ import annotations

from typing import Any

from common import slo
from tooling import cause_rules
from tooling.rule_annotations import alert_annotations

ALERT = "TraceTrackErrorBudgetBurn"
BUDGET_INTERVAL = "5m"
# The long window's burn rate, as the annotations show it.
BURN_VALUE = '{{ $value | printf "%.1f" }}x'


def _recordings(window: str) -> list[dict[str, str]]:
    errors = slo.recorded(slo.REQUEST_ERRORS, window)
    up = slo.recorded(slo.UPTIME, window)
    return [
        {"record": errors, "expr": slo.request_errors(window)},
        {"record": up, "expr": slo.uptime(window)},
        {"record": slo.recorded(slo.ERRORS, window), "expr": slo.combine(errors, up)},
    ]


def threshold(alert: slo.BurnRateAlert) -> str:
    """The limit as people read it: the burn rate and the error ratio it means."""
    ratio = alert.factor * slo.BUDGET
    return f"burn rate > {alert.factor:g} (error ratio > {ratio * 100:.3g} %)"


def _alert(alert: slo.BurnRateAlert) -> dict[str, Any]:
    long_ = slo.recorded(slo.ERRORS, alert.long)
    short = slo.recorded(slo.ERRORS, alert.short)
    limit = f"{alert.factor:g}"
    # The value is the long window's burn rate: how fast the budget goes.
    expr = f"{slo.burn_rate(long_)} > {limit}\nand on (job)\n{slo.burn_rate(short)} > {limit}"
    if alert.severity == "critical":
        # A page for an outage that a cause alert already paged, and that has ended
        # (the short window still holds it), would be the fault's second page. The
        # budget counts down time, so a dead app target is such a cause: TargetDown
        # pages it at 30s, a burn page minutes later would say it again (an app that
        # flaps too fast for TargetDown still pages here).
        expr += "\n" + cause_rules.unless_recently(cause_rules.APP_DOWN_CAUSES, alert.short)
        expr += "\n" + cause_rules.unless_recently(
            (cause_rules.TARGET_DOWN,), alert.short, on="job"
        )
    action = "page" if alert.severity == "critical" else "ticket"
    return {
        "alert": ALERT,
        "expr": expr,
        "for": alert.for_,
        "labels": {
            "severity": alert.severity,
            "long_window": alert.long,
            "short_window": alert.short,
        },
        "annotations": alert_annotations(
            ALERT,
            summary=f"The app is burning its {slo.objective_percent()} availability error budget"
            f" {limit}x too fast ({alert.long} and {alert.short} windows)",
            description="Over the last "
            + alert.long
            + f" the app's error budget burned at {BURN_VALUE} the rate that"
            f" lasts {slo.WINDOW_DAYS} days (5xx answers and down time), and it is still"
            f" burning over the last {alert.short}. The {action} threshold is {threshold(alert)}:"
            f" that burn spends {alert.budget_spent} of the {slo.WINDOW_DAYS}-day budget"
            f" in {alert.long}.",
            value=f"burn rate {BURN_VALUE}",
            threshold=threshold(alert),
            dashboard=("tracetrack-performance", "Error budget burn rate"),
        ),
    }


def slo_groups() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for window in slo.ALERT_WINDOWS:
        rules.extend(_recordings(window))
    rules.extend(_alert(a) for a in slo.BURN_RATE_ALERTS)
    budget_ratio = slo.error_ratio(slo.BUDGET_WINDOW)
    return [
        {"name": "tracetrack-slo", "rules": rules},
        {
            "name": "tracetrack-slo-budget",
            "interval": BUDGET_INTERVAL,
            "rules": [
                {
                    "record": slo.recorded(slo.ERRORS, slo.BUDGET_WINDOW),
                    "expr": budget_ratio,
                },
                {
                    "record": slo.BUDGET_REMAINING,
                    "expr": slo.budget_remaining(slo.recorded(slo.ERRORS, slo.BUDGET_WINDOW)),
                },
            ],
        },
    ]
