"""Prometheus rules: generated from the thresholds table, valid for promtool, unit-tested
on both sides of every limit, and in agreement with the runbook and the dashboards."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from common import metric_names, topology
from common.thresholds import MAINTENANCE, THRESHOLDS
from tests.support import promtool_gen
from tests.support import threshold_check as check
from tooling import rule_annotations, rules_gen, stackconfig
from tooling.checkout import ROOT
from tooling.procs import require_binary

REPO = ROOT
RULES = REPO / "prometheus" / "rules.yml"
PROMTOOL_TESTS = sorted((REPO / "prometheus" / "tests").glob("*.yml"))
RUNBOOK = REPO / "docs" / "runbook.md"
DASHBOARDS = sorted((REPO / "grafana" / "dashboards").glob("*.json"))
# Panel titles that name a row differently from the thresholds table.
DASHBOARD_TITLES = {
    "p95 response time": "response_time",
    "average response time": "response_time",
    "active users": "concurrent_users",
}


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_binary("promtool"), *map(str, args)], capture_output=True, text=True, timeout=120
    )


def rules_doc() -> dict[str, Any]:
    return yaml.safe_load(RULES.read_text())


def alert_rules() -> list[dict[str, Any]]:
    return [r for g in rules_doc()["groups"] for r in g["rules"] if "alert" in r]


# --- generated, current, valid -------------------------------------------------------


def test_committed_rules_are_what_the_generator_produces() -> None:
    assert RULES.read_text() == rules_gen.render_rules(), (
        "prometheus/rules.yml is stale: python -m tooling.rules_gen > prometheus/rules.yml"
    )


def test_committed_promtool_threshold_tests_are_what_the_generator_produces() -> None:
    path = REPO / "prometheus" / "tests" / "thresholds.yml"
    assert path.read_text() == promtool_gen.render(), (
        "regenerate: python -m tests.support.promtool_gen > prometheus/tests/thresholds.yml"
    )


def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    total = sum(len(g["rules"]) for g in rules_doc()["groups"])
    assert f"SUCCESS: {total} rules found" in result.stdout


def test_promtool_check_config_of_the_shipped_prometheus_yml() -> None:
    result = promtool("check", "config", stackconfig.PROMETHEUS_CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout


@pytest.mark.parametrize("path", PROMTOOL_TESTS, ids=lambda p: p.name)
def test_promtool_unit_tests(path: Path) -> None:
    result = promtool("test", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_fail_when_a_threshold_in_the_rules_is_wrong(tmp_path: Path) -> None:
    """The generated unit tests are not tautological: move the warning limit of the
    response time by 0.6 s in a copy of the rules and they fail."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "rules.yml").write_text(
        RULES.read_text().replace("p95_rate5m > 2\n", "p95_rate5m > 2.6\n")
    )
    tests = tmp_path / "tests" / "thresholds.yml"
    tests.write_text((REPO / "prometheus" / "tests" / "thresholds.yml").read_text())
    result = promtool("test", "rules", tests)
    assert result.returncode != 0
    assert (
        "Response time just past the warning limit (> 2 s) warns only after 5m"
        in result.stdout + result.stderr
    )


# --- shape of every rule -----------------------------------------------------------------


def test_every_row_has_a_warning_and_a_critical_alert_with_the_tables_numbers() -> None:
    assert check.rules_problems(rules_doc()) == []
    names = {r["alert"] for r in alert_rules()}
    assert {rules_gen.ROW_ALERT_BY_KEY[t.key].alert for t in THRESHOLDS} <= names


def test_the_rules_checker_catches_a_wrong_number() -> None:
    doc = rules_doc()
    for rule in doc["groups"][0]["rules"]:
        if (
            rule.get("alert") == "TraceTrackCPUUsageHigh"
            and rule["labels"]["severity"] == "critical"
        ):
            rule["expr"] = rule["expr"].replace("> 0.9", "> 0.95")
    assert check.rules_problems(doc) == [
        "rules: TraceTrackCPUUsageHigh (critical) compares > 0.95, thresholds.py says > 90 %"
    ]


def test_the_other_alerts_of_the_issue_exist() -> None:
    by_name: dict[str, set[str]] = {}
    for rule in alert_rules():
        by_name.setdefault(rule["alert"], set()).add(rule["labels"]["severity"])
    assert by_name["TraceTrackTargetDown"] == {"critical", "warning"}
    assert by_name["TraceTrackExporterCollectorDown"] == {"warning"}
    assert by_name["TraceTrackCacheFellBackToMemory"] == {"warning"}
    assert by_name["AlertmanagerNotificationsFailing"] == {"critical"}
    assert by_name["TraceTrackNotificationDeliveryFailing"] == {"warning"}
    for name in (
        "TraceTrackTableNotVacuumed",
        "TraceTrackTableNotAnalyzed",
        "TraceTrackDeadTuplesHigh",
    ):
        assert by_name[name] == {"info"}, name
    watchdog = [r for r in alert_rules() if r["alert"] == "Watchdog"]
    assert len(watchdog) == 1 and watchdog[0]["expr"] == "vector(1)" and "for" not in watchdog[0]


def test_every_alert_has_severity_summary_description_with_value_and_runbook() -> None:
    for rule in alert_rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        ann = rule["annotations"]
        assert set(ann) <= set(rule_annotations.ANNOTATION_KEYS), name
        assert ann["summary"] and ann["description"], name
        if name != "Watchdog":  # constant 1: there is no value to show
            assert "$value" in ann["description"], name
            assert "$value" in ann["value"] and ann["threshold"], name
            assert "for" in rule, name
        assert ann["runbook_url"] == f"http://127.0.0.1:9818/runbook#{name.lower()}"


def test_every_dashboard_link_opens_an_existing_panel() -> None:
    boards = {json.loads(p.read_text())["uid"]: json.loads(p.read_text()) for p in DASHBOARDS}
    linked = 0
    for rule in alert_rules():
        url = rule["annotations"].get("dashboard_url")
        if url is None:
            continue
        linked += 1
        m = re.fullmatch(r"http://127\.0\.0\.1:3000/d/([a-z-]+)\?viewPanel=(\d+)", url)
        assert m, url
        panel_ids = {p["id"] for p in boards[m.group(1)]["panels"]}
        assert int(m.group(2)) in panel_ids, (rule["alert"], url)
    assert linked >= len(THRESHOLDS) * 2


def test_rendered_rules_point_their_links_at_the_deployment() -> None:
    doc = yaml.safe_load(
        stackconfig.render_rules(
            public_url="https://oncall.example.com/bridge/",
            grafana_url="https://grafana.example.com",
        )
    )
    rules = [r for g in doc["groups"] for r in g["rules"] if "alert" in r]
    for rule in rules:
        ann = rule["annotations"]
        assert ann["runbook_url"].startswith("https://oncall.example.com/bridge/runbook#")
        if "dashboard_url" in ann:
            assert ann["dashboard_url"].startswith("https://grafana.example.com/d/tracetrack-")
    with pytest.raises(stackconfig.ConfigError, match="public_url"):
        stackconfig.render_rules(public_url="oncall.example.com")


def test_recording_rules_are_named_level_metric_operation() -> None:
    records = [r["record"] for g in rules_doc()["groups"] for r in g["rules"] if "record" in r]
    assert records
    for name in records:
        assert re.fullmatch(r"[a-z_]+:[a-z_]+:[a-z0-9_]+", name), name


def test_recording_rules_precede_the_alerts_that_use_them_in_the_same_group() -> None:
    """Same group, earlier position: the alert sees this evaluation's value (the
    70 s budget counts one evaluation interval, not two)."""
    for group in rules_doc()["groups"]:
        recorded: set[str] = set()
        for rule in group["rules"]:
            if "record" in rule:
                recorded.add(rule["record"])
                continue
            for used in re.findall(r"\b(instance:[a-z_]+:[a-z0-9_]+)", rule["expr"]):
                assert used in recorded, f"{rule['alert']} uses {used} before it is recorded"


# --- the runbook and the dashboards agree ------------------------------------------------


def test_runbook_agrees_with_the_thresholds_and_the_rules() -> None:
    problems = check.runbook_problems(RUNBOOK.read_text(), rules_doc())
    assert not problems, "\n".join(problems)


def test_every_runbook_url_anchor_is_a_runbook_heading() -> None:
    anchors = check.heading_anchors(RUNBOOK.read_text())
    for rule in alert_rules():
        assert rule["annotations"]["runbook_url"].partition("#")[2] in anchors, rule["alert"]


def test_the_runbook_checker_catches_a_stale_number_or_window() -> None:
    text = RUNBOOK.read_text()
    stale = text.replace("| Error rate | > 2 % | > 5 % |", "| Error rate | > 3 % | > 5 % |")
    stale = stale.replace(
        "- Critical: CPU usage > 90 % for 30s", "- Critical: CPU usage > 95 % for 1m"
    )
    problems = check.runbook_problems(stale, rules_doc())
    assert any("Error rate warning is '> 3 %'" in p for p in problems), problems
    assert any("TraceTrackCPUUsageHigh critical line" in p and "for 30s" in p for p in problems), (
        problems
    )
    assert any("TraceTrackCPUUsageHigh critical line" in p and "> 90 %" in p for p in problems), (
        problems
    )
    missing = text.replace("## TraceTrackCacheHitRateLow", "## Cache hit rate")
    assert any(
        "no '## TraceTrackCacheHitRateLow' section" in p
        for p in check.runbook_problems(missing, rules_doc())
    )


def test_the_runbook_checker_catches_a_stale_maintenance_number() -> None:
    text = RUNBOOK.read_text()
    stale = text.replace(
        "- Info: last ANALYZE, manual or autoanalyze, older than 7 days",
        "- Info: last ANALYZE, manual or autoanalyze, older than 14 days",
    )
    stale = stale.replace("with ≥ 10000 dead rows, for 1h", "with ≥ 1000 dead rows, for 1h")
    assert stale != text
    problems = check.runbook_problems(stale, rules_doc())
    assert len(problems) == 2, problems
    assert (
        "TraceTrackTableNotAnalyzed info line" in problems[0]
        and "'older than 7 days'" in problems[0]
    )
    assert (
        "TraceTrackDeadTuplesHigh info line" in problems[1] and "'≥ 10000 dead rows'" in problems[1]
    )


def test_maintenance_alerts_take_their_numbers_from_maintenance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Changing MAINTENANCE changes the rules (and the runbook must follow): no number is
    retyped in the generator."""
    shipped = rules_gen.maintenance_group()
    monkeypatch.setattr(
        rules_gen,
        "MAINTENANCE",
        replace(
            MAINTENANCE,
            max_age_days=14,
            min_live_rows=500,
            dead_ratio=0.3,
            min_dead_rows=700,
            for_="2h",
        ),
    )
    changed = {r["alert"]: r for r in rules_gen.maintenance_group()["rules"]}
    assert changed["TraceTrackTableNotVacuumed"]["expr"] == (
        f"{metric_names.DB_TABLE_LAST_VACUUM} < time() - 1209600\n"
        f"and on (job, instance, table)\n{metric_names.DB_TABLE_LIVE_TUPLES} >= 500"
    )
    assert changed["TraceTrackDeadTuplesHigh"]["expr"].splitlines()[0].endswith("> 0.3")
    assert changed["TraceTrackDeadTuplesHigh"]["expr"].endswith(">= 700")
    assert {r["for"] for r in changed.values()} == {"2h"}
    assert "14 days" in changed["TraceTrackTableNotAnalyzed"]["annotations"]["summary"]
    assert [r["expr"] for r in shipped["rules"]] != [r["expr"] for r in changed.values()]


def test_the_runbook_documents_the_70_second_arithmetic_with_the_shipped_numbers() -> None:
    """The timing table quotes the shipped settings; if they change, so must the page."""
    prom = yaml.safe_load(stackconfig.PROMETHEUS_CONFIG.read_text())["global"]
    am = yaml.safe_load(stackconfig.ALERTMANAGER_CONFIG.read_text())["route"]
    critical = next(r for r in am["routes"] if r["matchers"] == ['severity="critical"'])
    text = RUNBOOK.read_text()
    for fragment in (
        f"scrape_interval: {prom['scrape_interval']}",
        f"evaluation_interval: {prom['evaluation_interval']}",
        f"critical `for: {rules_gen.FOR['critical']}`",
        f"`group_wait: {critical['group_wait']}`",
        f"`group_interval: {critical['group_interval']}`",
    ):
        assert fragment in text, fragment
    worst = sum(
        stackconfig.duration_seconds(v)
        for v in (
            prom["scrape_interval"],
            prom["evaluation_interval"],
            rules_gen.FOR["critical"],
            # A new problem is a new group: group_wait. An alert joining a group that
            # already paged waits up to group_interval (1m, the storm guard): the on-call
            # already has that group's page.
            critical["group_wait"],
        )
    )
    assert worst + 2 <= 70, worst
    assert f"**≤ {worst + 2:.0f} s**" in text


@pytest.mark.skipif(not DASHBOARDS, reason="no dashboards in this checkout")
@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboards_agree_with_the_thresholds(path: Path) -> None:
    problems = check.dashboard_problems(json.loads(path.read_text()), path.name, DASHBOARD_TITLES)
    assert not problems, "\n".join(problems)


def test_the_dashboard_checker_catches_a_stale_step() -> None:
    board = {
        "panels": [
            {
                "title": "Memory usage",
                "fieldConfig": {
                    "defaults": {
                        "thresholds": {"steps": [{"value": None}, {"value": 0.85}, {"value": 0.9}]}
                    }
                },
            }
        ]
    }
    assert check.dashboard_problems(board, "x.json") == [
        "x.json: panel 'Memory usage' steps [0.85, 0.9], thresholds.py says 0.8 / 0.9"
    ]


# --- rendered variants (tests, `tracetrack up`) --------------------------------------------


def test_rendered_prometheus_config_for_other_ports_passes_promtool(tmp_path: Path) -> None:
    rules = stackconfig.write_rules(tmp_path / "rules.yml", for_="1s")
    config = stackconfig.write_prometheus_config(
        tmp_path / "prometheus.yml",
        targets=stackconfig.targets_for(
            app_port=18000,
            exporter_port=19817,
            bridge_port=19818,
            alertmanager_port=19093,
            prometheus_port=19090,
        ),
        alertmanagers=["127.0.0.1:19093"],
        rule_files=[rules],
        scrape_interval="1s",
        evaluation_interval="1s",
    )
    result = promtool("check", "config", config)
    assert result.returncode == 0, result.stdout + result.stderr
    doc = yaml.safe_load(config.read_text())
    assert doc["global"] == {
        "scrape_interval": "1s",
        "scrape_timeout": "1s",
        "evaluation_interval": "1s",
    }
    assert [j["job_name"] for j in doc["scrape_configs"]] == list(topology.JOBS)
    assert doc["scrape_configs"][0]["static_configs"] == [{"targets": ["127.0.0.1:18000"]}]
    assert doc["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "127.0.0.1:19093"
    ]
    assert doc["rule_files"] == [str(rules)]


def test_rendered_rules_change_only_the_for_windows(tmp_path: Path) -> None:
    fast = yaml.safe_load(stackconfig.render_rules(for_="1s"))
    shipped = rules_doc()
    for g_fast, g_shipped in zip(fast["groups"], shipped["groups"], strict=True):
        for r_fast, r_shipped in zip(g_fast["rules"], g_shipped["rules"], strict=True):
            assert r_fast["expr"] == r_shipped["expr"]
            if "for" in r_shipped:
                assert r_fast["for"] == "1s"
                assert {k: v for k, v in r_fast.items() if k != "for"} == {
                    k: v for k, v in r_shipped.items() if k != "for"
                }
            else:
                assert r_fast == r_shipped
    per_severity = yaml.safe_load(stackconfig.render_rules(for_={"critical": "2s"}))
    fors = {
        (r["alert"], r["labels"]["severity"]): r.get("for")
        for g in per_severity["groups"]
        for r in g["rules"]
        if "alert" in r
    }
    assert fors[("TraceTrackCPUUsageHigh", "critical")] == "2s"
    assert fors[("TraceTrackCPUUsageHigh", "warning")] == "5m"
    result = promtool("check", "rules", stackconfig.write_rules(tmp_path / "r.yml", for_="1s"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_rendering_keeps_only_the_jobs_asked_for_and_can_drop_alerting() -> None:
    doc = yaml.safe_load(
        stackconfig.render_prometheus_config(
            targets={"tracetrack-app": ["127.0.0.1:1"], "extra": ["127.0.0.1:2"]}, alertmanagers=[]
        )
    )
    assert [j["job_name"] for j in doc["scrape_configs"]] == ["tracetrack-app", "extra"]
    assert "alerting" not in doc
    assert doc["rule_files"] == [str(stackconfig.RULES_FILE)]


def test_rendering_rejects_a_bad_duration() -> None:
    with pytest.raises(stackconfig.ConfigError, match="not a duration: '10 seconds'"):
        stackconfig.render_prometheus_config(scrape_interval="10 seconds")
