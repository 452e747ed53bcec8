"""The availability SLO: rules generated from common/slo.py, promtool-tested on both
sides of every burn-rate factor, and the tests fail when a factor in the rules drifts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from common import slo
from tests.support import promtool_slo
from tooling import slo_rules
from tooling.checkout import ROOT
from tooling.procs import require_binary

REPO = ROOT
RULES = REPO / "prometheus" / "rules.yml"
SLO_TESTS = REPO / "prometheus" / "tests" / "slo.yml"


def promtool_test(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_binary("promtool"), "test", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=180,
    )


def slo_rules_in_file() -> list[dict]:
    doc = yaml.safe_load(RULES.read_text())
    return [r for g in doc["groups"] if g["name"].startswith("tracetrack-slo") for r in g["rules"]]


def test_committed_promtool_slo_tests_are_what_the_generator_produces() -> None:
    assert SLO_TESTS.read_text() == promtool_slo.render(), (
        "regenerate: python -m tests.support.promtool_slo > prometheus/tests/slo.yml"
    )


def test_every_burn_rate_line_of_the_workbook_is_one_alert_with_its_windows() -> None:
    alerts = [r for r in slo_rules_in_file() if "alert" in r]
    got = {
        (r["labels"]["severity"], r["labels"]["long_window"], r["labels"]["short_window"])
        for r in alerts
    }
    assert got == {
        ("critical", "1h", "5m"),
        ("critical", "6h", "30m"),
        ("warning", "1d", "2h"),
        ("warning", "3d", "6h"),
    }
    for r in alerts:
        line = next(a for a in slo.BURN_RATE_ALERTS if a.long == r["labels"]["long_window"])
        assert r["alert"] == slo_rules.ALERT
        assert r["expr"].count(f"/ 0.001 > {line.factor:g}") == 2, r["expr"]


def test_every_window_an_alert_reads_is_recorded_before_it_in_the_same_group() -> None:
    doc = yaml.safe_load(RULES.read_text())
    group = next(g for g in doc["groups"] if g["name"] == "tracetrack-slo")
    recorded: set[str] = set()
    for rule in group["rules"]:
        if "record" in rule:
            recorded.add(rule["record"])
            continue
        for window in (rule["labels"]["long_window"], rule["labels"]["short_window"]):
            assert slo.recorded(slo.ERRORS, window) in recorded


def test_the_budget_is_recorded_over_30_days_against_99_9_percent() -> None:
    rules = {r["record"]: r["expr"] for r in slo_rules_in_file() if "record" in r}
    assert "[30d]" in rules["job:tracetrack_slo_errors:ratio_rate30d"]
    assert rules[slo.BUDGET_REMAINING] == "1 - (job:tracetrack_slo_errors:ratio_rate30d) / 0.001"


def test_promtool_slo_tests_fail_when_a_factor_in_the_rules_drifts(tmp_path: Path) -> None:
    """Not tautological: a page at 16x instead of 14.4x fails the generated tests."""
    (tmp_path / "tests").mkdir()
    text = RULES.read_text()
    drifted = text.replace("/ 0.001 > 14.4", "/ 0.001 > 16")
    assert drifted != text
    (tmp_path / "rules.yml").write_text(drifted)
    tests = tmp_path / "tests" / "slo.yml"
    tests.write_text(SLO_TESTS.read_text())
    result = promtool_test(tests)
    assert result.returncode != 0
    assert "A steady burn of 15.84 (just past 14.4)" in result.stdout + result.stderr
