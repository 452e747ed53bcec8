"""The webhook endpoint's contract: 2xx only once stored, clear 4xx for bad input
with nothing stored, 401 without the token, 5xx (never 4xx) when it cannot store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from tests.support.bridgekit import (
    AUTH,
    InProcessBridge,
    am_payload,
    bridge_env,
    recipients_for,
    wait_for,
    write_alert_config,
)
from tooling.pgserver import PostgresServer


@pytest.fixture()
def bridge(tmp_path: Path) -> Iterator[InProcessBridge]:
    # No channel enabled: deliveries are logged and kept, which is all intake needs.
    cfg = write_alert_config(tmp_path / "alert_config.py", recipients_for())
    with InProcessBridge(bridge_env(tmp_path, cfg, BRIDGE_MAX_PAYLOAD_BYTES=4096)) as b:
        yield b


def assert_nothing_stored(bridge: InProcessBridge) -> None:
    body = bridge.notifications()
    assert body["counts"] == {} and body["deliveries"] == []


@pytest.mark.parametrize(
    "body, reason",
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (json.dumps({**am_payload(), "version": "3"}).encode(), "unsupported payload version"),
        (json.dumps({**am_payload(), "alerts": []}).encode(), "alerts"),
        (
            json.dumps({k: v for k, v in am_payload().items() if k != "groupKey"}).encode(),
            "groupKey",
        ),
        (json.dumps({**am_payload(), "status": "exploded"}).encode(), "status"),
        (json.dumps({**am_payload(), "alerts": [{"status": "firing"}]}).encode(), "alerts.0"),
    ],
)
def test_malformed_payload_is_a_clear_400_and_nothing_is_stored(
    bridge: InProcessBridge, body: bytes, reason: str
) -> None:
    resp = bridge.http.post(
        "/alertmanager/critical", content=body, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert resp.status_code == 400
    assert reason in resp.json()["error"]
    assert_nothing_stored(bridge)


def test_oversized_payload_is_413_and_nothing_is_stored(bridge: InProcessBridge) -> None:
    big = am_payload(n_alerts=40)  # well over the 4 KiB limit of this bridge
    resp = bridge.post("critical", big)
    assert resp.status_code == 413
    assert "4096-byte limit" in resp.json()["error"]

    # A client that does not declare the length is cut off by counting, too.
    def chunks() -> Iterator[bytes]:
        data = json.dumps(big).encode()
        for i in range(0, len(data), 1000):
            yield data[i : i + 1000]

    resp = bridge.http.post("/alertmanager/critical", content=chunks(), headers=AUTH)
    assert resp.status_code == 413
    assert_nothing_stored(bridge)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token-wrong-token"},
        {"Authorization": "Basic eDp5"},
        {"Authorization": AUTH["Authorization"] + "x"},
    ],
)
def test_without_the_right_bearer_token_401(
    bridge: InProcessBridge, headers: dict[str, str]
) -> None:
    resp = bridge.post("critical", am_payload(), headers=headers)
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"].startswith("Bearer")
    assert bridge.http.get("/notifications", headers=headers).status_code == 401
    assert_nothing_stored(bridge)


def test_unknown_severity_is_404_naming_the_valid_ones(bridge: InProcessBridge) -> None:
    resp = bridge.post("urgent", am_payload())
    assert resp.status_code == 404
    assert "critical, warning, info" in resp.json()["error"]
    assert_nothing_stored(bridge)


def test_accepted_payload_is_stored_with_its_deliveries(bridge: InProcessBridge) -> None:
    resp = bridge.post("warning", am_payload("SlowResponses", "warning"))
    assert resp.status_code == 200
    assert resp.json()["status"] == "stored" and resp.json()["new_deliveries"] == 1
    # With no channel enabled, the bridge logs the message and keeps it, marked "logged".
    wait_for(lambda: bridge.counts() == {"logged": 1}, 60, "the logged delivery")
    (row,) = bridge.notifications()["deliveries"]
    assert row["title"] == "SlowResponses" and row["channel"] == "email"
    assert row["recipient"] == "lead@example.com" and row["attempts"] == 1
    assert (
        bridge.metric(
            "tracetrack_notifications_total", channel="email", severity="warning", outcome="logged"
        )
        == 1
    )


def test_notifications_endpoint_validates_its_parameters(bridge: InProcessBridge) -> None:
    assert bridge.http.get("/notifications", params={"limit": 0}, headers=AUTH).status_code == 400
    resp = bridge.http.get("/notifications", params={"status": "lost"}, headers=AUTH)
    assert resp.status_code == 400 and "pending" in resp.json()["error"]
    for limit in ("abc", "9" * 5000, "1\x00"):  # FastAPI's 422 echoed these back
        resp = bridge.http.get("/notifications", params={"limit": limit}, headers=AUTH)
        assert resp.status_code == 400 and resp.json()["error"].startswith("limit: "), limit
        assert "999999" not in resp.text


def test_health_and_metrics_need_no_token(bridge: InProcessBridge) -> None:
    assert bridge.http.get("/healthz").json() == {"status": "ok"}
    assert bridge.http.get("/readyz").status_code == 200
    text = bridge.http.get("/metrics").text
    assert "tracetrack_notification_queue_depth 0.0" in text
    assert "tracetrack_notification_delivery_seconds_bucket" in text


def test_store_unavailable_is_503_never_4xx(
    tmp_path: Path, postgres: PostgresServer, database_url: str
) -> None:
    cfg = write_alert_config(tmp_path / "alert_config.py", recipients_for())
    env = bridge_env(tmp_path, cfg, BRIDGE_DATABASE_URL=database_url)
    with InProcessBridge(env) as b:
        assert b.post("info", am_payload("Before", "info")).status_code == 200
        dbname = database_url.rsplit("/", 1)[1]
        conn = psycopg2.connect(postgres.dsn())
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE "{dbname}" WITH (FORCE)')
        conn.close()
        resp = b.post("info", am_payload("After", "info"))
        assert resp.status_code == 503
        assert "retry" in resp.json()["error"]
        assert b.http.get("/readyz").status_code == 503
        # Bad input still gets its 4xx: the payload is checked before the store.
        assert b.post("info", {"version": "4"}).status_code == 400
