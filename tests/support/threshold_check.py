"""Checks that rules, docs and dashboards agree with common/thresholds.py.

Each `*_problems` function returns a list of human-readable disagreements (empty
when all is well), so a test can `assert not problems, "\\n".join(problems)` and
show every mismatch at once. Reusable for any markdown page or Grafana dashboard:

- `rules_problems(rules_doc)`: every row has a warning and a critical alert
  comparing with exactly the table's number, in the right direction.
- `markdown_table_problems(text, source)`: every "Metric | Warning | Critical" table.
- `runbook_problems(text, rules_doc)`: the table, plus each alert's section lists
  each of its rules as `- Severity: ... <limit> ... for <for>`; the table-maintenance
  alerts' lines quote the numbers of `MAINTENANCE` (rules_gen.maintenance_phrases).
- `dashboard_problems(board, source, titles)`: panels whose title names a row carry
  exactly the row's warning and critical as threshold steps.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from common import slo
from common.thresholds import BY_KEY, LEVELS, THRESHOLDS, Level, Threshold
from tooling import slo_rules
from tooling.rules_gen import ROW_ALERT_BY_KEY, format_limit, maintenance_phrases

_LIMIT = re.compile(r"([<>])\s*(\d+(?:\.\d+)?)\s*(%|s\b|seconds\b)?")
_COMPARISON = re.compile(r"\s([<>])\s+(\d+(?:\.\d+)?(?:e[-+]?\d+)?)\b")


def parse_limit(text: str, unit: str) -> tuple[str, float] | None:
    """`> 2 s` / `< 70 %` / `> 1500` -> (op, value in base units); None if absent."""
    match = _LIMIT.search(text)
    if match is None:
        return None
    op, number, suffix = match.groups()
    value = float(number)
    if suffix == "%" or (unit == "ratio" and suffix is None and value > 1):
        value /= 100
    return op, value


def _agrees(t: Threshold, level: Level, op: str, value: float) -> bool:
    return op == t.comparison and abs(value - t.limit(level)) < 1e-9


def _rules_by_alert(rules_doc: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for group in rules_doc.get("groups", []):
        for rule in group.get("rules", []):
            if "alert" in rule:
                found.setdefault(rule["alert"], []).append(rule)
    return found


def rules_problems(rules_doc: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    alerts = _rules_by_alert(rules_doc)
    for t in THRESHOLDS:
        name = ROW_ALERT_BY_KEY[t.key].alert
        by_level = {r.get("labels", {}).get("severity"): r for r in alerts.get(name, [])}
        for level in LEVELS:
            rule = by_level.get(level)
            if rule is None:
                problems.append(f"rules: {t.title}: no {level} rule for {name}")
                continue
            first_line = " " + rule["expr"].splitlines()[0]
            match = _COMPARISON.search(first_line)
            if match is None:
                problems.append(f"rules: {name} ({level}): no comparison in {rule['expr']!r}")
            elif not _agrees(t, level, match.group(1), float(match.group(2))):
                problems.append(
                    f"rules: {name} ({level}) compares {match.group(1)} {match.group(2)},"
                    f" thresholds.py says {format_limit(t, level)}"
                )
            if not rule.get("for"):
                problems.append(f"rules: {name} ({level}) has no for:")
    return problems


def _tables(text: str) -> Iterable[list[list[str]]]:
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].lstrip().startswith("|"):
            block = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                block.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            yield block
        else:
            i += 1


def markdown_table_problems(text: str, source: str) -> list[str]:
    """Every markdown table headed Metric | Warning | Critical matches the source."""
    problems: list[str] = []
    by_title = {t.title.lower(): t for t in THRESHOLDS}
    seen_table = False
    for table in _tables(text):
        header = [c.lower() for c in table[0]]
        if header[:3] != ["metric", "warning", "critical"]:
            continue
        seen_table = True
        rows = [r for r in table[1:] if not set("".join(r)) <= set("-: ")]
        titles = set()
        for row in rows:
            t = by_title.get(row[0].lower())
            if t is None:
                problems.append(
                    f"{source}: thresholds table row {row[0]!r} is not in thresholds.py"
                )
                continue
            titles.add(t.title)
            for level, cell in zip(LEVELS, row[1:3], strict=True):
                parsed = parse_limit(cell, t.unit)
                if parsed is None or not _agrees(t, level, *parsed):
                    problems.append(
                        f"{source}: {t.title} {level} is {cell!r},"
                        f" thresholds.py says {format_limit(t, level)}"
                    )
        missing = {t.title for t in THRESHOLDS} - titles
        if missing:
            problems.append(f"{source}: thresholds table lacks {sorted(missing)}")
    if not seen_table:
        problems.append(f"{source}: no 'Metric | Warning | Critical' table")
    return problems


def heading_anchors(text: str) -> dict[str, str]:
    """GitHub-style anchors of the markdown headings -> heading text."""
    anchors = {}
    in_code = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code:
            continue
        match = re.match(r"^#{1,6}\s+(.*?)\s*$", line)
        if match:
            title = match.group(1)
            slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
            anchors[slug] = title
    return anchors


def sections(text: str) -> dict[str, str]:
    """`## Heading` -> the text up to the next `## ` heading."""
    found: dict[str, str] = {}
    current: str | None = None
    for line in text.splitlines():
        if line.startswith("## "):
            current = line[3:].strip()
            found[current] = ""
        elif current is not None:
            found[current] += line + "\n"
    return found


def _rule_phrases(rule: Mapping[str, Any]) -> tuple[str, ...]:
    """What the runbook line of a burn-rate rule must quote: its factor and windows."""
    labels = rule.get("labels", {})
    if rule.get("alert") != slo_rules.ALERT:
        return ()
    alert = next(a for a in slo.BURN_RATE_ALERTS if a.long == labels.get("long_window"))
    return (f"burn rate > {alert.factor:g}", f"over {alert.long} and {alert.short}")


def runbook_problems(
    text: str, rules_doc: Mapping[str, Any], source: str = "docs/runbook.md"
) -> list[str]:
    problems = markdown_table_problems(text, source)
    parts = sections(text)
    anchors = heading_anchors(text)
    row_of = {ROW_ALERT_BY_KEY[t.key].alert: t for t in THRESHOLDS}
    phrases = maintenance_phrases()
    for name, rules in _rules_by_alert(rules_doc).items():
        for rule in rules:
            url = rule.get("annotations", {}).get("runbook_url", "")
            if url.partition("#")[2] not in anchors:
                problems.append(f"{name}: runbook_url {url!r} has no matching heading in {source}")
        body = parts.get(name)
        if body is None:
            problems.append(f"{source}: no '## {name}' section")
            continue
        bullets: dict[str, list[str]] = {}
        for match in re.finditer(r"^- (Critical|Warning|Info): (.*)$", body, re.M):
            bullets.setdefault(match.group(1).lower(), []).append(match.group(2))
        for rule in rules:
            level = rule["labels"]["severity"]
            lines = bullets.get(level)
            if not lines:
                problems.append(f"{source}: {name} section lacks a '- {level.title()}: ...' line")
                continue
            # A name with several rules of one severity (the SLO's burn-rate windows) has
            # one line per rule: the one quoting the rule's own phrases.
            wanted = (*phrases.get(name, ()), *_rule_phrases(rule))
            line = next((li for li in lines if all(p in li for p in wanted)), lines[0])
            wanted_for = rule.get("for")
            if wanted_for and not line.rstrip().split(" (")[0].endswith(f"for {wanted_for}"):
                problems.append(
                    f"{source}: {name} {level} line {line!r} should say 'for {wanted_for}'"
                )
            for phrase in wanted:
                if phrase not in line:
                    problems.append(
                        f"{source}: {name} {level} line {line!r} should quote {phrase!r}"
                        " (thresholds.py MAINTENANCE, slo.py)"
                    )
            t = row_of.get(name)
            if t is not None:
                parsed = parse_limit(line, t.unit)
                if parsed is None or not _agrees(t, level, *parsed):
                    problems.append(
                        f"{source}: {name} {level} line {line!r},"
                        f" thresholds.py says {format_limit(t, level)}"
                    )
    return problems


def dashboard_problems(
    board: Mapping[str, Any], source: str, titles: Mapping[str, str] | None = None
) -> list[str]:
    """Panels titled after a row (or listed in `titles`: panel title -> row key) must
    have exactly that row's warning and critical as threshold steps."""
    mapping = {t.title.lower(): t.key for t in THRESHOLDS}
    mapping.update({k.lower(): v for k, v in (titles or {}).items()})
    problems: list[str] = []
    for panel in _panels(board):
        key = mapping.get(str(panel.get("title", "")).lower())
        if key is None:
            continue
        t = BY_KEY[key]
        steps = (
            panel.get("fieldConfig", {}).get("defaults", {}).get("thresholds", {}).get("steps", [])
        )
        values = sorted(s["value"] for s in steps if s.get("value") is not None)
        if values != sorted([t.warning, t.critical]):
            problems.append(
                f"{source}: panel {panel['title']!r} steps {values},"
                f" thresholds.py says {t.warning:g} / {t.critical:g}"
            )
    return problems


def _panels(board: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    for panel in board.get("panels", []):
        yield panel
        yield from _panels(panel)  # rows nest panels
