"""The Grafana dashboards: generated JSON is current, thresholds come from
common/thresholds.py, datasource UIDs match the provisioning, every panel is described."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from app.analytics.routes import GRAFANA_FOLDER_UID
from common import slo
from common.thresholds import BY_KEY, SECURITY
from grafana import build
from tooling.checkout import ROOT
from tooling.security_rules import SECURITY_PANELS

PROVISIONING = ROOT / "grafana" / "provisioning"


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(build.DASHBOARD_DIR.glob("*.json"))}


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return list(board["panels"])


def panel(title: str, board: str, kind: str | None = None) -> dict[str, Any]:
    matches = [
        p
        for p in panels(dashboards()[board])
        if p["title"] == title and (kind is None or p["type"] == kind)
    ]
    assert len(matches) == 1, f"{board}: {title!r} ({kind}) x{len(matches)}"
    return matches[0]


def test_committed_json_is_what_the_generator_produces() -> None:
    rendered = build.render()
    assert set(rendered) == set(dashboards()), "a dashboard file is missing or extra"
    for name, text in rendered.items():
        assert (build.DASHBOARD_DIR / name).read_text() == text, (
            f"{name} is stale: run .venv/bin/python -m grafana.build"
        )
    assert build.main(["--check"]) == 0


def test_the_dashboards_of_the_operator_guide() -> None:
    titles = {b["title"] for b in dashboards().values()}
    assert titles == {
        "TraceTrack / System",
        "TraceTrack / Performance",
        "TraceTrack / Business",
        "TraceTrack / Alerts",
        "TraceTrack / Security",
    }
    wanted = {
        "system.json": ["CPU usage", "Memory usage", "Disk usage", "Database connections"],
        "performance.json": [
            "Average response time",
            "p95 response time",
            "Requests per minute",
            "Error rate",
            "Cache hit rate",
        ],
        "business.json": ["Total bags", "Active users", "Scans today", "Bills created today"],
        "alerts.json": [
            "Active alerts",
            "Recent notifications",
            "Firing critical",
            "Firing warning",
            "Firing info",
        ],
        "security.json": [
            *SECURITY_PANELS.values(),
            "Blocked addresses",
            "Failed logins per minute by reason",
            "Rate-limited requests per minute by route class",
            "Suspicious scans per minute by kind",
            "Injection attempts per minute by kind",
        ],
    }
    for name, titles_ in wanted.items():
        present = {p["title"] for p in panels(dashboards()[name])}
        assert set(titles_) <= present, f"{name} lacks {set(titles_) - present}"


def test_every_panel_has_a_unit_a_description_and_the_provisioned_datasource() -> None:
    provisioned = yaml.safe_load((PROVISIONING / "datasources/datasources.yml").read_text())
    uids = {d["type"]: d["uid"] for d in provisioned["datasources"]}
    assert uids == {"prometheus": build.PROMETHEUS_UID, "alertmanager": build.ALERTMANAGER_UID}
    for name, board in dashboards().items():
        for p in panels(board):
            where = f"{name}: {p['title']}"
            assert p.get("description", "").strip(), f"{where} has no description"
            assert p["fieldConfig"]["defaults"].get("unit"), f"{where} has no unit"
            assert p["datasource"] == {"type": "prometheus", "uid": uids["prometheus"]}, where
            assert p["targets"], f"{where} has no query"
            for t in p["targets"]:
                assert t["datasource"]["uid"] == uids["prometheus"], where
                assert t["expr"].strip(), where


def test_every_dashboard_has_an_instance_variable_its_queries_use() -> None:
    for name, board in dashboards().items():
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert "instance" in variables, name
        var = variables["instance"]
        assert var["type"] == "query" and var["includeAll"] and var["allValue"] == ".*"
        assert var["datasource"]["uid"] == build.PROMETHEUS_UID
        exprs = [t["expr"] for p in panels(board) for t in p["targets"]]
        # Alert states are global (ALERTS has no scrape instance); everything else filters.
        filtered = [e for e in exprs if "ALERTS" not in e]
        assert filtered and all('instance=~"$instance"' in e for e in filtered), name


def steps(p: dict[str, Any]) -> list[tuple[float | None, str]]:
    config = p["fieldConfig"]["defaults"].get("thresholds", {"steps": []})
    return [(s["value"], s["color"]) for s in config["steps"]]


@pytest.mark.parametrize(
    ("board", "title", "key"),
    [
        ("system.json", "CPU usage", "cpu_usage"),
        ("system.json", "Memory usage", "memory_usage"),
        ("system.json", "Database connections", "db_connections"),
        ("performance.json", "Average response time", "response_time"),
        ("performance.json", "p95 response time", "response_time"),
        ("performance.json", "Response time", "response_time"),
        ("performance.json", "Error rate", "error_rate"),
        ("performance.json", "Cache hit rate", "cache_hit_rate"),
        ("business.json", "Active users", "concurrent_users"),
    ],
)
def test_threshold_lines_and_colours_come_from_the_thresholds_table(board, title, key) -> None:
    t = BY_KEY[key]
    matching = [p for p in panels(dashboards()[board]) if p["title"] == title]
    assert matching
    for p in matching:
        got = steps(p)
        if t.direction == "above":
            assert got == [(None, "green"), (t.warning, "orange"), (t.critical, "red")], title
        else:
            assert got == [(None, "red"), (t.critical, "orange"), (t.warning, "green")], title
        if p["type"] == "timeseries":
            assert p["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "line+area"


def test_no_threshold_value_is_typed_into_a_dashboard_by_hand() -> None:
    """Every non-base step value in every panel is a value of the thresholds table (or the
    firing-count step of 1), so a changed threshold cannot leave a stale line behind."""
    allowed = {v for t in BY_KEY.values() for v in (t.warning, t.critical)}
    # The SLO panels' steps come from common/slo.py: the objective, 0 budget left, the
    # burn-rate factors.
    allowed |= {slo.OBJECTIVE, 0, *(a.factor for a in slo.BURN_RATE_ALERTS)}
    # The security stats are coloured at their alerts' limits (thresholds.py SECURITY).
    allowed |= {v for t in SECURITY for v in (t.warning, t.critical)}
    for name, board in dashboards().items():
        for p in panels(board):
            for value, _colour in steps(p)[1:]:
                assert value in allowed or (name == "alerts.json" and value == 1), (
                    f"{name}: {p['title']} has threshold {value}"
                )


def test_alerts_are_coloured_by_severity() -> None:
    colours = {"critical": "red", "warning": "orange", "info": "blue"}
    for sev, colour in colours.items():
        assert steps(panel(f"Firing {sev}", "alerts.json")) == [(None, "green"), (1, colour)]
    for title in ("Active alerts", "Recent notifications"):
        override = panel(title, "alerts.json")["fieldConfig"]["overrides"][0]
        assert override["matcher"] == {"id": "byName", "options": "severity"}
        mapping = next(
            p["value"][0]["options"] for p in override["properties"] if p["id"] == "mappings"
        )
        assert {s: m["color"] for s, m in mapping.items()} == colours


def test_dashboard_provider_matches_the_folder_the_app_redirects_to() -> None:
    provider = yaml.safe_load((PROVISIONING / "dashboards/tracetrack.yml").read_text())
    [p] = provider["providers"]
    assert p["folderUid"] == GRAFANA_FOLDER_UID
    assert p["type"] == "file" and p["options"]["path"]
    uids = [b["uid"] for b in dashboards().values()]
    assert len(set(uids)) == len(uids) == 5
