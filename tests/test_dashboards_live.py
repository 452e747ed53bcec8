"""Every panel query of every dashboard parses and returns data from a live Prometheus
scraping the running app, exporter and alert bridge with the shipped rules: no panel
says "No data" on a healthy stack."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from common import topology
from grafana import build
from tests.support.bridgekit import am_payload
from tests.support.livestack import LiveStack, drive_traffic, start_live_stack
from tooling import stackconfig
from tooling.pgserver import PostgresServer
from tooling.procs import wait_until

# What Grafana puts in place of its variables for the default view: instance=All,
# and a rate window of several scrapes (timeInterval 10s -> $__rate_interval >= 40s).
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__range": "1h", "$instance": ".*"}
DEADLINE_SECONDS = 45


def substitute(expr: str) -> str:
    for var, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(var, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr}"
    return expr


def panel_queries() -> list[tuple[str, str, str]]:
    out = []
    for path in sorted(build.DASHBOARD_DIR.glob("*.json")):
        board = json.loads(path.read_text())
        for p in board["panels"]:
            for t in p["targets"]:
                out.append((path.name, p["title"], substitute(t["expr"])))
        for v in board["templating"]["list"]:
            m = re.fullmatch(r"label_values\((.+), (\w+)\)", v["query"])
            assert m, f"{path.name}: variable {v['name']} query {v['query']!r}"
            out.append((path.name, f"variable {v['name']}", f"group by ({m[2]}) ({m[1]})"))
    return out


@pytest.fixture(scope="module")
def stack(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStack]:
    workdir = tmp_path_factory.mktemp("dashboards")
    rules = stackconfig.write_rules(workdir / "rules.yml")
    s = start_live_stack(
        workdir,
        postgres.create_database("dashboards_live"),
        with_bridge=True,
        rule_files=[str(rules)],
    )
    try:
        drive_traffic(s)
        notify(s)
        yield s
    finally:
        s.stop()


def notify(s: LiveStack) -> None:
    """Two notifications with a scrape of the bridge between them, through the real
    bridge (channels switched off, so it logs them): their counter has an increase
    Prometheus can see."""
    for i in range(2):
        if i:
            s.wait_scraped(topology.BRIDGE_JOB)
        r = s.bridge.post(
            "critical", am_payload(f"LiveDashboardCheck{i}", "critical", group=f"live-{i}")
        )
        assert r.status_code == 200, r.text
        s.bridge.wait_settled()


def test_a_broken_query_is_caught(stack: LiveStack) -> None:
    r = httpx.post(f"{stack.prometheus_url}/api/v1/query", data={"query": "sum(rate(x[1m]"})
    assert r.status_code == 400 and r.json()["errorType"] == "bad_data"


def test_every_panel_query_parses_and_returns_data(stack: LiveStack) -> None:
    queries = panel_queries()
    assert len(queries) >= 40
    pending = {(board, title, expr) for board, title, expr in queries}
    deadline = time.monotonic() + DEADLINE_SECONDS
    results: dict[tuple[str, str, str], Any] = {}
    while pending and time.monotonic() < deadline:
        for key in sorted(pending):
            result = stack.query(key[2])  # asserts Prometheus parsed and ran it
            results[key] = result
            if result:
                pending.discard(key)
        if pending:
            time.sleep(1)
    assert not pending, "panels with no data on a healthy stack:\n" + "\n".join(
        f"  {b}: {t}: {e}" for b, t, e in sorted(pending)
    )


def test_the_healthy_stack_shows_real_values(stack: LiveStack) -> None:
    """Not just any data: the figures the analytics views are about (docs/architecture.md §11)."""

    def one(expr: str) -> float:
        [sample] = stack.query(substitute(expr))
        return float(sample["value"][1])

    from grafana.build import cache_hit_rate, error_rate, per_minute

    assert one(per_minute("tracetrack_http_requests_total")) > 0
    assert one(error_rate()) == 0
    assert 0.5 < one(cache_hit_rate()) < 1
    # PostgreSQL's live-row statistic (what the exporter reports) counts the 20 bags
    # once the app's backend has flushed its statistics, which an idle backend may
    # delay by up to 10 s, and then the exporter's next scrape shows them.
    bags = 'max(tracetrack_bags{instance=~"$instance"})'
    wait_until(lambda: one(bags) == 20, 90, "tracetrack_bags == 20 (the bags created)")
    # The Watchdog fires, and only it: it is excluded from the severity tiles.
    firing = stack.query('ALERTS{alertstate="firing"}')
    assert "Watchdog" in {a["metric"]["alertname"] for a in firing}
    assert one(build.firing("info")) == sum(
        1
        for a in firing
        if a["metric"].get("severity") == "info" and a["metric"]["alertname"] != "Watchdog"
    )
    rows = stack.query(
        substitute(
            "sum by (channel, severity, outcome) (increase(tracetrack_notifications_total"
            '{instance=~"$instance"}[$__range])) > 0'
        )
    )
    assert {(r["metric"]["channel"], r["metric"]["severity"]) for r in rows} >= {
        ("email", "critical")
    }


def test_dashboards_reference_only_metrics_that_exist(stack: LiveStack) -> None:
    names = set(
        httpx.get(f"{stack.prometheus_url}/api/v1/label/__name__/values", timeout=10).json()["data"]
    )
    used = set()
    for _board, _title, expr in panel_queries():
        # Whole names, recorded ones (`instance:tracetrack_...:rate5m`) included.
        tokens = re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr)
        used |= {t for t in tokens if "tracetrack_" in t or t in ("ALERTS", "up")}
    assert used - names == set()


def test_panel_queries_cover_every_dashboard(stack: LiveStack) -> None:
    boards = {b for b, _t, _e in panel_queries()}
    assert boards == {p.name for p in Path(build.DASHBOARD_DIR).glob("*.json")}
