"""The security alerts: generated from common/thresholds.py SECURITY, promtool-tested on
both sides of each limit, and quoted by their runbook sections."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from common.thresholds import SECURITY
from tests.support import security_promtool
from tests.support.threshold_check import sections
from tooling.checkout import ROOT
from tooling.procs import require_binary
from tooling.rules_gen import render_rules

REPO = ROOT
PROMTOOL_FILE = REPO / "prometheus" / "tests" / "security.yml"
RUNBOOK = REPO / "docs" / "runbook.md"


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_binary("promtool"), *map(str, args)], capture_output=True, text=True, timeout=120
    )


def security_rules() -> list[dict]:
    doc = yaml.safe_load(render_rules())
    group = next(g for g in doc["groups"] if g["name"] == "tracetrack-security")
    return group["rules"]


def test_committed_promtool_file_is_what_the_generator_produces() -> None:
    assert PROMTOOL_FILE.read_text() == security_promtool.render(), (
        "regenerate: python -m tests.support.security_promtool > prometheus/tests/security.yml"
    )


def test_every_security_row_has_a_warning_and_a_critical_rule_with_its_numbers() -> None:
    rules = security_rules()
    for t in SECURITY:
        mine = {r["labels"]["severity"]: r for r in rules if r["alert"] == t.alert}
        assert set(mine) == {"warning", "critical"}, t.alert
        for level, rule in mine.items():
            number = f"{t.limit(level):g}"
            assert rule["expr"].endswith(f"> {number}"), (t.alert, rule["expr"])
            assert t.metric in rule["expr"] and f"[{t.window}]" in rule["expr"]
            assert rule["for"] == t.for_[level]
            assert t.human(level) in rule["annotations"]["description"]
            # Never split by instance (one page per attack), always by job and `by`.
            assert "instance" not in rule["expr"]
            assert f"by (job{''.join(', ' + b for b in t.by)})" in rule["expr"]


def test_promtool_fails_when_a_security_number_in_the_rules_is_wrong(tmp_path: Path) -> None:
    t = SECURITY[0]
    wrong = render_rules().replace(f"> {t.warning:g}\n", f"> {t.warning * 3:g}\n", 1)
    assert wrong != render_rules()
    (tmp_path / "rules.yml").write_text(wrong)
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "security.yml").write_text(PROMTOOL_FILE.read_text())
    result = promtool("test", "rules", tests / "security.yml")
    assert result.returncode != 0 and t.alert in result.stdout + result.stderr


def test_runbook_sections_quote_the_limits_and_walk_the_four_steps() -> None:
    parts = sections(RUNBOOK.read_text())
    for t in SECURITY:
        body = parts.get(t.alert)
        assert body, f"docs/runbook.md has no '## {t.alert}' section"
        for level in ("warning", "critical"):
            line = re.search(rf"^- {level.title()}: (.*)$", body, re.M)
            assert line, (t.alert, level)
            assert t.human(level) in line.group(1), (t.alert, line.group(1))
            assert line.group(1).endswith(f"for {t.for_[level]}")
        steps = re.findall(r"^(\d)\. ", body, re.M)
        assert steps == ["1", "2", "3", "4"], (t.alert, steps)
        assert "tracetrack security events" in body and "tracetrack security block" in body


def test_analytics_never_turns_no_data_into_zero() -> None:
    """No `or vector(0)`: no data (the app not scraped) must read as unknown."""
    from app.analytics.queries import QUERIES
    from app.analytics.queries import SECURITY as LAYOUT

    assert not [q.name for q in QUERIES.values() if "vector(0)" in q.promql]
    for name in LAYOUT["security"]:
        assert name in QUERIES
    # The cards judge the same measurement the alert compares.
    for t in SECURITY:
        q = next(q for q in QUERIES.values() if q.threshold == t.key)
        assert t.metric in q.promql and f"[{t.window}]" in q.promql and q.unit == t.measure
