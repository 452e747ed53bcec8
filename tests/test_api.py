"""The JSON API against a real PostgreSQL: auth, roles, every endpoint, bad input."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.support.appkit import add_user, app_settings, auth, token


def make_bags(
    client: TestClient, headers: dict[str, str], n_parents: int, children: int
) -> list[str]:
    bags = []
    for p in range(n_parents):
        bags.append({"qr_id": f"PAR{p:04d}", "bag_type": "parent", "location": "Hub"})
    r = client.post("/api/bags/bulk", json={"bags": bags}, headers=headers)
    assert r.status_code == 201, r.text
    kids = [
        {"qr_id": f"KID{p:04d}{c:02d}", "bag_type": "child", "parent_qr_id": f"PAR{p:04d}"}
        for p in range(n_parents)
        for c in range(children)
    ]
    if kids:
        r = client.post("/api/bags/bulk", json={"bags": kids}, headers=headers)
        assert r.status_code == 201, r.text
    return [b["qr_id"] for b in bags] + [k["qr_id"] for k in kids]


# --- auth and roles ------------------------------------------------------------------
def test_login_wrong_password_and_unknown_user_are_401(client: TestClient) -> None:
    for body in (
        {"username": "root", "password": "nope-nope"},
        {"username": "ghost", "password": "whatever1"},
    ):
        r = client.post("/api/auth/login", json=body)
        assert r.status_code == 401
        assert r.json()["detail"] == "wrong username or password"


def test_everything_but_login_health_metrics_needs_a_token(client: TestClient) -> None:
    for method, path in (
        ("get", "/api/bags/X1"),
        ("get", "/api/bags"),
        ("post", "/api/bags"),
        ("post", "/api/scans"),
        ("post", "/api/bills"),
        ("get", "/api/bills/B1"),
        ("post", "/api/users"),
        ("get", "/api/bags/X1/scans"),
        ("post", "/api/bags/bulk"),
    ):
        r = client.request(method, path)
        assert r.status_code == 401, (method, path, r.status_code)
        assert "bearer token" in r.json()["detail"]
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").json()["checks"]["database"] == "ok"


def test_bad_expired_and_forged_tokens_are_401(client: TestClient) -> None:
    assert client.get("/api/bags", headers=auth("garbage")).json()["detail"] == "invalid token"
    expired = jwt.encode(
        {"sub": "1", "role": "admin", "exp": int(time.time()) - 5},
        "test-secret-key-0123456789-abcdefghij",
        algorithm="HS256",
    )
    r = client.get("/api/bags", headers=auth(expired))
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    forged = jwt.encode(
        {"sub": "1", "role": "admin", "exp": int(time.time()) + 60},
        "another-key-that-is-long-enough-for-hs256",
        algorithm="HS256",
    )
    assert client.get("/api/bags", headers=auth(forged)).status_code == 401


def test_roles_are_enforced(
    client: TestClient, dispatcher: dict[str, str], biller: dict[str, str]
) -> None:
    r = client.post(
        "/api/users",
        json={"username": "eve", "password": "longenough", "role": "admin"},
        headers=dispatcher,
    )
    assert r.status_code == 403 and "needs one of admin" in r.json()["detail"]
    r = client.post("/api/bags", json={"qr_id": "B1", "bag_type": "parent"}, headers=biller)
    assert r.status_code == 403
    r = client.post("/api/bills", json={"bill_number": "BN1"}, headers=dispatcher)
    assert r.status_code == 403
    assert (
        client.post(
            "/api/bags", json={"qr_id": "B1", "bag_type": "parent"}, headers=dispatcher
        ).status_code
        == 201
    )
    assert client.post("/api/bills", json={"bill_number": "BN1"}, headers=biller).status_code == 201


def test_admin_creates_users_who_can_log_in(client: TestClient, admin: dict[str, str]) -> None:
    r = client.post(
        "/api/users",
        json={"username": "zoe", "password": "longenough", "role": "biller"},
        headers=admin,
    )
    assert r.status_code == 201 and r.json()["role"] == "biller"
    assert token(client, "zoe", "longenough")
    dup = client.post(
        "/api/users",
        json={"username": "zoe", "password": "longenough", "role": "biller"},
        headers=admin,
    )
    assert dup.status_code == 409 and "zoe" in dup.json()["detail"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"username": "ab", "password": "longenough", "role": "admin"}, "username"),
        ({"username": "abc", "password": "short", "role": "admin"}, "password"),
        ({"username": "abc", "password": "longenough", "role": "superuser"}, "role"),
        ({"username": "abc", "password": "longenough", "role": "admin", "x": 1}, "x"),
    ],
)
def test_bad_user_input_is_422_naming_the_field(
    client: TestClient, admin: dict[str, str], body: dict, field: str
) -> None:
    r = client.post("/api/users", json=body, headers=admin)
    assert r.status_code == 422
    assert any(field in err["loc"] for err in r.json()["detail"])


# --- bags ----------------------------------------------------------------------------
def test_create_and_get_bags(client: TestClient, dispatcher: dict[str, str]) -> None:
    r = client.post(
        "/api/bags",
        json={"qr_id": "P-1", "bag_type": "parent", "location": "Delhi"},
        headers=dispatcher,
    )
    assert r.status_code == 201 and r.json()["status"] == "created"
    r = client.post(
        "/api/bags",
        json={"qr_id": "C-1", "bag_type": "child", "parent_qr_id": "P-1"},
        headers=dispatcher,
    )
    assert r.status_code == 201 and r.json()["parent_qr_id"] == "P-1"
    got = client.get("/api/bags/C-1", headers=dispatcher)
    assert got.status_code == 200 and got.json()["parent_qr_id"] == "P-1"
    assert client.get("/api/bags/C-1", headers=dispatcher).json() == got.json()  # cached copy
    missing = client.get("/api/bags/NOPE", headers=dispatcher)
    assert missing.status_code == 404 and "NOPE" in missing.json()["detail"]


def test_duplicate_qr_ids_are_409_and_bulk_is_all_or_nothing(
    client: TestClient, dispatcher: dict[str, str]
) -> None:
    assert (
        client.post(
            "/api/bags", json={"qr_id": "DUP", "bag_type": "parent"}, headers=dispatcher
        ).status_code
        == 201
    )
    r = client.post("/api/bags", json={"qr_id": "DUP", "bag_type": "parent"}, headers=dispatcher)
    assert r.status_code == 409 and "DUP" in r.json()["detail"]
    r = client.post(
        "/api/bags/bulk",
        json={
            "bags": [
                {"qr_id": "NEW1", "bag_type": "parent"},
                {"qr_id": "DUP", "bag_type": "parent"},
            ]
        },
        headers=dispatcher,
    )
    assert r.status_code == 409 and "DUP" in r.json()["detail"]
    assert client.get("/api/bags/NEW1", headers=dispatcher).status_code == 404
    r = client.post(
        "/api/bags/bulk",
        json={"bags": [{"qr_id": "TWICE", "bag_type": "parent"}] * 2},
        headers=dispatcher,
    )
    assert r.status_code == 409 and "repeated" in r.json()["detail"]


@pytest.mark.parametrize(
    "body, needle",
    [
        (
            {"qr_id": "C9", "bag_type": "child", "parent_qr_id": "MISSING"},
            "parent bag not found: MISSING",
        ),
        ({"qr_id": "P9", "bag_type": "parent", "parent_qr_id": "P-X"}, "cannot have a parent"),
        ({"qr_id": "has space", "bag_type": "parent"}, "qr_id"),
        ({"qr_id": "P9", "bag_type": "box"}, "bag_type"),
        ({"qr_id": "P9", "bag_type": "parent", "status": "exploded"}, "status"),
        ({"bag_type": "parent"}, "qr_id"),
    ],
)
def test_bad_bag_input_is_422_naming_the_problem(
    client: TestClient, dispatcher: dict[str, str], body: dict, needle: str
) -> None:
    client.post("/api/bags", json={"qr_id": "P-X", "bag_type": "parent"}, headers=dispatcher)
    r = client.post("/api/bags", json=body, headers=dispatcher)
    assert r.status_code == 422, r.text
    assert needle in r.text


def test_bulk_limits_and_malformed_json(client: TestClient, dispatcher: dict[str, str]) -> None:
    too_many = {"bags": [{"qr_id": f"Q{i}", "bag_type": "parent"} for i in range(1001)]}
    r = client.post("/api/bags/bulk", json=too_many, headers=dispatcher)
    assert r.status_code == 422 and "bags" in r.text
    assert client.post("/api/bags/bulk", json={"bags": []}, headers=dispatcher).status_code == 422
    r = client.post(
        "/api/bags",
        content=b"{not json",
        headers={**dispatcher, "content-type": "application/json"},
    )
    assert r.status_code == 422 and "json" in r.text.lower()


def test_search_paginates_every_bag_once_in_order(
    client: TestClient, dispatcher: dict[str, str]
) -> None:
    all_ids = sorted(make_bags(client, dispatcher, n_parents=6, children=4))
    seen, cursor = [], None
    while True:
        params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/bags", params=params, headers=dispatcher).json()
        seen += [b["qr_id"] for b in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == all_ids


def test_search_by_prefix_status_and_type(client: TestClient, dispatcher: dict[str, str]) -> None:
    make_bags(client, dispatcher, n_parents=3, children=3)
    r = client.get("/api/bags", params={"q": "KID0001"}, headers=dispatcher).json()
    assert [b["qr_id"] for b in r["items"]] == ["KID000100", "KID000101", "KID000102"]
    r = client.get("/api/bags", params={"type": "parent"}, headers=dispatcher).json()
    assert [b["qr_id"] for b in r["items"]] == ["PAR0000", "PAR0001", "PAR0002"]
    client.post(
        "/api/scans",
        json={"qr_id": "KID000201", "location": "Pune", "status": "delivered"},
        headers=dispatcher,
    )
    r = client.get(
        "/api/bags", params={"status": "delivered", "q": "KID"}, headers=dispatcher
    ).json()
    assert [b["qr_id"] for b in r["items"]] == ["KID000201"]


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 501}, {"q": "bad prefix!"}, {"status": "nope"}, {"type": "box"}],
)
def test_search_rejects_bad_parameters(
    client: TestClient, dispatcher: dict[str, str], params: dict
) -> None:
    assert client.get("/api/bags", params=params, headers=dispatcher).status_code == 422


def test_search_rejects_a_forged_cursor(client: TestClient, dispatcher: dict[str, str]) -> None:
    r = client.get("/api/bags", params={"cursor": "%%%"}, headers=dispatcher)
    assert r.status_code == 400 and "cursor" in r.json()["detail"]


# --- scans ---------------------------------------------------------------------------
def test_scans_update_the_bag_and_list_newest_first(
    client: TestClient, dispatcher: dict[str, str]
) -> None:
    make_bags(client, dispatcher, n_parents=1, children=0)
    assert client.get("/api/bags/PAR0000", headers=dispatcher).json()["location"] == "Hub"
    for loc in ("A", "B", "C"):
        r = client.post(
            "/api/scans", json={"qr_id": "PAR0000", "location": loc}, headers=dispatcher
        )
        assert r.status_code == 201 and r.json()["username"] == "dana"
    # The cache must not serve the pre-scan copy.
    assert client.get("/api/bags/PAR0000", headers=dispatcher).json()["location"] == "C"
    page = client.get("/api/bags/PAR0000/scans", params={"limit": 2}, headers=dispatcher).json()
    assert [s["location"] for s in page["items"]] == ["C", "B"]
    rest = client.get(
        "/api/bags/PAR0000/scans", params={"cursor": page["next_cursor"]}, headers=dispatcher
    ).json()
    assert [s["location"] for s in rest["items"]] == ["A"] and rest["next_cursor"] is None


def test_scan_errors(client: TestClient, dispatcher: dict[str, str]) -> None:
    r = client.post("/api/scans", json={"qr_id": "GHOST", "location": "X"}, headers=dispatcher)
    assert r.status_code == 404 and "GHOST" in r.json()["detail"]
    r = client.post("/api/scans", json={"qr_id": "GHOST", "location": ""}, headers=dispatcher)
    assert r.status_code == 422 and "location" in r.text
    assert client.get("/api/bags/GHOST/scans", headers=dispatcher).status_code == 404
    assert (
        client.get("/api/bags/GHOST/scans", params={"cursor": "zz"}, headers=dispatcher).status_code
        == 400
    )


# --- bills ---------------------------------------------------------------------------
def test_bills_group_bags_and_mark_them_billed(
    client: TestClient, dispatcher: dict[str, str], biller: dict[str, str]
) -> None:
    make_bags(client, dispatcher, n_parents=2, children=0)
    client.get("/api/bags/PAR0000", headers=biller)  # warm the cache with the unbilled copy
    r = client.post(
        "/api/bills",
        json={"bill_number": "INV/2026/1", "bag_qr_ids": ["PAR0000", "PAR0001"]},
        headers=biller,
    )
    assert r.status_code == 201, r.text
    assert r.json()["bag_qr_ids"] == ["PAR0000", "PAR0001"] and r.json()["created_by"] == "bill"
    assert client.get("/api/bags/PAR0000", headers=biller).json()["status"] == "billed"
    # A bill number may contain "/" (the pattern allows it), so it reads back, raw or encoded.
    for path in ("/api/bills/INV/2026/1", "/api/bills/INV%2F2026%2F1"):
        got = client.get(path, headers=biller)
        assert got.status_code == 200 and got.json()["bill_number"] == "INV/2026/1", path
    assert client.get("/api/bills/INV-missing", headers=biller).status_code == 404


def test_bill_errors(
    client: TestClient, biller: dict[str, str], dispatcher: dict[str, str]
) -> None:
    make_bags(client, dispatcher, n_parents=1, children=0)
    assert (
        client.post(
            "/api/bills", json={"bill_number": "B-1", "bag_qr_ids": ["PAR0000"]}, headers=biller
        ).status_code
        == 201
    )
    assert client.get("/api/bills/B-1", headers=biller).json()["bag_qr_ids"] == ["PAR0000"]
    r = client.post("/api/bills", json={"bill_number": "B-1"}, headers=biller)
    assert r.status_code == 409 and "B-1" in r.json()["detail"]
    r = client.post(
        "/api/bills", json={"bill_number": "B-2", "bag_qr_ids": ["PAR0000", "NOPE"]}, headers=biller
    )
    assert r.status_code == 422 and "NOPE" in r.json()["detail"][0]["msg"]
    assert r.json()["detail"][0]["loc"] == ["body", "bag_qr_ids"]
    assert client.get("/api/bills/B-2", headers=biller).status_code == 404  # nothing half-made
    r = client.post("/api/bills", json={"bill_number": "bad number!"}, headers=biller)
    assert r.status_code == 422 and "bill_number" in r.text


def test_an_exhausted_connection_pool_is_a_503_not_a_500(database_url: str, tmp_path: Path) -> None:
    add_user(database_url, "dana", "dispatcher")
    settings = app_settings(
        database_url,
        tmp_path,
        db_pool_size_total=1,
        db_pool_max_overflow_total=0,
        db_pool_timeout_seconds=0.3,
    )
    app = create_app(settings)
    with TestClient(app) as c:
        h = auth(token(c, "dana"))
        pool = app.state.db.pool
        assert c.portal is not None
        held = c.portal.call(pool.acquire)  # the pool's only connection
        try:
            r = c.get("/api/bags", headers=h)
        finally:
            c.portal.call(pool.release, held)
        assert r.status_code == 503 and "retry" in r.json()["detail"]
        assert r.headers["retry-after"] == "1"
        assert c.get("/api/bags", headers=h).status_code == 200  # and recovers
