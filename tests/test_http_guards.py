"""The app's own HTTP layers: the request body limit (413 before parsing) and the
security headers, on the real app and database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.security_headers import HTML_CSP, OTHER_CSP, with_security_headers
from tests.support.appkit import app_settings

LIMIT = 1_048_576
SECRET = "hunter2-very-secret-password"


# --- body limit ------------------------------------------------------------------------
def test_a_20_mb_login_body_is_413_without_echoing_it(client: TestClient) -> None:
    body = b'{"username": "root", "password": "' + SECRET.encode() * 750_000 + b'"}'
    assert len(body) > 20 * 1024 * 1024
    r = client.post("/api/auth/login", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.json() == {"detail": f"request body exceeds the {LIMIT}-byte limit"}
    assert SECRET not in r.text and len(r.content) < 200


def test_a_streamed_body_without_length_is_cut_at_the_limit(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"username": "root", "password": "'
        for _ in range(64):  # 4 MiB in 64 KiB chunks, no Content-Length (chunked)
            yield b"x" * 65536
        yield b'"}'

    r = client.post(
        "/api/auth/login", content=chunks(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413 and "limit" in r.json()["detail"]


def test_a_body_under_the_limit_is_parsed(client: TestClient, dispatcher: dict[str, str]) -> None:
    bags = [
        {"qr_id": f"Q{i:06d}", "bag_type": "parent", "location": "L" * 128} for i in range(1000)
    ]
    r = client.post("/api/bags/bulk", json={"bags": bags}, headers=dispatcher)
    assert r.status_code == 201 and r.json() == {"created": 1000}


def test_the_analytics_login_form_is_limited_too(client: TestClient) -> None:
    r = client.post(
        "/analytics/login",
        content=b"username=root&password=" + b"x" * (LIMIT + 1),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 413


def test_the_limit_is_a_setting_and_413_is_counted(database_url: str, tmp_path: Path) -> None:
    settings = app_settings(database_url, tmp_path, max_request_body_bytes=2048)
    with TestClient(create_app(settings)) as c:
        ok = c.post("/api/auth/login", json={"username": "nobody", "password": "x" * 100})
        assert ok.status_code == 401
        r = c.post("/api/auth/login", json={"username": "nobody", "password": "x" * 3000})
        assert r.status_code == 413 and "2048-byte" in r.json()["detail"]
        metrics = c.get("/metrics").text
    assert any(
        line.startswith("tracetrack_http_requests_total{") and 'status="413"' in line
        for line in metrics.splitlines()
    ), metrics


# --- security headers ---------------------------------------------------------------------
def test_api_answers_carry_nosniff_no_store_and_a_strict_csp(
    client: TestClient, dispatcher: dict[str, str]
) -> None:
    for r in (
        client.get("/api/bags", headers=dispatcher),
        client.get("/api/bags/NOPE", headers=dispatcher),
        client.get("/api/bags"),  # 401
        client.post("/api/auth/login", json={}),  # 422
    ):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["content-security-policy"] == OTHER_CSP
        assert r.headers["x-frame-options"] == "DENY"


def test_analytics_pages_cannot_be_framed_and_send_no_referrer(client: TestClient) -> None:
    r = client.get("/analytics/login")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["content-security-policy"] == HTML_CSP
    assert "frame-ancestors 'none'" in HTML_CSP
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["x-content-type-options"] == "nosniff"


def test_a_route_keeps_its_own_cache_control_and_policy() -> None:
    own = [(b"cache-control", b"private, max-age=5"), (b"content-security-policy", b"x")]
    headers = dict(with_security_headers(list(own)))
    assert headers[b"cache-control"] == b"private, max-age=5"
    assert headers[b"content-security-policy"] == b"x"
    assert headers[b"x-content-type-options"] == b"nosniff"


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_api_docs_pages_are_off_unless_enabled(
    client: TestClient, database_url: str, tmp_path: Path, path: str
) -> None:
    assert client.get(path).status_code == 404
    assert client.get("/openapi.json").status_code == 200
    with TestClient(create_app(app_settings(database_url, tmp_path, api_docs=True))) as c:
        assert c.get(path).status_code == 200


# --- 405 names every method the resource has -----------------------------------------------
@pytest.mark.parametrize(
    "path, allow",
    [
        ("/api/bags", "GET, HEAD, POST"),  # GET and POST are separate routes
        ("/api/bags/bulk", "POST"),  # the literal path, not /api/bags/{qr_id}
        ("/analytics/login", "GET, HEAD, POST"),
        ("/api/users/dana", "DELETE, PATCH"),
    ],
)
def test_405_lists_every_method_of_the_resource(client: TestClient, path: str, allow: str) -> None:
    r = client.request("PUT", path)
    assert r.status_code == 405 and r.headers["allow"] == allow


def test_a_body_that_is_not_utf8_is_a_documented_400(
    client: TestClient, dispatcher: dict[str, str]
) -> None:
    r = client.post(
        "/api/bags",
        content=b'{"qr_id": "\xc3\x28"}',
        headers={**dispatcher, "content-type": "application/json"},
    )
    assert r.status_code == 400 and "body" in r.json()["detail"]
    documented = client.get("/openapi.json").json()["paths"]["/api/bags"]["post"]["responses"]
    assert "400" in documented and "413" in documented
