"""Issue 17: `Idempotency-Key` on every POST that writes (app/idempotency.py), against the
real app and a real PostgreSQL: a retry stores nothing new and gets the first answer."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from app import idempotency
from app.main import create_app
from tests.support.appkit import app_settings

# The domain writes: every POST under these takes a key, including ones added later.
# Others do not, and why: logging in and out store no domain data (logout is idempotent
# by nature); user administration and IP blocks are an admin's one-off actions whose
# retry gets a 409 naming the duplicate, and a key would make a user creation's request
# fingerprint a fast hash of the password.
DOMAIN_PREFIXES = ("/api/bags", "/api/scans", "/api/bills")


def key() -> dict[str, str]:
    return {idempotency.HEADER: str(uuid.uuid4())}


def rows(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    conn = psycopg2.connect(database_url.replace("+psycopg2", ""))
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()


def count(database_url: str, table: str) -> int:
    return int(rows(database_url, f"SELECT count(*) FROM {table}")[0][0])


def scan(client: TestClient, headers: dict[str, str], location: str) -> Any:
    return client.post("/api/scans", json={"qr_id": "P1", "location": location}, headers=headers)


def _bag(client: TestClient, h: dict[str, str], qr: str = "P1") -> None:
    r = client.post("/api/bags", json={"qr_id": qr, "bag_type": "parent"}, headers=h)
    assert r.status_code == 201, r.text


def test_every_writing_post_takes_an_idempotency_key(database_url: str, tmp_path: Path) -> None:
    app = create_app(app_settings(database_url, tmp_path))
    # Included routers appear as one entry each in newer FastAPI: look inside them.
    routes = [
        inner
        for r in app.routes
        for inner in (r.original_router.routes if hasattr(r, "original_router") else [r])
    ]
    posts = [
        r
        for r in routes
        if isinstance(r, APIRoute)
        and "POST" in (r.methods or ())
        and r.path.startswith(DOMAIN_PREFIXES)
    ]
    assert {r.path for r in posts} >= {"/api/bags", "/api/bags/bulk", "/api/scans", "/api/bills"}

    def calls(dep: Any) -> set[Any]:
        return {dep.call} | {c for d in dep.dependencies for c in calls(d)}

    for route in posts:
        assert idempotency.idempotency in calls(route.dependant), route.path


def test_a_retried_scan_is_stored_once_and_gets_the_first_answer(
    client: TestClient, dispatcher: dict[str, str], database_url: str
) -> None:
    _bag(client, dispatcher)
    h = {**dispatcher, **key()}
    scan = {"qr_id": "P1", "location": "Hub"}
    first = client.post("/api/scans", json=scan, headers=h)
    assert first.status_code == 201 and idempotency.REPLAYED_HEADER not in first.headers
    again = client.post("/api/scans", json={"location": "Hub", "qr_id": "P1"}, headers=h)
    assert again.status_code == 201
    assert again.headers[idempotency.REPLAYED_HEADER] == "true"
    assert again.json() == first.json()
    assert count(database_url, "scans") == 1
    # Without a key (or with a new one) it is a new scan.
    assert client.post("/api/scans", json=scan, headers=dispatcher).status_code == 201
    assert client.post("/api/scans", json=scan, headers={**dispatcher, **key()}).status_code == 201
    assert count(database_url, "scans") == 3


def test_the_same_key_with_another_body_is_422_and_stores_nothing(
    client: TestClient, dispatcher: dict[str, str], database_url: str
) -> None:
    _bag(client, dispatcher)
    h = {**dispatcher, **key()}
    assert scan(client, h, "A").status_code == 201
    r = scan(client, h, "B")
    assert r.status_code == 422
    (problem,) = r.json()["detail"]
    assert problem["loc"] == ["header", "Idempotency-Key"]
    assert "already used with a different request" in problem["msg"]
    assert count(database_url, "scans") == 1
    # Another path with the same key is another request too.
    r = client.post("/api/bags", json={"qr_id": "P2", "bag_type": "parent"}, headers=h)
    assert r.status_code == 422


def test_bags_bulk_and_bills_replay_instead_of_409(
    client: TestClient, dispatcher: dict[str, str], biller: dict[str, str], database_url: str
) -> None:
    h = {**dispatcher, **key()}
    bag = {"qr_id": "P9", "bag_type": "parent", "location": "Dock"}
    first = client.post("/api/bags", json=bag, headers=h)
    again = client.post("/api/bags", json=bag, headers=h)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json() and again.headers[idempotency.REPLAYED_HEADER] == "true"
    assert client.post("/api/bags", json=bag, headers=dispatcher).status_code == 409  # no key

    hb = {**dispatcher, **key()}
    bulk = {"bags": [{"qr_id": f"K{i}", "bag_type": "parent"} for i in range(5)]}
    assert client.post("/api/bags/bulk", json=bulk, headers=hb).json() == {"created": 5}
    again = client.post("/api/bags/bulk", json=bulk, headers=hb)
    assert again.status_code == 201 and again.json() == {"created": 5}
    assert count(database_url, "bags") == 6

    hbill = {**biller, **key()}
    bill = {"bill_number": "INV/1", "bag_qr_ids": ["K0", "K1"]}
    first = client.post("/api/bills", json=bill, headers=hbill)
    again = client.post("/api/bills", json=bill, headers=hbill)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert count(database_url, "bills") == 1 and count(database_url, "bill_bags") == 2


def test_a_failed_request_stores_nothing_so_its_retry_runs(
    client: TestClient, dispatcher: dict[str, str], database_url: str
) -> None:
    h = {**dispatcher, **key()}
    scan = {"qr_id": "LATER", "location": "Hub"}
    assert client.post("/api/scans", json=scan, headers=h).status_code == 404
    assert count(database_url, "idempotency_keys") == 0
    _bag(client, dispatcher, "LATER")
    r = client.post("/api/scans", json=scan, headers=h)
    assert r.status_code == 201 and idempotency.REPLAYED_HEADER not in r.headers


def test_keys_are_per_user(
    client: TestClient, dispatcher: dict[str, str], admin: dict[str, str], database_url: str
) -> None:
    _bag(client, dispatcher)
    k = key()
    scan = {"qr_id": "P1", "location": "Hub"}
    a = client.post("/api/scans", json=scan, headers={**dispatcher, **k})
    b = client.post("/api/scans", json=scan, headers={**admin, **k})
    assert (a.status_code, b.status_code) == (201, 201)
    assert a.json()["id"] != b.json()["id"] and b.json()["username"] == "root"
    assert count(database_url, "scans") == 2


@pytest.mark.parametrize("bad", ["", "x" * 256, "tab\there", "ключ"])
def test_a_malformed_key_is_422(client: TestClient, dispatcher: dict[str, str], bad: str) -> None:
    headers = {**dispatcher, idempotency.HEADER: bad}
    r = client.post(
        "/api/bags",
        json={"qr_id": "P1", "bag_type": "parent"},
        headers={k: v.encode() if k == idempotency.HEADER else v for k, v in headers.items()},
    )
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]


def test_concurrent_requests_with_one_key_store_one_row(
    client: TestClient, dispatcher: dict[str, str], database_url: str
) -> None:
    _bag(client, dispatcher)
    h = {**dispatcher, **key()}
    scan = {"qr_id": "P1", "location": "Hub"}
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda _: client.post("/api/scans", json=scan, headers=h), range(8))
        )
    assert [a.status_code for a in answers] == [201] * 8
    assert len({a.json()["id"] for a in answers}) == 1
    assert sum(idempotency.REPLAYED_HEADER in a.headers for a in answers) == 7
    assert count(database_url, "scans") == 1


def test_an_expired_key_is_a_new_request_and_the_purge_removes_old_keys(
    client: TestClient, dispatcher: dict[str, str], database_url: str
) -> None:
    _bag(client, dispatcher)
    h = {**dispatcher, **key()}
    assert scan(client, h, "A").status_code == 201
    other = {**dispatcher, **key()}
    assert scan(client, other, "C").status_code == 201
    conn = psycopg2.connect(database_url.replace("+psycopg2", ""))
    with conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = %s",
            (h[idempotency.HEADER],),
        )
    conn.close()
    r = scan(client, h, "B")
    assert r.status_code == 201 and idempotency.REPLAYED_HEADER not in r.headers
    assert count(database_url, "scans") == 3

    conn = psycopg2.connect(database_url.replace("+psycopg2", ""))
    with conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE idempotency_keys SET created_at = now() - interval '2 days' WHERE key = %s",
            (other[idempotency.HEADER],),
        )
    conn.close()
    purged = client.portal.call(  # type: ignore[union-attr]
        idempotency.purge_expired,
        client.app.state.db,  # type: ignore[attr-defined]
    )
    assert purged == 1
    assert [r[0] for r in rows(database_url, "SELECT key FROM idempotency_keys")] == [
        h[idempotency.HEADER]
    ]
