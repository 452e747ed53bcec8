"""One measurement, one number: the alert's recorded series, the /analytics query, the
dashboard panel and the plain builder evaluate to the same value on real Prometheus
(promtool), with traffic, without any 5xx or cache hit yet, and without traffic at all."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.analytics.queries import QUERIES
from common import metric_names as m
from common import promql as p
from grafana import build as dashboards
from tooling.checkout import ROOT as REPO
from tooling.procs import require_binary

RULES = REPO / "prometheus" / "rules.yml"
APP = 'job="tracetrack-app", instance="app-1:8000"'
EXPORTER = 'job="tracetrack-exporter", instance="exporter-1:9817"'


@dataclass(frozen=True)
class Measurement:
    name: str
    alert_reads: str  # the recorded series an alert compares, over every instance
    analytics: str
    dashboard: str
    builder: str  # straight from the raw series, no recording


def panel(expr: str) -> str:
    """A dashboard query as Prometheus sees it with "All" instances and a 5m window."""
    return expr.replace("$instance", ".*").replace("$__rate_interval", p.WINDOW)


MEASUREMENTS = (
    Measurement(
        "error ratio",
        p.recorded(p.ERRORS_RATIO),
        QUERIES["error_rate"].promql,
        dashboards.error_rate(),
        p.errors_ratio(p.WINDOW, by=()),
    ),
    Measurement(
        "cache hit ratio",
        p.recorded(p.CACHE_HITS_RATIO),
        QUERIES["cache_hit_rate"].promql,
        dashboards.cache_hit_rate(),
        p.cache_hits_ratio(p.WINDOW, by=()),
    ),
    Measurement(
        "p95 request duration",
        p.recorded(p.LATENCY_P95),
        QUERIES["p95_response_time"].promql,
        dashboards.p95_response_time(),
        p.latency_quantile(0.95, p.WINDOW, by=()),
    ),
    Measurement(
        "requests per minute",
        f"{p.recorded(p.REQUESTS_RATE)} * 60",
        QUERIES["requests_per_minute"].promql,
        dashboards.requests_per_minute(),
        p.per_minute(m.HTTP_REQUESTS, p.WINDOW),
    ),
    Measurement(
        "database connections",
        p.recorded(p.DB_CONNECTIONS_SUM),
        QUERIES["db_connections"].promql,
        p.recorded(p.DB_CONNECTIONS_SUM, dashboards.INST),
        p.db_connections(by=()),
    ),
)


def expressions(x: Measurement) -> list[str]:
    return [x.alert_reads, x.analytics, panel(x.dashboard), x.builder]


def agree(x: Measurement, value: float | None, eval_time: str = "10m") -> list[dict[str, Any]]:
    """The alert's series is `value`; None: all four have no data."""
    if value is None:
        return [{"expr": e, "eval_time": eval_time, "exp_samples": []} for e in expressions(x)]
    sample = {"labels": "{}", "value": value}
    return [{"expr": x.alert_reads, "eval_time": eval_time, "exp_samples": [sample]}]


def same_as_first(x: Measurement, eval_time: str) -> list[dict[str, Any]]:
    """The other three minus the alert's series is exactly 0: the same number."""
    first, *others = expressions(x)
    return [
        {
            "expr": f"({other}) - ({first})",
            "eval_time": eval_time,
            "exp_samples": [{"labels": "{}", "value": 0}],
        }
        for other in others
    ]


def traffic(values: dict[tuple[str, str], str]) -> list[dict[str, str]]:
    return [
        {"series": f"{name}{{{APP}{labels}}}", "values": v} for (name, labels), v in values.items()
    ] + [
        {"series": f'{m.DB_CONNECTIONS}{{{EXPORTER}, state="active"}}', "values": "5x20"},
        {"series": f'{m.DB_CONNECTIONS}{{{EXPORTER}, state="idle"}}', "values": "3x20"},
    ]


REQ, BUCKET = m.HTTP_REQUESTS, f"{m.HTTP_REQUEST_DURATION}_bucket"
ROUTE = ', method="GET", route="/api/bags/{qr_id}"'
# Per minute: 45 answers 200 and 15 answer 500 (1/s, a quarter 5xx); 45 cache hits and
# 15 misses; durations spread over the buckets so the p95 interpolates inside one.
BUSY = {
    (REQ, ROUTE + ', status="200"'): "0+45x20",
    (REQ, ROUTE + ', status="500"'): "0+15x20",
    (BUCKET, ROUTE + ', le="0.1"'): "0+30x20",
    (BUCKET, ROUTE + ', le="0.5"'): "0+45x20",
    (BUCKET, ROUTE + ', le="2"'): "0+54x20",
    (BUCKET, ROUTE + ', le="+Inf"'): "0+60x20",
    (f"{m.HTTP_REQUEST_DURATION}_sum", ROUTE): "0+30x20",
    (f"{m.HTTP_REQUEST_DURATION}_count", ROUTE): "0+60x20",
    (m.CACHE_REQUESTS, ', result="hit"'): "0+45x20",
    (m.CACHE_REQUESTS, ', result="miss"'): "0+15x20",
}
# Only 200s and cache misses: no 5xx series and no hit series exist yet.
HEALTHY_COLD_CACHE = {k: v for k, v in BUSY.items() if "500" not in k[1] and "hit" not in k[1]}
# Two minutes of traffic, then none: at 15m the 5-minute window saw nothing.
IDLE = {k: f"0+{step}x2 {2 * int(step)}+0x18" for k, v in BUSY.items() for step in [v[2:-3]]}

EXACT = {
    "error ratio": 0.25,
    "cache hit ratio": 0.75,
    "requests per minute": 60.0,
    "database connections": 8.0,
}


def promtool_file(tmp_path: Path) -> Path:
    busy: list[dict[str, Any]] = []
    cold: list[dict[str, Any]] = []
    idle: list[dict[str, Any]] = []
    for x in MEASUREMENTS:
        busy += same_as_first(x, "10m")
        if x.name in EXACT:
            busy += agree(x, EXACT[x.name])
        if x.name in ("error ratio", "cache hit ratio"):
            cold += same_as_first(x, "10m")
            cold += agree(x, 0.0)
        if x.name == "requests per minute":
            idle += same_as_first(x, "15m")
            idle += agree(x, 0.0, "15m")
        elif x.name != "database connections":
            idle += agree(x, None, "15m")
    tests = [
        {"name": "busy", "interval": "1m", "input_series": traffic(BUSY), "promql_expr_test": busy},
        {
            "name": "no 5xx and no cache hit yet: 0, not no data",
            "interval": "1m",
            "input_series": traffic(HEALTHY_COLD_CACHE),
            "promql_expr_test": cold,
        },
        {
            "name": "no traffic in the window: no data, not NaN",
            "interval": "1m",
            "input_series": traffic(IDLE),
            "promql_expr_test": idle,
        },
    ]
    path = tmp_path / "agreement.yml"
    path.write_text(
        yaml.safe_dump({"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": tests})
    )
    return path


def test_the_alert_analytics_dashboard_and_builder_agree(tmp_path: Path) -> None:
    result = subprocess.run(
        [require_binary("promtool"), "test", "rules", str(promtool_file(tmp_path))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_agreement_check_fails_when_a_query_differs(tmp_path: Path) -> None:
    """Guard against a check that cannot fail: a dashboard that forgot the `or` fallback
    (the old hit-rate panel) differs while no cache hit exists yet."""
    old = (
        f'sum(rate({m.CACHE_REQUESTS}{{result="hit", {dashboards.INST}}}[$__rate_interval]))'
        f" / sum(rate({m.CACHE_REQUESTS}{{{dashboards.INST}}}[$__rate_interval]))"
    )
    x = next(x for x in MEASUREMENTS if x.name == "cache hit ratio")
    broken = Measurement(x.name, x.alert_reads, x.analytics, old, x.builder)
    path = tmp_path / "broken.yml"
    doc = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "name": "cold cache",
                "interval": "1m",
                "input_series": traffic(HEALTHY_COLD_CACHE),
                "promql_expr_test": same_as_first(broken, "10m"),
            }
        ],
    }
    path.write_text(yaml.safe_dump(doc))
    result = subprocess.run(
        [require_binary("promtool"), "test", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0


@pytest.mark.parametrize("x", MEASUREMENTS, ids=lambda x: x.name)
def test_the_committed_dashboards_use_the_shared_query(x: Measurement) -> None:
    exprs = {
        t["expr"]
        for path in sorted((REPO / "grafana" / "dashboards").glob("*.json"))
        for panel_ in json.loads(path.read_text())["panels"]
        for t in panel_.get("targets", [])
    }
    assert x.dashboard in exprs


@pytest.mark.parametrize("x", MEASUREMENTS, ids=lambda x: x.name)
def test_analytics_reads_the_recorded_series(x: Measurement) -> None:
    recorded = {r.name for r in p.RECORDINGS}
    assert any(name in x.analytics for name in recorded), x.analytics
