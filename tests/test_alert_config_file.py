"""alert_config.py has one reader (common/alert_config.py) for the alert bridge and the
reporter: a broken file is reported the same way by both, naming the file (that neither
package imports the other is tests/test_layout.py's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from alert_bridge.config import ConfigError, load_config
from reports import reporter
from reports.recipients import RecipientsError, load_recipients

BROKEN = {
    "missing": None,
    "syntax error": b"ALERT_RECIPIENTS = {\n",
    "raises": b"raise RuntimeError('no recipients today')\n",
    "no recipients": b"RECIPIENTS = {}\n",
    "not utf-8": b"ALERT_RECIPIENTS = {'email': {'critical': ['\xff@example.com']}}\n",
    "a nul byte": b"ALERT_RECIPIENTS = {}\x00\n",
    "exits": b"raise SystemExit(3)\n",  # the service exited without a word
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


def test_the_reporter_names_a_bad_reports_entry_at_startup_not_at_eight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "alert_config.py"
    path.write_text("ALERT_RECIPIENTS = {'reports': {'daily': 'ops@example.com'}}\n")
    monkeypatch.setenv("ALERT_CONFIG_FILE", str(path))
    monkeypatch.setenv("TRACETRACK_VAR_DIR", str(tmp_path / "var"))
    assert reporter.main() == 1  # before its loop: nothing to stop
    assert f"{path}: ALERT_RECIPIENTS['reports']['daily'] must be a list" in caplog.text
