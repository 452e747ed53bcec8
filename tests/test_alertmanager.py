"""Alertmanager routing: amtool on the shipped and rendered configs, and a real
Alertmanager delivering to a local webhook sink on the bridge's paths."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.sinks import WebhookSink
from tests.support.stack import AlertmanagerHandle
from tooling import stackconfig
from tooling.checkout import ROOT
from tooling.procs import require_binary, wait_until

SHIPPED = stackconfig.ALERTMANAGER_CONFIG


def amtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_binary("amtool"), *map(str, args)], capture_output=True, text=True, timeout=60
    )


def routes_to(config: Path, *labels: str) -> str:
    result = amtool("config", "routes", "test", f"--config.file={config}", *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


def shipped() -> dict[str, Any]:
    return yaml.safe_load(SHIPPED.read_text())


# --- amtool ----------------------------------------------------------------------------


def test_amtool_check_config_of_the_shipped_file() -> None:
    result = amtool("check-config", SHIPPED)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "5 receivers" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (
            ["alertname=TraceTrackCPUUsageHigh", "severity=critical", "instance=h:9817"],
            "bridge-critical",
        ),
        (
            ["alertname=TraceTrackCPUUsageHigh", "severity=warning", "instance=h:9817"],
            "bridge-warning",
        ),
        (["alertname=SomethingToNote", "severity=info"], "bridge-info"),
        (["alertname=Watchdog", "severity=info"], "bridge-watchdog"),
        # Every bridge down: Alertmanager's own receivers, not a dead bridge.
        (["alertname=TraceTrackAlertBridgeDown", "severity=critical"], "bridge-down"),
        # An alert someone adds without a severity still reaches people.
        (["alertname=Unlabelled"], "bridge-warning"),
        (["alertname=Odd", "severity=page"], "bridge-warning"),
    ],
)
def test_each_severity_lands_on_its_receiver(labels: list[str], receiver: str) -> None:
    assert routes_to(SHIPPED, *labels) == receiver
    verify = amtool(
        "config",
        "routes",
        "test",
        f"--config.file={SHIPPED}",
        f"--verify.receivers={receiver}",
        *labels,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


def shipped_alerts() -> list[tuple[str, str]]:
    rules = yaml.safe_load(stackconfig.RULES_FILE.read_text())
    return sorted(
        {
            (r["alert"], r["labels"]["severity"])
            for g in rules["groups"]
            for r in g["rules"]
            if "alert" in r
        }
    )


@pytest.mark.parametrize(
    ("alertname", "severity"), shipped_alerts(), ids=[f"{a}-{s}" for a, s in shipped_alerts()]
)
def test_every_shipped_alert_lands_on_its_severitys_receiver(alertname: str, severity: str) -> None:
    """By name, as Prometheus sends them: e.g. the table-maintenance info alerts reach
    /alertmanager/info (email only), not a pager."""
    special = {"Watchdog": "bridge-watchdog", "TraceTrackAlertBridgeDown": "bridge-down"}
    receiver = special.get(alertname, f"bridge-{severity}")
    labels = [
        f"alertname={alertname}",
        f"severity={severity}",
        "instance=127.0.0.1:9817",
        "job=tracetrack-exporter",
        "table=bags",
    ]
    assert routes_to(SHIPPED, *labels) == receiver
    if receiver == "bridge-down":  # Alertmanager's own receivers: no bridge path
        return
    assert (
        stackconfig.webhook_paths()[receiver] == f"/alertmanager/{receiver.removeprefix('bridge-')}"
    )


def test_amtool_route_verification_can_fail() -> None:
    result = amtool(
        "config",
        "routes",
        "test",
        f"--config.file={SHIPPED}",
        "--verify.receivers=bridge-info",
        "alertname=X",
        "severity=critical",
    )
    assert result.returncode != 0


def test_receivers_post_to_the_bridge_paths_with_a_bearer_token_file() -> None:
    assert stackconfig.webhook_paths() == {
        "bridge-critical": "/alertmanager/critical",
        "bridge-warning": "/alertmanager/warning",
        "bridge-info": "/alertmanager/info",
        "bridge-watchdog": "/alertmanager/watchdog",
    }
    for receiver in shipped()["receivers"]:
        if receiver["name"] == "bridge-down":  # filled by tracetrack up (native_route.py)
            assert set(receiver) == {"name"}
            continue
        (hook,) = receiver["webhook_configs"]
        assert hook["url"].startswith("http://127.0.0.1:9818/alertmanager/")
        auth = hook["http_config"]["authorization"]
        assert auth["type"] == "Bearer" and "credentials" not in auth
        # Relative to alertmanager/: the bridge's default token file var/bridge_auth_token.
        assert (
            SHIPPED.parent / auth["credentials_file"]
        ).resolve() == ROOT / "var" / "bridge_auth_token"
        assert hook["send_resolved"] is (receiver["name"] != "bridge-watchdog")


def test_grouping_inhibition_and_timings() -> None:
    doc = shipped()
    route = doc["route"]
    assert route["group_by"] == ["alertname", "instance"]
    # The severity rule first; the cause rules after it are checked against
    # tooling/cause_rules.py in tests/test_cause_alerts.py.
    assert doc["inhibit_rules"][0] == {
        "source_matchers": ['severity="critical"'],
        "target_matchers": ['severity="warning"'],
        "equal": ["alertname", "job", "instance"],
    }
    by_receiver = {r["receiver"]: r for r in route["routes"]}
    watchdog = by_receiver["bridge-watchdog"]
    # The bridge's dead man's switch needs regular heartbeats.
    assert stackconfig.duration_seconds(watchdog["repeat_interval"]) <= 60
    assert route["routes"][0] is watchdog  # before the severity routes
    critical = by_receiver["bridge-critical"]
    assert stackconfig.duration_seconds(critical["group_wait"]) <= 10
    # Storms: one group per alert and job, re-notified at most once a minute.
    assert critical["group_by"] == ["alertname", "job"]
    assert stackconfig.duration_seconds(critical["group_interval"]) == 60


def test_rendered_config_changes_address_token_and_timings_only(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("x" * 32)
    config = stackconfig.write_alertmanager_config(
        tmp_path / "am.yml",
        bridge_url="http://127.0.0.1:4567",
        credentials_file=token,
        route_timings=stackconfig.FAST_ROUTE_TIMINGS,
    )
    result = amtool("check-config", config)
    assert result.returncode == 0, result.stdout + result.stderr
    doc = yaml.safe_load(config.read_text())
    for receiver in doc["receivers"]:
        if receiver["name"] == "bridge-down":  # Alertmanager's own; no bridge to reach
            continue
        hook = receiver["webhook_configs"][0]
        assert hook["url"].startswith("http://127.0.0.1:4567/alertmanager/")
        assert hook["http_config"]["authorization"]["credentials_file"] == str(token)
    shipped_routes = {r["receiver"]: r for r in shipped()["route"]["routes"]}
    for route in [doc["route"], *doc["route"]["routes"]]:
        for key, value in stackconfig.FAST_ROUTE_TIMINGS.items():
            if route["receiver"] == stackconfig.WATCHDOG_RECEIVER:
                # The heartbeat keeps its shipped pace: the dead man's switch counts on it.
                assert route[key] == shipped_routes[route["receiver"]][key]
            else:
                assert route[key] == value
    assert routes_to(config, "alertname=X", "severity=critical") == "bridge-critical"
    assert doc["inhibit_rules"] == shipped()["inhibit_rules"]


def test_rendering_rejects_a_bad_bridge_url_or_timing_key() -> None:
    with pytest.raises(stackconfig.ConfigError, match="bridge_url"):
        stackconfig.render_alertmanager_config(bridge_url="127.0.0.1:9818")
    with pytest.raises(stackconfig.ConfigError, match="group_whatever"):
        stackconfig.render_alertmanager_config(route_timings={"group_whatever": "1s"})


# --- a real Alertmanager --------------------------------------------------------------------


def alert(name: str, severity: str, **labels: str) -> dict[str, Any]:
    return {
        "labels": {"alertname": name, "severity": severity, **labels},
        "annotations": {"summary": f"{name} {severity}"},
    }


def test_real_alertmanager_routes_each_severity_to_its_bridge_path_and_inhibits_warnings(
    alertmanager_factory,
    webhook_sink: WebhookSink,
    tmp_path: Path,
) -> None:
    token = tmp_path / "bridge_token"
    token.write_text("s3cret-token-for-the-bridge\n")
    am: AlertmanagerHandle = alertmanager_factory(
        bridge_url=webhook_sink.url, credentials_file=token
    )
    target = {"job": "tracetrack-app", "instance": "127.0.0.1:8000"}
    am.post_alerts(
        [
            alert("TraceTrackErrorRateHigh", "critical", **target),
            alert("TraceTrackErrorRateHigh", "warning", **target),
            alert("TraceTrackConcurrentUsersHigh", "warning", **target),
            alert("SomethingToNote", "info", **target),
            alert("Watchdog", "info"),
        ]
    )
    wait_until(
        lambda: (
            {r.path for r in list(webhook_sink.received)}
            >= {
                "/alertmanager/critical",
                "/alertmanager/warning",
                "/alertmanager/info",
                "/alertmanager/watchdog",
            }
        ),
        20,
        "a delivery on every bridge path",
    )
    time.sleep(3)  # three group_intervals: time for a wrongly routed or uninhibited post

    for request in list(webhook_sink.received):
        assert request.headers["authorization"] == "Bearer s3cret-token-for-the-bridge"

    (critical, *_) = webhook_sink.bodies("alertmanager/critical")
    assert critical["receiver"] == "bridge-critical" and critical["status"] == "firing"
    # Critical groups are per alert and job (storms: one page names every instance).
    assert critical["groupLabels"] == {
        "alertname": "TraceTrackErrorRateHigh",
        "job": "tracetrack-app",
    }
    assert [a["labels"]["severity"] for a in critical["alerts"]] == ["critical"]

    # The warning twin of the critical is inhibited; a different warning is not.
    warned = {
        a["labels"]["alertname"]
        for p in webhook_sink.bodies("alertmanager/warning")
        for a in p["alerts"]
    }
    assert warned == {"TraceTrackConcurrentUsersHigh"}
    (twin,) = am.alerts(alertname="TraceTrackErrorRateHigh", severity="warning")
    assert twin["status"]["state"] == "suppressed" and twin["status"]["inhibitedBy"]

    infos = {
        a["labels"]["alertname"]
        for p in webhook_sink.bodies("alertmanager/info")
        for a in p["alerts"]
    }
    assert infos == {"SomethingToNote"}
    watchdog = webhook_sink.bodies("alertmanager/watchdog")
    assert {a["labels"]["alertname"] for p in watchdog for a in p["alerts"]} == {"Watchdog"}


def test_real_alertmanager_repeats_the_watchdog_heartbeat(
    alertmanager_factory,
    webhook_sink: WebhookSink,
) -> None:
    am: AlertmanagerHandle = alertmanager_factory(
        bridge_url=webhook_sink.url,
        watchdog_timings={"group_wait": "0s", "group_interval": "1s", "repeat_interval": "2s"},
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(webhook_sink.bodies("alertmanager/watchdog")) < 3:
        am.post_alerts([alert("Watchdog", "info")])  # Prometheus re-sends firing alerts too
        time.sleep(0.5)
    beats = [r.at for r in list(webhook_sink.received) if r.path == "/alertmanager/watchdog"]
    assert len(beats) >= 3, "the Watchdog was not repeated"
    assert all(
        b - a >= 1.5 for a, b in zip(beats, beats[1:], strict=False)
    )  # repeat_interval, not every post
