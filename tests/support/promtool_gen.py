"""Generates the promtool unit tests of the threshold alerts from common/thresholds.py.

    python -m tests.support.promtool_gen > prometheus/tests/thresholds.yml

For every row of the thresholds table: at (or just inside) the warning limit
nothing fires; just past it the warning fires only after its `for:`; just inside
the critical limit only the warning fires; just past it the critical fires after
its own `for:` and the warning later. Response time, error rate and cache hit rate get
their minimum-traffic guard tested on both sides. The input series are built so
the measured value is known here (e.g. 6 % of requests in the 2-5 s bucket put
the p95 at exactly 2.5 s), and the expected annotations show that value the way
Prometheus' template functions print it, so a wrong expression or a wrong
`$value` formatting fails.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from common import metric_names as m
from common import topology
from common.thresholds import BY_KEY, Level, Threshold
from tests.support import promtool_file
from tooling import rules_gen
from tooling.rule_annotations import VALUE_TEMPLATE
from tooling.stackconfig import duration_seconds

EVAL = 10  # seconds; the shipped evaluation_interval
APP = {"job": topology.APP_JOB, "instance": f"127.0.0.1:{topology.APP_PORT}"}
EXPORTER = {"job": topology.EXPORTER_JOB, "instance": f"127.0.0.1:{topology.EXPORTER_PORT}"}
SAMPLES = 75  # 12.5 minutes of samples at EVAL spacing

Series = list[dict[str, str]]


def series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    body = ", ".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{body}}}", "values": values}


def gauge(value: float) -> str:
    return f"{rules_gen.promql_number(value)}x{SAMPLES}"


def counter(per_interval: float) -> str:
    return f"0+{rules_gen.promql_number(per_interval)}x{SAMPLES}"


# --- how Prometheus' template functions print $value (Go's %.4g) ---------------


def humanize_percentage(v: float) -> str:
    return f"{v * 100:.4g}%"


def humanize_duration(v: float) -> str:
    if 1 <= v < 60:
        return f"{v:.4g}s"
    raise ValueError(f"test values are chosen between 1 and 60 seconds, got {v}")


def printf_0f(v: float) -> str:
    return f"{v:.0f}"


HUMANIZE: dict[str, Callable[[float], str]] = {
    "seconds": humanize_duration,
    "ratio": humanize_percentage,
    "count": printf_0f,
}


# --- input builders: a value of the row -> (series, labels of the alert) --------


def gauge_input(metric: str, target: dict[str, str]) -> Callable[[float], Series]:
    return lambda v: [series(metric, target, gauge(v))]


def db_connections_input(v: float) -> Series:
    idle = 10
    return [
        series(m.DB_CONNECTIONS, {**EXPORTER, "state": "active"}, gauge(v - idle)),
        series(m.DB_CONNECTIONS, {**EXPORTER, "state": "idle"}, gauge(idle)),
    ]


# Histogram inputs: cumulative requests per bucket per interval (100 requests).
# histogram_quantile interpolates linearly inside the bucket holding rank 95.
LATENCY_CASES = {
    # p95 -> cumulative counts for le = 0.5, 1, 2, 5, 10, +Inf
    1 + 5 / 6: (80, 90, 96, 100, 100, 100),  # 4 % above 2 s
    2 + 3 * 1 / 6: (80, 90, 94, 100, 100, 100),  # 6 % above 2 s
    2 + 3 * 45 / 46: (20, 30, 50, 96, 100, 100),  # 4 % above 5 s
    5 + 5 * 1 / 6: (20, 30, 50, 94, 100, 100),  # 6 % above 5 s
}
LATENCY_BUCKETS = ("0.5", "1", "2", "5", "10", "+Inf")


LATENCY_LABELS = {**APP, "method": "GET", "route": "/api/bags/{qr_id}"}


def latency_input(p95: float) -> Series:
    # x10: 1000 requests per interval, so the traffic guard's 5-minute rate is past its
    # minimum from the first evaluation (rate() divides by the whole window); the
    # quantile does not change with the scale.
    return _latency_series(tuple(10 * c for c in LATENCY_CASES[p95]))


def all_slow_latency_input(per_interval: float) -> Series:
    """Every request slower than the last finite bucket: the p95 is that bucket's 10 s."""
    return _latency_series((0, 0, 0, 0, 0, per_interval))


def _latency_series(cumulative: tuple[float, ...]) -> Series:
    """The histogram's buckets and the request counter the traffic guard reads."""
    name = f"{m.HTTP_REQUEST_DURATION}_bucket"
    return [
        *(
            series(name, {**LATENCY_LABELS, "le": le}, counter(c))
            for le, c in zip(LATENCY_BUCKETS, cumulative, strict=True)
        ),
        series(m.HTTP_REQUESTS, {**LATENCY_LABELS, "status": "200"}, counter(cumulative[-1])),
    ]


def ratio_input(
    metric: str, label: str, bad: str, good: str, bad_is_numerator: bool, per_interval: int = 1000
) -> Callable[[float], Series]:
    """Two counters whose ratio is the row's value (errors/all or hits/all)."""

    def build(v: float) -> Series:
        numerator = round(v * per_interval)
        assert abs(numerator / per_interval - v) < 1e-9, v
        first, second = (bad, good) if bad_is_numerator else (good, bad)
        return [
            series(metric, {**APP, **_split(label, first)}, counter(numerator)),
            series(metric, {**APP, **_split(label, second)}, counter(per_interval - numerator)),
        ]

    return build


def _split(label: str, value: str) -> dict[str, str]:
    if label == "status":
        return {"method": "GET", "route": "/api/bags/{qr_id}", "status": value}
    return {label: value}


@dataclass(frozen=True)
class Row:
    key: str
    build: Callable[[float], Series]
    labels: dict[str, str]  # the alert's labels besides alertname and severity
    first_true: int  # seconds until the expression can be true
    step: float  # "just past" the threshold
    exact: bool  # the input reproduces the threshold exactly


ROWS = (
    Row("response_time", latency_input, APP, EVAL, 0.0, False),
    Row(
        "error_rate",
        ratio_input(m.HTTP_REQUESTS, "status", "500", "200", True),
        APP,
        EVAL,
        0.001,
        False,
    ),
    Row("cpu_usage", gauge_input(m.CPU_USAGE, EXPORTER), EXPORTER, 0, 0.01, True),
    Row("memory_usage", gauge_input(m.MEMORY_USAGE, EXPORTER), EXPORTER, 0, 0.01, True),
    Row("concurrent_users", gauge_input(m.ACTIVE_USERS, APP), APP, 0, 1, True),
    Row("db_connections", db_connections_input, EXPORTER, 0, 1, True),
    Row(
        "cache_hit_rate",
        ratio_input(m.CACHE_REQUESTS, "result", "hit", "miss", True),
        APP,
        EVAL,
        0.001,
        False,
    ),
)


def _values(t: Threshold, row: Row) -> dict[str, float]:
    """Inputs around both limits. `inside` is the worst value that must stay quiet."""
    sign = 1 if t.direction == "above" else -1
    if row.key == "response_time":
        below_w, above_w, below_c, above_c = sorted(LATENCY_CASES)
        return {
            "inside_warning": below_w,
            "past_warning": above_w,
            "inside_critical": below_c,
            "past_critical": above_c,
        }
    inside = 0 if row.exact else row.step
    return {
        "inside_warning": t.warning - sign * inside,
        "past_warning": t.warning + sign * row.step,
        "inside_critical": t.critical - sign * inside,
        "past_critical": t.critical + sign * row.step,
    }


def _expected(row: Row, level: Level, value: float) -> dict[str, Any]:
    rule = rules_gen._row_rule(rules_gen.ROW_ALERT_BY_KEY[row.key], level)
    t = BY_KEY[row.key]
    shown = HUMANIZE[t.unit](value)

    def fill(text: str) -> str:
        return text.replace(VALUE_TEMPLATE[t.unit], shown).replace(
            "{{ $labels.instance }}", row.labels["instance"]
        )

    return {
        "exp_labels": {"severity": level, **row.labels},
        "exp_annotations": {k: fill(v) for k, v in rule["annotations"].items()},
    }


def _check(alert: str, at: int, expected: list[dict[str, Any]]) -> dict[str, Any]:
    return {"eval_time": f"{at}s", "alertname": alert, "exp_alerts": expected}


def row_tests(row: Row) -> list[dict[str, Any]]:
    t = BY_KEY[row.key]
    alert = rules_gen.ROW_ALERT_BY_KEY[row.key].alert
    v = _values(t, row)
    warn_for = int(duration_seconds(rules_gen.FOR["warning"]))
    crit_for = int(duration_seconds(rules_gen.FOR["critical"]))
    warn_at = row.first_true + warn_for
    crit_at = row.first_true + crit_for
    late = warn_at + 60
    at_or_inside = "at" if row.exact else "just inside"
    w, c = rules_gen.format_limit(t, "warning"), rules_gen.format_limit(t, "critical")
    return [
        {
            "name": f"{t.title} {at_or_inside} the warning limit ({w}) stays silent",
            "interval": f"{EVAL}s",
            "input_series": row.build(v["inside_warning"]),
            "alert_rule_test": [_check(alert, late, [])],
        },
        {
            "name": f"{t.title} just past the warning limit ({w}) warns only after {rules_gen.FOR['warning']}",
            "interval": f"{EVAL}s",
            "input_series": row.build(v["past_warning"]),
            "alert_rule_test": [
                _check(alert, warn_at - EVAL, []),
                _check(alert, warn_at, [_expected(row, "warning", v["past_warning"])]),
            ],
        },
        {
            "name": f"{t.title} {at_or_inside} the critical limit ({c}) is a warning, not critical",
            "interval": f"{EVAL}s",
            "input_series": row.build(v["inside_critical"]),
            "alert_rule_test": [
                _check(alert, late, [_expected(row, "warning", v["inside_critical"])])
            ],
        },
        {
            "name": f"{t.title} just past the critical limit ({c}) pages after {rules_gen.FOR['critical']}, warns after {rules_gen.FOR['warning']}",
            "interval": f"{EVAL}s",
            "input_series": row.build(v["past_critical"]),
            "alert_rule_test": [
                _check(alert, crit_at - EVAL, []),
                _check(alert, crit_at, [_expected(row, "critical", v["past_critical"])]),
                _check(
                    alert,
                    late,
                    [
                        _expected(row, "critical", v["past_critical"]),
                        _expected(row, "warning", v["past_critical"]),
                    ],
                ),
            ],
        },
    ]


def guard_tests(
    key: str, build: Callable[[float], Series], worst: float, minimum: float, unit: str
) -> list[dict[str, Any]]:
    """The worst value, traffic just under / exactly at the minimum rate.

    `build(n)` gives the input series with n requests (or lookups) per interval. A
    5-minute rate reaches its true value once the series is 5 minutes old, hence the
    late evaluation.
    """
    row = next(r for r in ROWS if r.key == key)
    t = BY_KEY[key]
    alert = rules_gen.ROW_ALERT_BY_KEY[key].alert
    shown = HUMANIZE[t.unit](worst)
    late = 300 + int(duration_seconds(rules_gen.FOR["warning"])) + 60
    return [
        {
            "name": f"{t.title} at {shown} but under {minimum:g} {unit}/s stays silent",
            "interval": f"{EVAL}s",
            "input_series": build(minimum * EVAL - 1),
            "alert_rule_test": [_check(alert, late, [])],
        },
        {
            "name": f"{t.title} at {shown} with exactly {minimum:g} {unit}/s alerts",
            "interval": f"{EVAL}s",
            "input_series": build(minimum * EVAL),
            "alert_rule_test": [
                _check(
                    alert,
                    late,
                    [
                        _expected(row, "critical", worst),
                        _expected(row, "warning", worst),
                    ],
                )
            ],
        },
    ]


def only_counter(metric: str, label: dict[str, str]) -> Callable[[float], Series]:
    """Only the bad outcome's counter: also checks the ratio is computed when the
    other outcome has never been seen."""
    return lambda per_interval: [series(metric, {**APP, **label}, counter(per_interval))]


def tests_document() -> dict[str, Any]:
    tests: list[dict[str, Any]] = []
    for row in ROWS:
        tests.extend(row_tests(row))
    tests += guard_tests(
        "response_time", all_slow_latency_input, 10.0, rules_gen.MIN_REQUEST_RATE, "requests"
    )
    tests += guard_tests(
        "error_rate",
        only_counter(
            m.HTTP_REQUESTS, {"method": "GET", "route": "/api/bags/{qr_id}", "status": "500"}
        ),
        1.0,
        rules_gen.MIN_REQUEST_RATE,
        "requests",
    )
    tests += guard_tests(
        "cache_hit_rate",
        only_counter(m.CACHE_REQUESTS, {"result": "miss"}),
        0.0,
        rules_gen.MIN_CACHE_LOOKUP_RATE,
        "lookups",
    )
    return {"rule_files": ["../rules.yml"], "evaluation_interval": f"{EVAL}s", "tests": tests}


def render() -> str:
    return promtool_file.render(
        "tests.support.promtool_gen",
        "prometheus/tests/thresholds.yml",
        "common/thresholds.py",
        tests_document(),
    )


if __name__ == "__main__":
    sys.stdout.write(render())
