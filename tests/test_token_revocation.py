"""Tokens die with their user: logout, role change, disabling and deletion revoke them,
without a database round trip per request. Real app, real PostgreSQL."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.support.appkit import PASSWORD, add_user, app_settings, auth, token
from tooling.procs import TRACETRACK, wait_until


def works(client: TestClient, headers: dict[str, str]) -> bool:
    r = client.get("/api/bags", headers=headers)
    assert r.status_code in (200, 401), r.text
    return r.status_code == 200


def test_logout_revokes_the_token(client: TestClient) -> None:
    h = auth(token(client, "dana"))
    assert works(client, h)
    assert client.post("/api/auth/logout", headers=h).status_code == 204
    r = client.get("/api/bags", headers=h)
    assert r.status_code == 401 and "revoked" in r.json()["detail"]
    assert client.post("/api/auth/logout", headers=h).status_code == 401
    assert works(client, auth(token(client, "dana")))  # a fresh login works


def test_a_role_change_revokes_the_old_role_token(
    client: TestClient, admin: dict[str, str]
) -> None:
    old = auth(token(client, "dana"))
    r = client.patch("/api/users/dana", json={"role": "biller"}, headers=admin)
    assert r.status_code == 200 and r.json()["role"] == "biller"
    assert not works(client, old)
    login = client.post("/api/auth/login", json={"username": "dana", "password": PASSWORD})
    assert login.json()["role"] == "biller"


def test_disabling_revokes_and_blocks_login_until_enabled(
    client: TestClient, admin: dict[str, str]
) -> None:
    h = auth(token(client, "dana"))
    r = client.patch("/api/users/dana", json={"disabled": True}, headers=admin)
    assert r.status_code == 200 and r.json()["disabled"] is True
    r = client.get("/api/bags", headers=h)
    assert r.status_code == 401 and "disabled" in r.json()["detail"]
    login = client.post("/api/auth/login", json={"username": "dana", "password": PASSWORD})
    assert login.status_code == 403 and "disabled" in login.json()["detail"]
    wrong = client.post("/api/auth/login", json={"username": "dana", "password": "nope-nope"})
    assert wrong.status_code == 401  # a wrong password learns nothing about the account
    client.patch("/api/users/dana", json={"disabled": False}, headers=admin)
    assert works(client, auth(token(client, "dana")))
    assert not works(client, h)  # re-enabling does not resurrect old tokens


def test_deleting_a_user_revokes_their_token(client: TestClient, admin: dict[str, str]) -> None:
    client.post(
        "/api/users",
        json={"username": "temp", "password": PASSWORD, "role": "biller"},
        headers=admin,
    )
    h = auth(token(client, "temp"))
    assert works(client, h)
    assert client.delete("/api/users/temp", headers=admin).status_code == 204
    r = client.get("/api/bags", headers=h)
    assert r.status_code == 401 and "no longer exists" in r.json()["detail"]
    assert client.delete("/api/users/temp", headers=admin).status_code == 404


def test_a_user_with_scans_is_disabled_not_deleted(
    client: TestClient, admin: dict[str, str], dispatcher: dict[str, str]
) -> None:
    client.post("/api/bags", json={"qr_id": "P1", "bag_type": "parent"}, headers=dispatcher)
    client.post("/api/scans", json={"qr_id": "P1", "location": "Hub"}, headers=dispatcher)
    r = client.delete("/api/users/dana", headers=admin)
    assert r.status_code == 409 and "disable" in r.json()["detail"]
    assert works(client, dispatcher)


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("patch", "/api/users/dana", {"role": "admin"}),
        ("delete", "/api/users/dana", None),
    ],
)
def test_only_admins_manage_users(
    client: TestClient, dispatcher: dict[str, str], method: str, path: str, body: dict | None
) -> None:
    r = client.request(method, path, json=body, headers=dispatcher)
    assert r.status_code == 403


def test_user_admin_input_errors(client: TestClient, admin: dict[str, str]) -> None:
    assert client.patch("/api/users/ghost", json={}, headers=admin).status_code == 404
    assert client.patch("/api/users/dana", json={"role": "boss"}, headers=admin).status_code == 422
    assert client.patch("/api/users/dana", json={"x": 1}, headers=admin).status_code == 422
    assert client.delete("/api/users/a%00b", headers=admin).status_code == 422


def test_analytics_logout_revokes_the_cookie_token(client: TestClient) -> None:
    r = client.post(
        "/analytics/login",
        data={"username": "root", "password": PASSWORD},
        follow_redirects=False,
    )
    assert r.status_code == 303
    cookie = r.cookies["tracetrack_analytics"]
    bearer = auth(cookie)
    assert client.get("/api/bags", headers=bearer).status_code == 200
    client.post("/analytics/logout", follow_redirects=False)
    assert client.get("/api/bags", headers=bearer).status_code == 401
    client.cookies.set("tracetrack_analytics", cookie, path="/analytics")
    page = client.get("/analytics/dashboard", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/analytics/login"


def test_tokens_from_before_versions_still_work(client: TestClient) -> None:
    settings = client.app.state.settings  # type: ignore[attr-defined]
    legacy = jwt.encode(
        {"sub": "1", "name": "root", "role": "admin", "exp": int(time.time()) + 60},
        settings.secret_key,
        algorithm="HS256",
    )
    assert works(client, auth(legacy))


def test_authenticating_a_request_costs_no_database_round_trip(
    client: TestClient, dispatcher: dict[str, str]
) -> None:
    client.post("/api/bags", json={"qr_id": "HOT", "bag_type": "parent"}, headers=dispatcher)
    client.get("/api/bags/HOT", headers=dispatcher)  # now cached, and the user's state too
    # Every statement the app sends takes a connection from its pool first (app/db.py).
    db = client.app.state.db  # type: ignore[attr-defined]
    taken: list[int] = []
    take = db._acquire

    async def counted():
        taken.append(1)
        return await take()

    db._acquire = counted
    try:
        for _ in range(20):
            assert client.get("/api/bags/HOT", headers=dispatcher).status_code == 200
    finally:
        db._acquire = take
    assert taken == []


# --- revocations made outside this worker arrive within token_state_ttl_seconds ---------
@pytest.fixture()
def short_ttl_client(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    add_user(database_url, "dana", "dispatcher")
    settings = app_settings(database_url, tmp_path, token_state_ttl_seconds=0.5)
    with TestClient(create_app(settings)) as c:
        yield c


def wait_revoked(client: TestClient, headers: dict[str, str], timeout: float = 30) -> None:
    wait_until(lambda: not works(client, headers), timeout, "the token to stop working", 0.1)


def test_tracetrack_user_disable_revokes_running_apps_tokens(
    short_ttl_client: TestClient, database_url: str, tmp_path: Path
) -> None:
    h = auth(token(short_ttl_client, "dana"))
    assert works(short_ttl_client, h)
    exe = TRACETRACK
    env = {"DATABASE_URL": database_url, "TRACETRACK_VAR_DIR": str(tmp_path), "PATH": "/usr/bin"}
    done = subprocess.run(
        [exe, "user", "disable", "dana"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "disabled dana" in done.stdout
    wait_revoked(short_ttl_client, h)
    r = short_ttl_client.post("/api/auth/login", json={"username": "dana", "password": PASSWORD})
    assert r.status_code == 403
    missing = subprocess.run(
        [exe, "user", "disable", "ghost"], env=env, capture_output=True, text=True, timeout=120
    )
    assert missing.returncode == 1 and "no user named 'ghost'" in missing.stderr
    enabled = subprocess.run(
        [exe, "user", "enable", "dana"], env=env, capture_output=True, text=True, timeout=120
    )
    assert enabled.returncode == 0
    assert works(short_ttl_client, auth(token(short_ttl_client, "dana")))


def test_a_user_deleted_out_of_band_loses_their_token(short_ttl_client: TestClient) -> None:
    h = auth(token(short_ttl_client, "dana"))
    assert works(short_ttl_client, h)
    short_ttl_client.portal.call(  # type: ignore[union-attr]
        short_ttl_client.app.state.db.execute,  # type: ignore[attr-defined]
        "DELETE FROM users WHERE username = 'dana'",
    )
    wait_revoked(short_ttl_client, h)


def test_an_admin_cannot_lock_themselves_out(client: TestClient, admin: dict[str, str]) -> None:
    for r in (
        client.patch("/api/users/root", json={"disabled": True}, headers=admin),
        client.patch("/api/users/root", json={"role": "biller"}, headers=admin),
        client.delete("/api/users/root", headers=admin),
    ):
        assert r.status_code == 409 and "another admin" in r.json()["detail"]
    assert works(client, admin)
    assert client.patch("/api/users/root", json={"role": "admin"}, headers=admin).status_code == 200


def test_user_changes_take_json_types_strictly(client: TestClient, admin: dict[str, str]) -> None:
    for body in ({"disabled": 0}, {"disabled": "true"}, {"role": 1}):
        r = client.patch("/api/users/dana", json=body, headers=admin)
        assert r.status_code == 422, body
    assert works(client, auth(token(client, "dana")))
