"""The alert thresholds of docs/architecture.md §5: the single source of truth.

Rules (`prometheus/rules.yml`), dashboards, the runbook and tests derive from
this table or are checked against it. Values are in base units (seconds,
ratios 0-1, counts). `direction` says which side of the threshold is bad.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, get_args

from common import metric_names as names

# The two levels of every threshold, milder first: each becomes an alert of that
# severity (common/alerting.py).
Level = Literal["warning", "critical"]
LEVELS: tuple[Level, ...] = get_args(Level)


@dataclass(frozen=True)
class Threshold:
    key: str  # stable identifier, used in alert names
    title: str  # the row of the table in docs/architecture.md §5
    warning: float
    critical: float
    unit: str  # "seconds" | "ratio" | "count"
    direction: Literal["above", "below"]

    @property
    def comparison(self) -> Literal[">", "<"]:
        """How a value breaches it, as the rules write it."""
        return ">" if self.direction == "above" else "<"

    def limit(self, level: Level) -> float:
        return self.warning if level == "warning" else self.critical

    def breached(self, value: float, level: Level) -> bool:
        limit = self.limit(level)
        return value > limit if self.direction == "above" else value < limit


class Breachable(Protocol):
    def breached(self, value: float, level: Level) -> bool: ...


def worst_level(t: Breachable, value: float) -> Level | None:
    """The worse level `value` breaches (critical before warning), None within both:
    how /analytics and the reports colour a figure."""
    for level in reversed(LEVELS):
        if t.breached(value, level):
            return level
    return None


THRESHOLDS: tuple[Threshold, ...] = (
    Threshold("response_time", "Response time", 2.0, 5.0, "seconds", "above"),
    Threshold("error_rate", "Error rate", 0.02, 0.05, "ratio", "above"),
    Threshold("cpu_usage", "CPU usage", 0.75, 0.90, "ratio", "above"),
    Threshold("memory_usage", "Memory usage", 0.80, 0.90, "ratio", "above"),
    Threshold("concurrent_users", "Concurrent users", 1500, 2000, "count", "above"),
    Threshold("db_connections", "Database connections", 200, 240, "count", "above"),
    Threshold("cache_hit_rate", "Cache hit rate", 0.70, 0.50, "ratio", "below"),
)

BY_KEY: dict[str, Threshold] = {t.key: t for t in THRESHOLDS}


# --- Table maintenance ---------------------------------------------------------
# Not rows of the §5 table (no warning/critical pair): docs/architecture.md §11's "Run
# weekly: VACUUM ANALYZE" as `info` alerts. tooling/rules_gen.py builds them from
# these numbers; tests/support/threshold_check.py checks the runbook quotes them.


@dataclass(frozen=True)
class Maintenance:
    max_age_days: int  # last VACUUM / ANALYZE older than this is overdue (the weekly advice)
    min_live_rows: (
        int  # smaller tables are cheap to scan and plan; keeps a new, empty install quiet
    )
    dead_ratio: float  # dead rows / (dead + live); autovacuum starts near 0.17
    min_dead_rows: int  # below this many dead rows, a high ratio is a small table's noise
    for_: str  # how long it must hold: autovacuum gets time to catch up after a bulk load

    @property
    def max_age_seconds(self) -> int:
        return self.max_age_days * 86400


MAINTENANCE = Maintenance(
    max_age_days=7, min_live_rows=10_000, dead_ratio=0.20, min_dead_rows=10_000, for_="1h"
)


# --- Security monitoring (app/guard) ---------------------------------------------------
# Not rows of the §5 table: the security monitoring of docs/architecture.md §11 as alerts.
# tooling/security_rules.py builds the rules from these numbers; docs/runbook.md quotes
# them (tests check both). Rates are per minute over the last 5 minutes; counts are
# increases over the last 15 minutes. Summed over every app instance (an attack spread
# over replicas is one attack), per `by` label.


@dataclass(frozen=True)
class SecurityThreshold:
    key: str
    alert: str
    title: str  # what is measured, as a sentence's subject
    metric: str  # the counter (common/metric_names.py)
    warning: float
    critical: float
    measure: Literal["per_minute", "count"]
    window: str  # PromQL range
    by: tuple[str, ...]  # labels an alert is split by, besides job
    for_: dict[str, str]  # severity -> `for:`

    direction: Literal["above"] = "above"

    def limit(self, level: Level) -> float:
        return self.warning if level == "warning" else self.critical

    def breached(self, value: float, level: Level) -> bool:
        return value > self.limit(level)

    def human(self, level: Level) -> str:
        """`> 20 per minute` / `> 3 in 15 minutes`, as the runbook and the pages say it."""
        value = f"{self.limit(level):g}"
        if self.measure == "per_minute":
            return f"> {value} per minute"
        return f"> {value} in {self.window.removesuffix('m')} minutes"


_SECURITY_FOR = {"warning": "1m", "critical": "30s"}

SECURITY: tuple[SecurityThreshold, ...] = (
    # A person who forgot a password fails a handful of times; 20 a minute is a script.
    SecurityThreshold(
        "login_failures",
        "TraceTrackLoginFailuresHigh",
        "Failed logins",
        names.LOGIN_FAILURES,
        20,
        100,
        "per_minute",
        "5m",
        (),
        _SECURITY_FOR,
    ),
    SecurityThreshold(
        "account_lockouts",
        "TraceTrackLoginLockouts",
        "Login lockouts",
        names.ACCOUNT_LOCKOUTS,
        3,
        20,
        "count",
        "15m",
        ("scope",),
        _SECURITY_FOR,
    ),
    # The limits sit far above any working user's pace (common/settings.py): a few 429s
    # a minute is someone's script; hundreds is a flood.
    SecurityThreshold(
        "rate_limited",
        "TraceTrackRateLimited",
        "Rate-limited requests",
        names.RATE_LIMITED,
        60,
        600,
        "per_minute",
        "5m",
        ("route_class",),
        _SECURITY_FOR,
    ),
    SecurityThreshold(
        "suspicious_scans",
        "TraceTrackSuspiciousScans",
        "Suspicious scans",
        names.SUSPICIOUS_SCANS,
        20,
        200,
        "count",
        "15m",
        ("kind",),
        _SECURITY_FOR,
    ),
    # Vulnerability scanners send a few of these to every site; dozens is a focused attempt.
    SecurityThreshold(
        "injection_attempts",
        "TraceTrackInjectionAttempts",
        "Injection attempts",
        names.INJECTION_ATTEMPTS,
        5,
        50,
        "count",
        "15m",
        ("kind",),
        _SECURITY_FOR,
    ),
)
SECURITY_BY_KEY: dict[str, SecurityThreshold] = {t.key: t for t in SECURITY}
