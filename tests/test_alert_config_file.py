"""alert_config.py has one reader (common/alert_config.py) for the alert bridge and the
reporter: a broken file is reported the same way by both, naming the file, and neither
package imports the other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from alert_bridge.config import ConfigError, load_config
from reports.recipients import RecipientsError, load_recipients
from tooling.checkout import ROOT

BROKEN = {
    "missing": None,
    "syntax error": b"ALERT_RECIPIENTS = {\n",
    "raises": b"raise RuntimeError('no recipients today')\n",
    "no recipients": b"RECIPIENTS = {}\n",
    "not utf-8": b"ALERT_RECIPIENTS = {'email': {'critical': ['\xff@example.com']}}\n",
    "a nul byte": b"ALERT_RECIPIENTS = {}\x00\n",
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_file_reads_the_same_from_the_bridge_and_the_reporter(
    case: str, tmp_path: Path
) -> None:
    path = tmp_path / "alert_config.py"
    content = BROKEN[case]
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError) as bridge:
        load_config(path)
    with pytest.raises(RecipientsError) as reporter:
        load_recipients(path)
    assert str(bridge.value) == str(reporter.value)
    assert str(bridge.value).startswith(f"{path}: "), bridge.value


def test_one_file_serves_both(tmp_path: Path) -> None:
    path = tmp_path / "alert_config.py"
    path.write_text(
        "ALERT_RECIPIENTS = {\n"
        "    'email': {'critical': ['ops@example.com'], 'warning': [], 'info': []},\n"
        "    'reports': {'daily': ['lead@example.com'], 'weekly': []},\n"
        "}\n"
    )
    assert load_config(path).count() == 1
    assert load_recipients(path) == {"daily": ["lead@example.com"], "weekly": []}


def _imports(package: str) -> set[str]:
    found: set[str] = set()
    for source in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
    return found


def test_the_bridge_and_the_reports_do_not_import_each_other() -> None:
    assert "reports" not in _imports("alert_bridge")
    assert "alert_bridge" not in _imports("reports")
