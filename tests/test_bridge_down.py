"""When every bridge is down, someone is still told: Alertmanager's own email and Slack /
Discord receivers, generated from alert_config.py (alert_bridge/native_route.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from alert_bridge.config import load_config
from alert_bridge.native_route import RECEIVER, native_receiver
from common import topology
from tests.support.bridgekit import (
    bridge_env,
    recipients_for,
    settings_from_env,
    write_alert_config,
)
from tests.support.stack import start_alertmanager, start_prometheus
from tooling import stackconfig
from tooling.procs import free_port, require_binary, wait_until

if TYPE_CHECKING:
    from tests.support.sinks import SmtpSink, WebhookSink

PUBLIC = "https://oncall.example.com"


def test_the_receiver_follows_alert_config_and_the_channel_switches(tmp_path: Path) -> None:
    cfg = write_alert_config(
        tmp_path / "alert_config.py",
        {
            "email": {"critical": ["a@example.com", "b@example.com"], "warning": ["w@x.io"]},
            "webhook": {
                "critical": [
                    "https://hooks.slack.com/services/T/B/X",
                    "https://discord.com/api/webhooks/1/y",
                    "https://chat.example.com/hook",
                ],
            },
        },
    )
    env = bridge_env(
        tmp_path,
        cfg,
        ENABLE_EMAIL_ALERTS="true",
        ENABLE_WEBHOOK_ALERTS="true",
        SMTP_SERVER="mail.example.com",
        SMTP_PORT="587",
        ALERT_SENDER_PASSWORD="s3cret-pass",
    )
    settings = settings_from_env(env)
    receiver = native_receiver(load_config(cfg), settings, tmp_path / "secrets")
    email = receiver["email_configs"][0]
    assert email["to"] == "a@example.com, b@example.com"  # critical only
    assert email["smarthost"] == "mail.example.com:587" and email["require_tls"] is True
    secret = Path(email["auth_password_file"])
    assert secret.read_text() == "s3cret-pass" and secret.stat().st_mode & 0o777 == 0o600
    assert "s3cret-pass" not in yaml.safe_dump(receiver)  # never in the config file itself
    assert [c["api_url"] for c in receiver["slack_configs"]] == [
        "https://hooks.slack.com/services/T/B/X"
    ]
    assert len(receiver["discord_configs"]) == 1 and len(receiver["webhook_configs"]) == 1

    off = settings_from_env(bridge_env(tmp_path, cfg))  # every channel switched off
    assert native_receiver(load_config(cfg), off, tmp_path / "secrets") == {}

    rendered = tmp_path / "am.yml"
    rendered.write_text(
        stackconfig.render_alertmanager_config(native_receivers={RECEIVER: receiver})
    )
    check = subprocess.run(
        [require_binary("amtool"), "check-config", str(rendered)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_all_bridges_down_reaches_email_and_slack_through_alertmanager(
    tmp_path: Path, smtp_sink: SmtpSink, webhook_sink: WebhookSink
) -> None:
    cfg = write_alert_config(
        tmp_path / "alert_config.py", recipients_for(smtp_sink, None, webhook_sink)
    )
    env = bridge_env(tmp_path, cfg, smtp_sink, None, webhook_sink, TRACETRACK_PUBLIC_URL=PUBLIC)
    receiver = native_receiver(load_config(cfg), settings_from_env(env), tmp_path / "secrets")
    dead_bridge = f"127.0.0.1:{free_port()}"  # nothing listens: the bridge is down
    token = tmp_path / "token"
    token.write_text("test-token-0123456789\n")
    am = start_alertmanager(
        tmp_path / "am",
        config_text=stackconfig.render_alertmanager_config(
            bridge_url=f"http://{dead_bridge}",
            credentials_file=token,
            route_timings=stackconfig.FAST_ROUTE_TIMINGS,
            native_receivers={RECEIVER: receiver},
        ),
    )
    prom = start_prometheus(
        tmp_path / "prom",
        targets={topology.BRIDGE_JOB: [dead_bridge]},
        rule_files=[stackconfig.write_rules(tmp_path / "rules.yml", for_="1s")],
        alertmanager=am,
    )
    try:
        wait_until(
            lambda: len(smtp_sink.messages("oncall@example.com")) >= 1,
            90,
            "the bridge-down email from Alertmanager itself",
            interval=0.5,
        )
        mail = smtp_sink.messages("oncall@example.com")[0].message
        assert "Every alert bridge is down" in mail["Subject"], mail["Subject"]
        # What to do is in the page itself (the runbook is served by the dead bridges),
        # and the runbook link is on the public URL, not the rules' placeholder base.
        for part in ("plain", "html"):
            body = mail.get_body((part,))
            assert body is not None, part
            content = body.get_content()
            assert "restart the bridge" in content, content
            assert f"{PUBLIC}/runbook#tracetrackalertbridgedown" in content, content
            assert "127.0.0.1" not in content and "localhost" not in content, content
        wait_until(lambda: bool(webhook_sink.bodies("slack/crit")), 30, "the Slack message")
        slack = webhook_sink.bodies("slack/crit")[0]
        text = str(slack)
        assert "Every alert bridge is down" in text and "restart the bridge" in text
        assert f"{PUBLIC}/runbook#tracetrackalertbridgedown" in text
        wait_until(lambda: bool(webhook_sink.bodies("discord/crit")), 30, "the Discord message")
        # The TargetDown warning for the bridge job is inhibited: nothing else is tried.
        am.wait_for_alert("TraceTrackAlertBridgeDown", timeout=10)
    finally:
        prom.proc.stop()
        am.proc.stop()


def test_the_rendered_alertmanager_config_is_as_private_as_its_webhook_urls(
    tmp_path: Path,
) -> None:
    """The bridge-down receiver puts the critical webhooks' URLs (their secret) in
    Alertmanager's config: it was written world-readable, beside a 0600 password file."""
    cfg = write_alert_config(
        tmp_path / "alert_config.py",
        {"webhook": {"critical": ["https://hooks.slack.com/services/T/B/HOOK-SECRET"]}},
    )
    env = bridge_env(tmp_path, cfg, ENABLE_WEBHOOK_ALERTS="true")
    out = tmp_path / "am" / "alertmanager.yml"
    out.parent.mkdir()
    for shared, mode in ((False, 0o600), (True, 0o444)):  # compose: Alertmanager's own user
        r = subprocess.run(
            [str(Path(sys.executable).with_name("tracetrack")), "bridge", "native-route"]
            + ["--template", str(stackconfig.ALERTMANAGER_CONFIG), "--out", str(out)]
            + (["--shared-secrets"] if shared else []),
            env={**os.environ, **env},
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0, r.stderr
        assert "HOOK-SECRET" in out.read_text() and out.stat().st_mode & 0o777 == mode
    local = stackconfig.write_alertmanager_config(
        tmp_path / "up" / "alertmanager.yml",
        native_receivers={
            RECEIVER: native_receiver(load_config(cfg), settings_from_env(env), tmp_path / "s")
        },
    )  # what `tracetrack up` writes
    assert "HOOK-SECRET" in local.read_text() and local.stat().st_mode & 0o777 == 0o600
