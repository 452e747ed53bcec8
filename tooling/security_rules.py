"""The security rule family: security monitoring (docs/architecture.md §11) as alerts.

One alert name per row of `common.thresholds.SECURITY`, each with a warning and a
critical rule: failed logins, login lockouts, rate-limit violations, suspicious scans,
injection attempts. The counters are the app guard's (app/guard, docs/security.md);
the expressions are common/promql.py's builders, so the Security dashboard and
/analytics show the numbers the alerts compare. Summed over every app instance: an
attack spread over replicas is one attack, so one page (per `by` label: a flood of
rate limits on reads and one on logins are different problems).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from common import promql
from common.thresholds import LEVELS, SECURITY, SecurityThreshold

GROUP = "tracetrack-security"
DASHBOARD_UID = "tracetrack-security"
# The Security dashboard's stat per row (grafana/build.py); each alert links to its own.
SECURITY_PANELS = {
    "login_failures": "Failed logins per minute",
    "account_lockouts": "Login lockouts (15 min)",
    "rate_limited": "Rate-limited requests per minute",
    "suspicious_scans": "Suspicious scans (15 min)",
    "injection_attempts": "Injection attempts (15 min)",
}

Alert = Callable[..., dict[str, Any]]


def measurement(t: SecurityThreshold, selector: str = "", by: tuple[str, ...] | None = None) -> str:
    """The number the alert compares: per minute over the window, or events in it."""
    group = ("job", *t.by) if by is None else by
    return promql.security_measurement(t.measure, t.metric, t.window, selector, group)


VALUE = {
    "per_minute": '{{ $value | printf "%.1f" }} per minute over the last {window}',
    "count": '{{ $value | printf "%.0f" }} in the last {window}',
}
VALUE_ONLY = {
    "per_minute": '{{ $value | printf "%.1f" }} per minute',
    "count": '{{ $value | printf "%.0f" }}',
}
WINDOW_WORDS = {"5m": "5 minutes", "15m": "15 minutes"}


def _where(t: SecurityThreshold) -> str:
    parts = [f"{label} {{{{ $labels.{label} }}}}" for label in t.by]
    return f" ({', '.join(parts)})" if parts else ""


def _rule(alert: Alert, t: SecurityThreshold, level: str) -> dict[str, Any]:
    limit = t.human(level)  # type: ignore[arg-type]
    value = VALUE[t.measure].replace("{window}", WINDOW_WORDS[t.window])
    return alert(
        t.alert,
        f"{measurement(t)} > {promql_number(t.limit(level))}",  # type: ignore[arg-type]
        t.for_[level],
        level,
        f"{t.title}{_where(t)} above the {level} threshold ({limit}) on {{{{ $labels.job }}}}",
        f"{t.title}{_where(t)}: {value}, all instances of {{{{ $labels.job }}}}."
        f" The {level} threshold is {limit}. Recent events and the top offending IPs and"
        " accounts: `tracetrack security events --since 1h` or /analytics/api/security.",
        value=VALUE_ONLY[t.measure],
        threshold=f"{limit}, for {t.for_[level]}",
        dashboard=(DASHBOARD_UID, SECURITY_PANELS[t.key]),
    )


def promql_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def security_group(alert: Alert) -> dict[str, Any]:
    """The group; `alert(name, expr, for, severity, summary, description, value=,
    threshold=)` builds a rule (tooling/rules_gen.py's, with the shared annotations)."""
    return {"name": GROUP, "rules": [_rule(alert, t, level) for t in SECURITY for level in LEVELS]}
