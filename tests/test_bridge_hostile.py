"""Hostile webhooks: never a 500, never a 503 for a payload that can never be stored (it
would be retried forever), every refusal logged and counted, real big groups accepted,
and the SQLite outbox private. The real bridge on a real port."""

from __future__ import annotations

import json
import logging
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.bridgekit import (
    AUTH,
    InProcessBridge,
    am_payload,
    bridge_env,
    recipients_for,
    write_alert_config,
)

JSON = {**AUTH, "Content-Type": "application/json"}


@pytest.fixture()
def bridge(tmp_path: Path) -> Iterator[InProcessBridge]:
    cfg = write_alert_config(tmp_path / "alert_config.py", recipients_for())
    with InProcessBridge(bridge_env(tmp_path, cfg)) as b:
        yield b


def post_raw(bridge: InProcessBridge, body: bytes, severity: str = "critical"):
    return bridge.http.post(f"/alertmanager/{severity}", content=body, headers=JSON)


def rejected(bridge: InProcessBridge, reason: str) -> float:
    return bridge.metric("tracetrack_bridge_webhooks_rejected_total", reason=reason)


@pytest.mark.parametrize(
    "body, needle",
    [
        (b"[" * 100_000 + b"]" * 100_000, "nests deeper"),
        (b'{"version": "4", "x": ' + b"[" * 40 + b"]" * 40 + b"}", "nests deeper than 32"),
        (b'{"version": "4", "n": 1' + b"0" * 5000 + b"}", "not acceptable JSON"),
        (b'{"version": "' + b"v" * 100_000 + b'"}', "unsupported payload version"),
        (b"\xff\xfe{}", "not valid JSON"),
    ],
)
def test_hostile_bodies_are_400_and_counted(
    bridge: InProcessBridge, body: bytes, needle: str, caplog: pytest.LogCaptureFixture
) -> None:
    before = rejected(bridge, "invalid")
    with caplog.at_level(logging.WARNING, logger="alert_bridge.http"):
        r = post_raw(bridge, body)
    assert r.status_code == 400, r.text
    assert needle in r.json()["error"] and len(r.content) < 500
    assert rejected(bridge, "invalid") == before + 1
    assert any("rejected webhook /alertmanager/critical" in m for m in caplog.messages)


def test_unpaired_surrogates_and_nul_are_delivered_not_retried(bridge: InProcessBridge) -> None:
    payload = am_payload("Surrogate")
    payload["alerts"][0]["labels"]["instance"] = "\ud800app\x00-1"
    payload["groupLabels"] = {"alertname": "Surr\udfffogate"}
    body = json.dumps(payload).encode()  # escapes: \ud800, \u0000, as a client could send
    r = post_raw(bridge, body)
    assert r.status_code == 200, r.text
    assert set(bridge.wait_settled()) == {"logged"}  # delivered (logged: no channel is on)
    for row in bridge.notifications()["deliveries"]:
        assert row["title"] == "Surr\ufffdogate"  # replaced as Alertmanager's Go JSON would


def test_every_refusal_is_counted_by_reason(bridge: InProcessBridge) -> None:
    assert bridge.post("critical", am_payload(), headers={}).status_code == 401
    assert bridge.post("urgent", am_payload()).status_code == 404
    assert bridge.post("critical", {"version": "4"}).status_code == 400
    for reason in ("unauthorized", "unknown_receiver", "invalid"):
        assert rejected(bridge, reason) == 1, reason
    assert rejected(bridge, "too_large") == 0  # present from the start
    # The operators' endpoint is not a webhook: its 401 is not a rejected notification.
    assert bridge.http.get("/notifications").status_code == 401
    assert rejected(bridge, "unauthorized") == 1


def test_too_large_is_413_logged_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = write_alert_config(tmp_path / "alert_config.py", recipients_for())
    with InProcessBridge(bridge_env(tmp_path, cfg, BRIDGE_MAX_PAYLOAD_BYTES=4096)) as b:
        with caplog.at_level(logging.WARNING, logger="alert_bridge.http"):
            assert b.post("critical", am_payload(n_alerts=40)).status_code == 413
        assert b.metric("tracetrack_bridge_webhooks_rejected_total", reason="too_large") == 1
        assert any("too_large" in m and "413" in m for m in caplog.messages)


def test_a_real_5000_alert_group_is_accepted_by_default(bridge: InProcessBridge) -> None:
    body = json.dumps(am_payload("Storm", n_alerts=5000)).encode()
    assert len(body) > 1_400_000
    r = post_raw(bridge, body)
    assert r.status_code == 200, r.text


def test_the_sqlite_outbox_is_private(tmp_path: Path) -> None:
    db = tmp_path / "bridge.sqlite3"
    db.touch(mode=0o644)  # as an older version left it
    db.chmod(0o644)
    cfg = write_alert_config(tmp_path / "alert_config.py", recipients_for())
    with InProcessBridge(bridge_env(tmp_path, cfg)) as b:
        assert b.post("critical", am_payload()).status_code == 200
        files = [p for p in tmp_path.iterdir() if p.name.startswith("bridge.sqlite3")]
        assert {p.name for p in files} >= {"bridge.sqlite3", "bridge.sqlite3-wal"}
        for p in files:
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
