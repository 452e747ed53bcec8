"""The alert thresholds of DESIGN §5: the single source of truth.

Rules (`prometheus/rules.yml`), dashboards, the runbook and tests derive from
this table or are checked against it. Values are in base units (seconds,
ratios 0-1, counts). `direction` says which side of the threshold is bad.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Threshold:
    key: str                     # stable identifier, used in alert names
    title: str                   # the row of the operator guide's table
    warning: float
    critical: float
    unit: str                    # "seconds" | "ratio" | "count"
    direction: Literal["above", "below"]

    def breached(self, value: float, level: Literal["warning", "critical"]) -> bool:
        limit = self.warning if level == "warning" else self.critical
        return value > limit if self.direction == "above" else value < limit


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
