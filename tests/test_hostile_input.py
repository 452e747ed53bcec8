"""Bad input is a clear 4xx naming the problem, never a 500 (a 500 pages on-call).

Each case here was a 500, a leak or a silently altered value found by fuzzing main.
"""

from __future__ import annotations

import base64
import logging

import pytest
from fastapi.testclient import TestClient

from tests.support.appkit import add_user, token

SECRET = "hunter2-very-secret-password"


def post_raw(client: TestClient, path: str, body: bytes, headers: dict[str, str] | None = None):
    return client.post(
        path, content=body, headers={**(headers or {}), "content-type": "application/json"}
    )


def assert_422_at(r, field: str) -> None:
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert any(field in err["loc"] for err in detail), detail
    for err in detail:
        assert set(err) == {"loc", "msg", "type"}, err  # the documented shape, no input echoed


# --- NUL bytes and unpaired surrogates never reach PostgreSQL --------------------------
def test_nul_in_login_username_is_422_not_500(client: TestClient) -> None:
    r = client.post("/api/auth/login", json={"username": "root\x00", "password": "whatever"})
    assert_422_at(r, "username")
    assert "NUL" in r.text


def test_nul_in_the_analytics_login_form_is_refused_with_a_reason(client: TestClient) -> None:
    r = client.post(
        "/analytics/login",
        content=b"username=root%00&password=x",
        headers={"content-type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert r.status_code == 401 and "NUL" in r.text


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("/api/bags", {"qr_id": "P1", "bag_type": "parent", "location": "Hu\x00b"}, "location"),
        ("/api/scans", {"qr_id": "P0", "location": "\x00"}, "location"),
        (
            "/api/bags/bulk",
            {"bags": [{"qr_id": "P2", "bag_type": "parent", "location": "a\x00"}]},
            "location",
        ),
        ("/api/bills", {"bill_number": "B\x00"}, "bill_number"),
    ],
)
def test_nul_anywhere_a_string_is_stored_is_422(
    client: TestClient, admin: dict[str, str], path: str, body: dict, field: str
) -> None:
    client.post("/api/bags", json={"qr_id": "P0", "bag_type": "parent"}, headers=admin)
    assert_422_at(client.post(path, json=body, headers=admin), field)


@pytest.mark.parametrize(
    "body, field",
    [
        (b'{"username": "root", "password": "\\ud800"}', "password"),
        (b'{"username": "\\udfff", "password": "x"}', "username"),
        (b'{"username": "root", "password": NaN}', "password"),
        (b'{"username": Infinity, "password": "x"}', "username"),
    ],
)
def test_unpaired_surrogates_and_nan_are_422_with_a_json_body(
    client: TestClient, body: bytes, field: str
) -> None:
    assert_422_at(post_raw(client, "/api/auth/login", body), field)


def test_a_surrogate_or_nan_in_a_stored_field_is_422(
    client: TestClient, dispatcher: dict[str, str]
) -> None:
    client.post("/api/bags", json={"qr_id": "P0", "bag_type": "parent"}, headers=dispatcher)
    for body in (
        b'{"qr_id": "P0", "location": "\\ud83d"}',
        b'{"qr_id": "P0", "location": NaN}',
    ):
        assert_422_at(post_raw(client, "/api/scans", body, dispatcher), "location")


def test_a_surrogate_in_an_unknown_key_is_422(client: TestClient, admin: dict[str, str]) -> None:
    r = post_raw(client, "/api/bills", b'{"bill_number": "B1", "\\ud800x": 1}', admin)
    assert r.status_code == 422
    assert_422_at(r, "body")  # rejected while parsing, before any field is named


# --- validation errors echo neither secrets nor large inputs ---------------------------
def test_validation_errors_never_echo_the_password(client: TestClient) -> None:
    for body in (
        {"username": "root", "password": SECRET * 20},  # too long
        {"username": ["root"], "password": SECRET},  # wrong type elsewhere
        {"username": "root", "password": SECRET, "extra": SECRET},
    ):
        r = client.post("/api/auth/login", json=body)
        assert r.status_code == 422
        assert SECRET not in r.text


def test_a_huge_invalid_body_gets_a_small_answer(
    client: TestClient, dispatcher: dict[str, str]
) -> None:
    bags = [{"qr_id": f"bad id {i}", "bag_type": "box"} for i in range(1000)]
    r = client.post("/api/bags/bulk", json={"bags": bags}, headers=dispatcher)
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert len(detail) == 21 and detail[-1]["type"] == "too_many_errors"
    assert "1980 more problem(s)" in detail[-1]["msg"]
    assert len(r.content) < 8000


def test_a_rejected_password_reaches_no_log_line(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    raw = b'{"username": "root", "password": "' + SECRET.encode() + b'\\udc80"}'
    r = post_raw(client, "/api/auth/login", raw)
    assert r.status_code == 422
    assert SECRET not in caplog.text


# --- passwords are kept exactly as typed ------------------------------------------------
def test_passwords_are_never_stripped(client: TestClient, admin: dict[str, str]) -> None:
    r = client.post(
        "/api/users",
        json={"username": "spacey", "password": "  pass word  ", "role": "biller"},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    good = client.post("/api/auth/login", json={"username": "spacey", "password": "  pass word  "})
    assert good.status_code == 200
    for wrong in ("pass word", "  pass word", "pass word  "):
        r = client.post("/api/auth/login", json={"username": "spacey", "password": wrong})
        assert r.status_code == 401, wrong


def test_a_password_with_trailing_spaces_logs_in_only_as_typed(
    client: TestClient, database_url: str
) -> None:
    add_user(database_url, "trail", "biller", password="secret-pw   ")
    assert token(client, "trail", "secret-pw   ")
    r = client.post("/api/auth/login", json={"username": "trail", "password": "secret-pw"})
    assert r.status_code == 401


# --- forged cursors are 400, never a DataError --------------------------------------------
def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        _b64(b"\x00"),
        _b64(b"AB\x00CD"),
        _b64("é".encode()),
        _b64(b"x" * 100),
        _b64(b"\xff\xfe"),
        "%%%",
    ],
)
def test_forged_bag_cursors_are_400(
    client: TestClient, dispatcher: dict[str, str], cursor: str
) -> None:
    r = client.get("/api/bags", params={"cursor": cursor}, headers=dispatcher)
    assert r.status_code == 400 and "cursor" in r.json()["detail"]


@pytest.mark.parametrize(
    "payload",
    [
        b"2026-01-01T00:00:00+00:00|99999999999999999999",  # beyond BIGINT
        b"2026-01-01T00:00:00+00:00|-1",
        b"2026-01-01T00:00:00+00:00|0",
        b"2026-01-01T00:00:00|5",  # no time zone
        b"0001-01-01T00:00:00+14:00|5",  # out of range once in UTC
        b"9999-12-31T23:59:59-14:00|5",
        b"not a time|5",
        b"2026-01-01T00:00:00+00:00|\xd9\xa3",  # a non-ASCII digit
        b"2026-01-01T00:00:00+00:00",
        b"\x00|1",
    ],
)
def test_forged_scan_cursors_are_400(
    client: TestClient, dispatcher: dict[str, str], payload: bytes
) -> None:
    client.post("/api/bags", json={"qr_id": "P0", "bag_type": "parent"}, headers=dispatcher)
    r = client.get("/api/bags/P0/scans", params={"cursor": _b64(payload)}, headers=dispatcher)
    assert r.status_code == 400 and "cursor" in r.json()["detail"]


def test_cursors_the_api_wrote_still_work(client: TestClient, dispatcher: dict[str, str]) -> None:
    client.post("/api/bags", json={"qr_id": "P0", "bag_type": "parent"}, headers=dispatcher)
    for _ in range(3):
        client.post("/api/scans", json={"qr_id": "P0", "location": "Hub"}, headers=dispatcher)
    first = client.get("/api/bags/P0/scans", params={"limit": 2}, headers=dispatcher).json()
    rest = client.get(
        "/api/bags/P0/scans", params={"cursor": first["next_cursor"]}, headers=dispatcher
    ).json()
    assert len(first["items"]) == 2 and len(rest["items"]) == 1


# --- a lost race is a 409 without database internals ------------------------------------
def test_an_integrity_error_is_409_without_sql_details(client: TestClient) -> None:
    async def insert_twice() -> None:
        async with client.app.state.db.transaction() as db:  # type: ignore[attr-defined]
            for _ in range(2):
                await db.execute(
                    "INSERT INTO users (username, password_hash, role) "
                    "VALUES ('twin', 'x', 'biller')"
                )

    client.app.add_api_route("/test/race", insert_twice, methods=["POST"])  # type: ignore[attr-defined]
    r = client.post("/test/race")
    assert r.status_code == 409
    body = r.text.lower()
    for internal in ("users_username_key", "detail:", "key (", "insert", "duplicate key"):
        assert internal not in body, r.text
    assert "retry" in r.json()["detail"]
