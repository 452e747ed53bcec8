"""The security guard's Prometheus metrics (docs/architecture.md §6), defined once.

Labels are bounded sets (common/metric_names.py): an IP address or a user name never
becomes a label, so an attacker cannot grow the number of series. Every labelled
counter starts at 0 for each known value, so `increase()` sees the first event.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from common import metric_names as names


@dataclass(frozen=True)
class GuardMetrics:
    login_failures: Counter  # {reason}
    lockouts: Counter  # {scope}
    rate_limited: Counter  # {route_class}
    suspicious_scans: Counter  # {kind}
    injection_attempts: Counter  # {kind}
    blocked_requests: Counter
    blocked_clients: Gauge
    events_dropped: Counter


def _counter(name: str, doc: str, label: str | None, values: tuple[str, ...], registry) -> Counter:
    counter = Counter(name.removesuffix("_total"), doc, [label] if label else [], registry=registry)
    for value in values:
        counter.labels(value)
    return counter


def make_guard_metrics(registry: CollectorRegistry = REGISTRY) -> GuardMetrics:
    return GuardMetrics(
        login_failures=_counter(
            names.LOGIN_FAILURES,
            "Failed logins by reason (bad_password, unknown_user, locked_out: refused unchecked).",
            "reason",
            names.LOGIN_FAILURE_REASONS,
            registry,
        ),
        lockouts=_counter(
            names.ACCOUNT_LOCKOUTS,
            "Login lockouts started, of one account or of one client IP across accounts.",
            "scope",
            names.LOCKOUT_SCOPES,
            registry,
        ),
        rate_limited=_counter(
            names.RATE_LIMITED,
            "Requests answered 429 by the rate limits, by route class.",
            "route_class",
            names.ROUTE_CLASSES,
            registry,
        ),
        suspicious_scans=_counter(
            names.SUSPICIOUS_SCANS,
            "Suspicious scanning patterns seen, by kind (counted, never refused).",
            "kind",
            names.SUSPICIOUS_SCAN_KINDS,
            registry,
        ),
        injection_attempts=_counter(
            names.INJECTION_ATTEMPTS,
            "Rejected input carrying an SQL, script or path-traversal signature, by kind.",
            "kind",
            names.INJECTION_KINDS,
            registry,
        ),
        blocked_requests=_counter(
            names.BLOCKED_REQUESTS,
            "Requests answered 403 because their client IP is blocked.",
            None,
            (),
            registry,
        ),
        blocked_clients=Gauge(
            names.BLOCKED_CLIENTS,
            "Active IP blocks (addresses or networks), as the workers last read them.",
            multiprocess_mode="livemax",
            registry=registry,
        ),
        events_dropped=_counter(
            names.SECURITY_EVENTS_DROPPED,
            "Security events not stored because the writer's queue was full.",
            None,
            (),
            registry,
        ),
    )


@cache
def default_metrics() -> GuardMetrics:
    """The process's guard metrics in the default registry (created on first use, so
    that `tracetrack app` has chosen multiprocess mode before they exist)."""
    return make_guard_metrics()
