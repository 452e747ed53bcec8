"""alert_config.py validation, `tracetrack bridge check-config`, and startup refusing
an invalid file with the file and the entry named."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from alert_bridge.config import (
    ConfigError,
    load_config,
    parse_recipients,
    webhook_format_for,
)
from alert_bridge.settings import DEFAULT_ALERT_CONFIG
from common.alerting import CHANNEL_MATRIX
from tests.support.bridgekit import write_alert_config
from tooling.procs import TRACETRACK, free_port


def test_the_shipped_config_is_valid_and_follows_the_matrix() -> None:
    cfg = load_config(DEFAULT_ALERT_CONFIG)
    assert CHANNEL_MATRIX == {
        "critical": ("sms", "email", "webhook"),
        "warning": ("email", "webhook"),
        "info": ("email",),
    }
    assert {r.channel for r in cfg.for_severity("critical")} == {"sms", "email", "webhook"}
    assert {r.channel for r in cfg.for_severity("warning")} == {"email", "webhook"}
    assert {r.channel for r in cfg.for_severity("info")} == {"email"}
    assert {r.channel for r in cfg.critical_pager()} == {"sms", "email", "webhook"}


@pytest.mark.parametrize(
    "raw, entry, problem",
    [
        (
            {"email": {"critical": ["ok@example.com", "not-an-email"]}},
            "['email']['critical'][1]",
            "not a valid email address",
        ),
        ({"email": {"info": ["two@@example.com"]}}, "['email']['info'][0]", "not a valid email"),
        ({"sms": {"critical": ["4155550100"]}}, "['sms']['critical'][0]", "not an E.164"),
        ({"sms": {"critical": ["+1 415 555 0100"]}}, "['sms']['critical'][0]", "not an E.164"),
        (
            {"webhook": {"critical": ["hooks.slack.com/services/x"]}},
            "['webhook']['critical'][0]",
            "not a valid http(s) URL",
        ),
        (
            {"webhook": {"warning": ["ftp://example.com/hook"]}},
            "['webhook']['warning'][0]",
            "not a valid http(s) URL",
        ),
        (
            {"webhook": {"warning": [{"url": "https://example.com/h", "format": "teams"}]}},
            "['webhook']['warning'][0]",
            "unknown webhook format 'teams'",
        ),
        (
            {"webhook": {"warning": [{"href": "https://example.com/h"}]}},
            "['webhook']['warning'][0]",
            "unknown key(s) ['href']",
        ),
        ({"pager": {"critical": ["x"]}}, "['pager']", "unknown channel"),
        ({"email": {"urgent": ["a@example.com"]}}, "['email']['urgent']", "unknown severity"),
        ({"sms": {"warning": ["+14155550100"]}}, "['sms']['warning']", "channel matrix"),
        ({"webhook": {"info": ["https://example.com/h"]}}, "['webhook']['info']", "channel matrix"),
        ({"email": {"info": "a@example.com"}}, "['email']['info']", "must be a list"),
        ({"email": {"info": ["a@example.com", "a@example.com"]}}, "['email']['info'][1]", "twice"),
    ],
)
def test_invalid_entries_are_named(
    tmp_path: Path, raw: dict[str, Any], entry: str, problem: str
) -> None:
    path = write_alert_config(tmp_path / "alert_config.py", raw)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value)
    assert f"ALERT_RECIPIENTS{entry}" in str(err.value)
    assert problem in str(err.value)


def test_file_level_problems_are_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.py"
    with pytest.raises(ConfigError, match="not found"):
        load_config(missing)
    broken = tmp_path / "broken.py"
    broken.write_text("ALERT_RECIPIENTS = {'email': \n")
    with pytest.raises(ConfigError, match=r"broken.py: cannot be loaded: SyntaxError"):
        load_config(broken)
    empty = tmp_path / "empty.py"
    empty.write_text("RECIPIENTS = {}\n")
    with pytest.raises(ConfigError, match="defines no ALERT_RECIPIENTS"):
        load_config(empty)


def test_webhook_format_is_recognised_from_the_host() -> None:
    assert webhook_format_for("https://hooks.slack.com/services/T/B/X") == "slack"
    assert webhook_format_for("https://discord.com/api/webhooks/1/x") == "discord"
    assert webhook_format_for("https://discordapp.com/api/webhooks/1/x") == "discord"
    assert webhook_format_for("https://alerts.example.com/hook") == "json"
    assert webhook_format_for("https://slack.com.evil.example/x") == "json"
    cfg = parse_recipients(
        {
            "webhook": {
                "warning": [
                    {"url": "https://hooks.slack.com/services/T/B/X", "format": "json"},
                    "https://discord.com/api/webhooks/1/x",
                ]
            }
        },
        Path("x.py"),
    )
    assert [r.format for r in cfg.for_severity("warning")] == ["json", "discord"]


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TRACETRACK, *args], capture_output=True, text=True, timeout=60, env={**os.environ, **env}
    )


def test_check_config_cli(tmp_path: Path) -> None:
    good = _run(
        ["bridge", "check-config"],
        {"ALERT_CONFIG_FILE": str(DEFAULT_ALERT_CONFIG), "TRACETRACK_VAR_DIR": str(tmp_path)},
    )
    assert good.returncode == 0, good.stderr
    assert "OK, 8 recipients" in good.stdout
    assert "ENABLE_EMAIL_ALERTS is off" in good.stdout  # says why nothing will be sent

    bad = write_alert_config(tmp_path / "bad.py", {"sms": {"critical": ["0800-SOS"]}})
    out = _run(["bridge", "check-config"], {"ALERT_CONFIG_FILE": str(bad)})
    assert out.returncode == 1
    assert f"{bad}: ALERT_RECIPIENTS['sms']['critical'][0]" in out.stderr
    assert "E.164" in out.stderr

    sms_without_creds = _run(
        ["bridge", "check-config"],
        {
            "ALERT_CONFIG_FILE": str(DEFAULT_ALERT_CONFIG),
            "ENABLE_SMS_ALERTS": "true",
            "TWILIO_ACCOUNT_SID": "",
            "TWILIO_AUTH_TOKEN": "",
            "TWILIO_FROM_NUMBER": "12345",
        },
    )
    assert sms_without_creds.returncode == 1
    assert "TWILIO_AUTH_TOKEN: required" in sms_without_creds.stderr
    assert "TWILIO_FROM_NUMBER: '12345' is not E.164" in sms_without_creds.stderr


def test_a_setting_that_is_not_a_url_is_named_at_startup(tmp_path: Path) -> None:
    for var in ("TRACETRACK_PUBLIC_URL", "BRIDGE_PUBLIC_URL"):
        out = _run(
            ["bridge", "--port", str(free_port())],
            {var: "oncall.example.com", "TRACETRACK_VAR_DIR": str(tmp_path / "var")},
        )
        assert out.returncode == 2, out.stderr
        assert f"{var}: 'oncall.example.com' is not an absolute http(s) base URL" in out.stderr
        assert "Traceback" not in out.stderr


def test_bridge_refuses_to_start_with_an_invalid_config(tmp_path: Path) -> None:
    bad = write_alert_config(tmp_path / "bad.py", {"email": {"critical": ["oncall@example"]}})
    out = _run(
        ["bridge", "--port", str(free_port())],
        {"ALERT_CONFIG_FILE": str(bad), "TRACETRACK_VAR_DIR": str(tmp_path / "var")},
    )
    assert out.returncode == 2
    assert "configuration error" in out.stderr
    assert f"{bad}: ALERT_RECIPIENTS['email']['critical'][0]" in out.stderr
    assert not (tmp_path / "var" / "bridge.sqlite3").exists()  # stopped before anything


def test_token_file_shared_with_alertmanager(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alert_bridge.settings import BridgeSettings, ensure_token_file, resolve_auth_token

    monkeypatch.setenv("TRACETRACK_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("BRIDGE_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("BRIDGE_AUTH_TOKEN_FILE", raising=False)
    settings = BridgeSettings()
    path = ensure_token_file(settings)  # what `tracetrack up` hands Alertmanager
    assert path == tmp_path / "bridge_auth_token" and path.stat().st_mode & 0o777 == 0o600
    assert resolve_auth_token(settings) == path.read_text().strip()
    assert ensure_token_file(settings).read_text() == path.read_text()  # stable

    monkeypatch.setenv("BRIDGE_AUTH_TOKEN", "token-from-the-environment")
    settings = BridgeSettings()
    assert ensure_token_file(settings).read_text().strip() == resolve_auth_token(settings)

    monkeypatch.setenv("BRIDGE_AUTH_TOKEN", "short")
    with pytest.raises(ValueError, match="at least 16 characters"):
        resolve_auth_token(BridgeSettings())
    monkeypatch.delenv("BRIDGE_AUTH_TOKEN")
    monkeypatch.setenv("BRIDGE_AUTH_TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="does not exist"):
        resolve_auth_token(BridgeSettings())


def test_bridge_refuses_an_outbox_url_it_cannot_use(tmp_path: Path) -> None:
    out = _run(
        ["bridge", "--port", str(free_port())],
        {
            "ALERT_CONFIG_FILE": str(DEFAULT_ALERT_CONFIG),
            "TRACETRACK_VAR_DIR": str(tmp_path / "var"),
            "BRIDGE_DATABASE_URL": "mysql://bridge@db/outbox",
        },
    )
    assert out.returncode == 2
    assert "BRIDGE_DATABASE_URL: scheme 'mysql' is not supported" in out.stderr


def test_check_config_refuses_the_tokens_the_bridge_refuses(tmp_path: Path) -> None:
    """check-config said OK to a token the bridge then refused to start with."""
    base = {"ALERT_CONFIG_FILE": str(DEFAULT_ALERT_CONFIG), "TRACETRACK_VAR_DIR": str(tmp_path)}
    short = _run(["bridge", "check-config"], {**base, "BRIDGE_AUTH_TOKEN": "sh0rt"})
    assert short.returncode == 1 and "BRIDGE_AUTH_TOKEN: the bearer token must be" in short.stderr
    assert "sh0rt" not in short.stderr + short.stdout
    gone = _run(["bridge", "check-config"], {**base, "BRIDGE_AUTH_TOKEN_FILE": "/nonexistent"})
    assert gone.returncode == 1 and "BRIDGE_AUTH_TOKEN_FILE: /nonexistent does not exist" in (
        gone.stderr
    )


def test_settings_that_fail_only_later_are_named_at_startup(tmp_path: Path) -> None:
    """Each of these started a bridge that failed later: a silence from a page (502), every
    delivery claim on a PostgreSQL outbox (lease owner over 200 characters), the outbox."""
    cases = {
        "ALERTMANAGER_URL": ("alertmanager:9093", "ALERTMANAGER_URL: not an http(s) URL"),
        "PROMETHEUS_URL": ("http://:9090", "PROMETHEUS_URL: not an http(s) URL (no host)"),
        "BRIDGE_INSTANCE_ID": ("b" * 201, "BRIDGE_INSTANCE_ID: String should have at most 200"),
        # Every email failed (a name lookup of the whole text), after the page was due.
        "SMTP_SERVER": (
            "smtp.example.com:587",
            "SMTP_SERVER: 'smtp.example.com:587' is not a host",
        ),
        "BRIDGE_DATABASE_URL": (
            "postgresql://bridge:s3cret@db:port/outbox",
            "BRIDGE_DATABASE_URL: its port is not a number",
        ),
    }
    for var, (value, named) in cases.items():
        out = _run(
            ["bridge", "--port", str(free_port())],
            {
                "ALERT_CONFIG_FILE": str(DEFAULT_ALERT_CONFIG),
                "TRACETRACK_VAR_DIR": str(tmp_path / "var"),
                var: value,
            },
        )
        assert out.returncode == 2 and named in out.stderr, (var, out.stderr)
        assert "s3cret" not in out.stderr and "Traceback" not in out.stderr
