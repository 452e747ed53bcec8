"""docs/architecture.md §8: a PostgreSQL restart is survived without restarting the app."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from app.main import create_app
from tests.support.appkit import add_user, app_settings, auth, token
from tooling.pgserver import PostgresServer


def test_app_answers_503_while_postgres_is_down_and_recovers_after_restart(tmp_path: Path) -> None:
    pg = PostgresServer(tmp_path / "pg").start()
    try:
        url = pg.create_database("app")
        add_user(url, "dana", "dispatcher")
        with TestClient(create_app(app_settings(url, tmp_path))) as client:
            h = auth(token(client, "dana"))
            assert (
                client.post(
                    "/api/bags", json={"qr_id": "P1", "bag_type": "parent"}, headers=h
                ).status_code
                == 201
            )
            pg.stop()
            down = client.get("/api/bags", headers=h)
            assert down.status_code == 503 and "database unavailable" in down.json()["detail"]
            assert client.get("/readyz").status_code == 503
            assert client.get("/healthz").status_code == 200  # alive, just not ready
            pg.start()
            # Same app, same pool: pre-ping replaces the dead connections.
            r = client.get("/api/bags", headers=h)
            assert r.status_code == 200 and [b["qr_id"] for b in r.json()["items"]] == ["P1"]
            assert client.get("/readyz").status_code == 200
    finally:
        pg.stop()
