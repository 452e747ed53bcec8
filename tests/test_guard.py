"""The security guard in the real app (real PostgreSQL, real redis-server where shared
state matters): identity, lockouts, rate limits, blocks, suspicious scans, injection
signatures, events. Timing is polled against a deadline, never slept for a fixed time."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from app.guard import Guard
from app.guard.blocks import active_blocks
from app.main import create_app
from tests.support.appkit import PASSWORD, add_user, app_settings, auth, start_app_process, token
from tooling.procs import TRACETRACK, ManagedProcess, start_redis, wait_until

ATTACKER = ("203.0.113.66", 40000)
OFFICE = ("198.51.100.10", 40000)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Delta:
    """A counter's increase since construction (the registry is the process's)."""

    def __init__(self, name: str, **labels: str) -> None:
        self.name, self.labels = name, labels
        self.start = metric(name, **labels)

    def __call__(self) -> float:
        return metric(self.name, **self.labels) - self.start


def poll(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """`wait_until` at the pace these checks were written for (some log in each time)."""
    return wait_until(check, timeout, what, interval=0.1)


@pytest.fixture()
def users(database_url: str) -> str:
    for name, role in (("root", "admin"), ("dana", "dispatcher"), ("bill", "biller")):
        add_user(database_url, name, role)
    return database_url


def make_client(
    database_url: str, tmp_path: Path, client: tuple[str, int] = OFFICE, **overrides: Any
) -> TestClient:
    app = create_app(app_settings(database_url, tmp_path, **overrides))
    return TestClient(app, client=client)


def beside(c: TestClient, client: tuple[str, int]) -> TestClient:
    """Another client address on the same running app: it shares `c`'s event loop, where
    the app's connection pools live (asyncpg and Redis connections belong to one loop)."""
    other = TestClient(c.app, client=client)
    other.portal = c.portal
    return other


def guard(c: TestClient) -> Guard:
    app: Any = c.app  # TestClient types it as a bare ASGI app
    return app.state.guard


def login(c: TestClient | httpx.Client, username: str, password: str, **kw: Any) -> httpx.Response:
    return c.post("/api/auth/login", json={"username": username, "password": password}, **kw)


def events(c: TestClient, kind: str | None = None) -> list[dict[str, Any]]:
    guard(c).events.flush()
    log = Path(c.app.state.settings.resolved_var_dir()) / "log" / "security-events.jsonl"  # type: ignore[attr-defined]
    if not log.exists():
        return []
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    return [r for r in rows if kind is None or r["kind"] == kind]


# --- failed logins and lockout -------------------------------------------------------


def test_brute_force_locks_the_account_then_the_lock_expires(users: str, tmp_path: Path) -> None:
    failures = Delta("tracetrack_login_failures_total", reason="bad_password")
    lockouts = Delta("tracetrack_account_lockouts_total", scope="account")
    refused = Delta("tracetrack_login_failures_total", reason="locked_out")
    with make_client(
        users, tmp_path, client=ATTACKER, login_max_failures_per_account=5, lockout_base_seconds=2
    ) as c:
        answers = [login(c, "dana", f"guess-{i}").status_code for i in range(5)]
        assert answers == [401, 401, 401, 401, 429]
        r = login(c, "dana", PASSWORD)  # the right password, while locked
        assert r.status_code == 429
        assert int(r.headers["Retry-After"]) >= 1
        assert "too many failed logins for this account" in r.json()["detail"]
        assert failures() == 5 and lockouts() == 1 and refused() == 1
        # The lock expires by itself: the right password works again.
        poll(lambda: login(c, "dana", PASSWORD).status_code == 200, 30, "the lock to expire")
        # Other accounts were never locked by it.
        assert login(c, "bill", PASSWORD).status_code == 200
        kinds = {e["kind"] for e in events(c)}
        assert {"login_failed", "account_locked", "login_refused_locked"} <= kinds
        for e in events(c):
            assert PASSWORD not in json.dumps(e) and "guess-" not in json.dumps(e)


def test_lockouts_in_a_row_last_longer(users: str, tmp_path: Path) -> None:
    with make_client(
        users, tmp_path, login_max_failures_per_account=2, lockout_base_seconds=1
    ) as c:
        login(c, "dana", "x-1")
        first = login(c, "dana", "x-2")
        assert first.status_code == 429
        poll(lambda: login(c, "dana", "x-3").status_code == 401, 30, "the first lock to expire")
        second = login(c, "dana", "x-4")
        assert second.status_code == 429
        assert int(second.headers["Retry-After"]) > int(first.headers["Retry-After"])


def test_credential_stuffing_from_one_ip_locks_that_ip(users: str, tmp_path: Path) -> None:
    ip_lockouts = Delta("tracetrack_account_lockouts_total", scope="client_ip")
    unknown = Delta("tracetrack_login_failures_total", reason="unknown_user")
    settings = {"login_max_failures_per_ip": 8, "login_max_failures_per_account": 5}
    with make_client(users, tmp_path, client=ATTACKER, **settings) as attacker:
        answers = [login(attacker, f"user{i}", "Password1").status_code for i in range(8)]
        assert answers[:7] == [401] * 7 and answers[7] == 429
        r = login(attacker, "dana", PASSWORD)  # even a right password, from that IP
        assert r.status_code == 429 and "your address" in r.json()["detail"]
        assert ip_lockouts() == 1 and unknown() == 8
        # Another client logs in to the same account at once (shared counters, same app).
        office = beside(attacker, OFFICE)
        assert login(office, "dana", PASSWORD).status_code == 200


def test_success_resets_the_account_failures(users: str, tmp_path: Path) -> None:
    with make_client(users, tmp_path, login_max_failures_per_account=3) as c:
        for _ in range(2):
            assert login(c, "dana", "typo-typo").status_code == 401
        assert login(c, "dana", PASSWORD).status_code == 200
        for _ in range(2):
            assert login(c, "dana", "typo-typo").status_code == 401
        assert login(c, "dana", PASSWORD).status_code == 200


def test_unlock_through_the_api(users: str, tmp_path: Path) -> None:
    with make_client(
        users, tmp_path, client=ATTACKER, login_max_failures_per_account=2, lockout_base_seconds=600
    ) as c:
        admin = auth(token(c, "root"))
        login(c, "dana", "nope-1")
        assert login(c, "dana", "nope-2").status_code == 429
        r = c.post("/api/security/unlock", json={"username": "dana"}, headers=admin)
        assert r.status_code == 200 and r.json()["was_locked"] is True
        assert login(c, "dana", PASSWORD).status_code == 200
        assert c.post("/api/security/unlock", json={}, headers=admin).status_code == 422
        dana = auth(token(c, "dana"))
        r = c.post("/api/security/unlock", json={"username": "dana"}, headers=dana)
        assert r.status_code == 403


# --- client identity -----------------------------------------------------------------


def test_forged_forwarded_for_changes_nothing_with_zero_trusted_hops(
    users: str, tmp_path: Path
) -> None:
    with make_client(
        users,
        tmp_path,
        client=ATTACKER,
        login_max_failures_per_ip=3,
        login_max_failures_per_account=50,
    ) as c:
        for i in range(3):
            forged = {"X-Forwarded-For": f"10.9.8.{i}"}
            login(c, f"who{i}", "Password1", headers=forged)
        # Every forged address was the same client: the attacker's IP is locked.
        r = login(c, "dana", PASSWORD, headers={"X-Forwarded-For": "10.9.8.200"})
        assert r.status_code == 429
        assert {e["client_ip"] for e in events(c, "login_failed")} == {ATTACKER[0]}


def test_the_served_app_ignores_forged_forwarded_for(users: str, tmp_path: Path) -> None:
    """Over a real socket from loopback: uvicorn must not rewrite the client either."""
    proc, port = start_app_process(
        tmp_path,
        users,
        env={"LOGIN_MAX_FAILURES_PER_IP": "3", "LOGIN_MAX_FAILURES_PER_ACCOUNT": "50"},
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
            for i in range(3):
                forged = {"X-Forwarded-For": f"10.9.8.{i}"}
                assert login(c, f"who{i}", "Password1", headers=forged).status_code in (401, 429)
            r = login(c, "dana", PASSWORD, headers={"X-Forwarded-For": "10.9.8.200"})
            assert r.status_code == 429 and "your address" in r.json()["detail"]
    finally:
        proc.stop()


def test_trusted_proxy_hops_take_the_address_the_proxy_saw(users: str, tmp_path: Path) -> None:
    proxy = ("10.0.0.2", 5555)
    with make_client(users, tmp_path, client=proxy, trusted_proxy_hops=1) as c:
        # The client wrote "1.1.1.1" itself; the proxy appended what it saw.
        login(c, "ghost", "Password1", headers={"X-Forwarded-For": "1.1.1.1, 192.0.2.44"})
        # No header (a request that bypassed the proxy): the socket's peer.
        login(c, "ghost", "Password1")
        assert {e["client_ip"] for e in events(c, "login_failed")} == {"192.0.2.44", proxy[0]}


def test_a_forwarded_address_no_proxy_writes_is_not_the_client(users: str, tmp_path: Path) -> None:
    """A zone of any length made a 108-character "address" that PostgreSQL refused,
    losing the batch of security events it was in."""
    proxy = ("10.0.0.2", 5555)
    with make_client(users, tmp_path, client=proxy, trusted_proxy_hops=1) as c:
        for forwarded in ("fe80::1%" + "a" * 100, "garbage", "1.2.3.4:80", ","):
            login(c, "ghost", "Password1", headers={"X-Forwarded-For": forwarded})
        assert {e["client_ip"] for e in events(c, "login_failed")} == {proxy[0]}
        admin = auth(token(beside(c, OFFICE), "root"))
        r = c.get("/analytics/api/security", params={"since": "1h"}, headers=admin)
        stored = [e for e in r.json()["events"] if e["kind"] == "login_failed"]
        assert sum(e["count"] for e in stored) == 4, stored


# --- rate limits ---------------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after_and_ratelimit_headers(
    users: str, tmp_path: Path
) -> None:
    limited = Delta("tracetrack_rate_limited_total", route_class="reads")
    with make_client(users, tmp_path, rate_limit_reads="5/minute") as c:
        dana = auth(token(c, "dana"))
        answers = [c.get("/api/bags/NOPE1", headers=dana).status_code for _ in range(7)]
        assert answers == [404] * 5 + [429] * 2
        r = c.get("/api/bags/NOPE1", headers=dana)
        assert r.status_code == 429
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        assert r.headers["RateLimit-Policy"] == '"reads";q=5;w=60'
        assert r.headers["RateLimit"].startswith('"reads";r=0;t=')
        assert "rate limit for reads" in r.json()["detail"]
        assert limited() == 3
        # Another user has a budget of their own; probes and scrapes are never limited.
        bill = auth(token(c, "bill"))
        assert c.get("/api/bags/NOPE1", headers=bill).status_code == 404
        assert all(c.get("/healthz").status_code == 200 for _ in range(10))
        assert events(c, "rate_limited")


def test_forged_tokens_spend_the_ip_budget(users: str, tmp_path: Path) -> None:
    with make_client(users, tmp_path, client=ATTACKER, rate_limit_reads="4/minute") as c:
        answers = [
            c.get("/api/bags", headers=auth(f"forged.token.{i}")).status_code for i in range(6)
        ]
        assert answers == [401] * 4 + [429] * 2


def test_limits_are_shared_by_two_app_processes(users: str, tmp_path: Path, redis_url: str) -> None:
    env = {"REDIS_URL": redis_url, "RATE_LIMIT_READS": "12/minute"}
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    procs = [start_app_process(tmp_path / name, users, env=env) for name in ("a", "b")]
    try:
        tok = token(httpx.Client(base_url=f"http://127.0.0.1:{procs[0][1]}"), "dana")
        answers = []
        for i in range(20):  # alternate between the two processes
            port = procs[i % 2][1]
            r = httpx.get(f"http://127.0.0.1:{port}/api/bags", headers=auth(tok), timeout=10)
            answers.append(r.status_code)
        assert answers.count(200) == 12, answers
        assert answers[12:] == [429] * 8
    finally:
        for proc, _port in procs:
            proc.stop()


def test_limits_are_shared_by_the_workers_of_one_app(
    users: str, tmp_path: Path, redis_url: str
) -> None:
    env = {"REDIS_URL": redis_url, "RATE_LIMIT_READS": "10/minute"}
    proc, port = start_app_process(tmp_path, users, workers=2, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        tok = token(httpx.Client(base_url=base), "dana")
        # A new connection each time: the kernel hands them to either worker. Counted per
        # worker, 40 requests would get up to 20 through; shared, exactly 10.
        answers = [
            httpx.get(f"{base}/api/bags", headers=auth(tok), timeout=10).status_code
            for _ in range(40)
        ]
        assert answers.count(200) == 10 and answers.count(429) == 30, answers
    finally:
        proc.stop()


def test_limits_still_hold_when_redis_stops(
    users: str, tmp_path: Path, redis_server: tuple[ManagedProcess, int]
) -> None:
    proc, port = redis_server
    with make_client(
        users,
        tmp_path,
        redis_url=f"redis://127.0.0.1:{port}/0",
        rate_limit_reads="5/minute",
        trusted_proxy_hops=1,
    ) as c:
        dana = auth(token(c, "dana"))
        assert [c.get("/api/bags", headers=dana).status_code for _ in range(3)] == [200] * 3
        proc.stop()
        # Counting goes on in this process's memory: the budget is spent within 5 more.
        answers = [c.get("/api/bags", headers=dana).status_code for _ in range(8)]
        assert 429 in answers and 500 not in answers and 503 not in answers
        assert answers[-1] == 429
        # The failed-login counters fall back as well.
        assert login(c, "bill", "not-it-1").status_code == 401
        # Redis back on the same port: the guard probes it and counts there again.
        again, _ = start_redis(tmp_path / "redis-again", port=port)
        try:
            clients = iter(range(1, 250))

            def back_on_redis() -> bool:
                # A new client (the app trusts one proxy hop here): its hit reaches storage.
                c.get("/api/bags", headers={"X-Forwarded-For": f"192.0.2.{next(clients)}"})
                return guard(c).ashared.backend_name == "redis"

            poll(back_on_redis, 30, "the rate limits to count in Redis again")
            assert c.get("/api/bags", headers=auth(token(c, "bill"))).status_code == 200
        finally:
            again.stop()


# --- blocks --------------------------------------------------------------------------


def test_block_unblock_and_expiry_through_the_api(users: str, tmp_path: Path) -> None:
    blocked = Delta("tracetrack_blocked_requests_total")
    with make_client(users, tmp_path, client=OFFICE) as c:
        admin = auth(token(c, "root"))
        attacker = beside(c, ATTACKER)
        assert attacker.get("/healthz").status_code == 200
        r = c.post(
            "/api/security/blocks",
            json={"network": "203.0.113.0/24", "for": "1h", "reason": "credential stuffing"},
            headers=admin,
        )
        assert r.status_code == 201, r.text
        r = attacker.post("/api/auth/login", content=b"x" * 100)
        assert r.status_code == 403  # before the body is parsed (it is not JSON)
        assert r.json()["detail"] == "this client address is blocked"
        assert blocked() == 1
        assert metric("tracetrack_blocked_clients") == 1
        listed = c.get("/api/security/blocks", headers=admin).json()
        assert [b["network"] for b in listed] == ["203.0.113.0/24"]
        assert listed[0]["reason"] == "credential stuffing" and listed[0]["created_by"] == "root"
        # Unblock.
        r = c.delete("/api/security/blocks", params={"network": "203.0.113.0/24"}, headers=admin)
        assert r.status_code == 200 and r.json() == {"lifted": 1}
        assert attacker.get("/healthz").status_code == 200
        r = c.delete("/api/security/blocks", params={"network": "203.0.113.0/24"}, headers=admin)
        assert r.status_code == 404
        # Expiry: a 2-second block lets the client back in by itself.
        r = c.post(
            "/api/security/blocks",
            json={"network": ATTACKER[0], "for": "2s", "reason": "cool down"},
            headers=admin,
        )
        assert r.status_code == 201
        assert attacker.get("/healthz").status_code == 403
        poll(lambda: attacker.get("/healthz").status_code == 200, 30, "the block to expire")
        # Bad input names the problem.
        for body, needle in (
            ({"network": "10.1.2.3/8", "for": "1h", "reason": "x"}, "CIDR"),
            ({"network": "nonsense", "for": "1h", "reason": "x"}, "CIDR"),
            ({"network": "10.0.0.0/8", "for": "soon", "reason": "x"}, "duration"),
            ({"network": "0.0.0.0/0", "for": "1h", "reason": "x"}, "every client"),
            ({"network": "::/0", "for": "1h", "reason": "x"}, "every client"),
        ):
            r = c.post("/api/security/blocks", json=body, headers=admin)
            assert r.status_code == 422 and needle in r.text, r.text
        kinds = {e["kind"] for e in events(c)}
        assert {"block_added", "block_lifted", "blocked_request"} <= kinds


def test_blocks_survive_a_restart_and_reach_another_app(users: str, tmp_path: Path) -> None:
    with make_client(users, tmp_path) as c:
        admin = auth(token(c, "root"))
        r = c.post(
            "/api/security/blocks",
            json={"network": "2001:db8::/32", "for": "1h", "reason": "probing"},
            headers=admin,
        )
        assert r.status_code == 201
    # A new app (a restart, or another replica) reads it from PostgreSQL at startup.
    with make_client(users, tmp_path, client=("2001:db8::5", 1)) as v6:
        assert v6.get("/healthz").status_code == 403
        assert beside(v6, ("2001:db9::5", 1)).get("/healthz").status_code == 200
        assert beside(v6, ("32.1.13.184", 1)).get("/healthz").status_code == 200


# --- suspicious scans ----------------------------------------------------------------


@pytest.fixture()
def scanning(users: str, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    with make_client(
        users,
        tmp_path,
        scan_burst_per_minute=6,
        unknown_qr_per_5m=3,
        rate_limit_writes="1000/minute",
    ) as c:
        dana = auth(token(c, "dana"))
        bags = [{"qr_id": f"SUS{i:03d}", "bag_type": "parent"} for i in range(20)]
        assert c.post("/api/bags/bulk", json={"bags": bags}, headers=dana).status_code == 201
        yield c, dana


def scan(c: TestClient, h: dict[str, str], qr: str, where: str) -> None:
    r = c.post("/api/scans", json={"qr_id": qr, "location": where}, headers=h)
    assert r.status_code == 201, r.text


def test_impossible_travel(scanning: tuple[TestClient, dict[str, str]]) -> None:
    c, dana = scanning
    travel = Delta("tracetrack_suspicious_scans_total", kind="impossible_travel")
    scan(c, dana, "SUS001", "Mumbai Hub")
    scan(c, dana, "SUS001", "Mumbai Hub")  # the same place again is fine
    assert travel() == 0
    scan(c, dana, "SUS001", "Delhi Hub")
    assert travel() == 1
    found = [e for e in events(c, "suspicious_scan") if e["detail"]["kind"] == "impossible_travel"]
    assert found and found[0]["detail"]["qr_id"] == "SUS001" and found[0]["user"] == "dana"


def test_scan_burst(scanning: tuple[TestClient, dict[str, str]]) -> None:
    c, dana = scanning
    burst = Delta("tracetrack_suspicious_scans_total", kind="scan_burst")
    for i in range(6):
        scan(c, dana, f"SUS{i + 2:03d}", "Pune Depot")
    assert burst() == 0
    for i in range(4):
        scan(c, dana, f"SUS{i + 10:03d}", "Pune Depot")
    assert burst() == 1  # once per window, when the threshold is crossed


def test_two_apps_on_redis_judge_scans_together(users: str, tmp_path: Path, redis_url: str) -> None:
    """On Redis the scan counters are shared by every worker and replica, and each worker
    counts its scans in batches (one round trip each, app/guard/scans.py): a pattern split
    over two apps is found within the batch interval."""
    travel = Delta("tracetrack_suspicious_scans_total", kind="impossible_travel")
    burst = Delta("tracetrack_suspicious_scans_total", kind="scan_burst")
    overrides: dict[str, Any] = {
        "redis_url": redis_url,
        "scan_burst_per_minute": 6,
        "rate_limit_writes": "1000/minute",
    }
    with (
        make_client(users, tmp_path / "a", **overrides) as a,
        make_client(users, tmp_path / "b", **overrides) as b,
    ):
        assert guard(a).ashared.backend_name == guard(b).ashared.backend_name == "redis"
        dana = auth(token(a, "dana"))
        bags = [{"qr_id": f"RDS{i:03d}", "bag_type": "parent"} for i in range(10)]
        assert a.post("/api/bags/bulk", json={"bags": bags}, headers=dana).status_code == 201
        scan(a, dana, "RDS001", "Mumbai Hub")
        scan(b, dana, "RDS001", "Mumbai Hub")  # the same place, in the other app: fine
        scan(b, dana, "RDS002", "Pune Depot")
        for app in (a, b):
            assert app.portal is not None
            app.portal.call(guard(app).scans.flush)
        assert travel() == 0 and burst() == 0
        scan(b, dana, "RDS001", "Delhi Hub")  # the bag's second place within the window
        poll(lambda: travel() == 1, 30, "impossible travel across the two apps")
        for i in range(3, 7):  # scans 4 to 7 of the minute, over both apps: one burst
            scan((a, b)[i % 2], dana, f"RDS{i:03d}", "Pune Depot")
        poll(lambda: burst() == 1, 30, "the scan burst across the two apps")
        found = poll(
            lambda: [
                e
                for e in events(b, "suspicious_scan")
                if e["detail"]["kind"] == "impossible_travel"
            ],
            30,
            "the impossible-travel event",
        )
        assert found[0]["detail"]["qr_id"] == "RDS001" and found[0]["user"] == "dana"
    assert travel() == 1 and burst() == 1  # once each, however the batches fell


def test_unknown_qr_probing(scanning: tuple[TestClient, dict[str, str]]) -> None:
    c, dana = scanning
    probing = Delta("tracetrack_suspicious_scans_total", kind="unknown_qr_probing")
    assert c.get("/api/bags/SUS001", headers=dana).status_code == 200
    for i in range(3):
        assert c.get(f"/api/bags/NOPE{i}", headers=dana).status_code == 404
    assert probing() == 0
    assert c.get("/api/bags/NOPE9/scans", headers=dana).status_code == 404
    assert probing() == 1
    assert events(c, "suspicious_scan")[-1]["detail"]["kind"] == "unknown_qr_probing"


def test_billed_bag_scan_is_counted(scanning: tuple[TestClient, dict[str, str]]) -> None:
    c, dana = scanning
    billed = Delta("tracetrack_suspicious_scans_total", kind="billed_bag")
    biller = auth(token(c, "bill"))
    r = c.post(
        "/api/bills", json={"bill_number": "B-SUS-1", "bag_qr_ids": ["SUS001"]}, headers=biller
    )
    assert r.status_code == 201, r.text
    scan(c, dana, "SUS002", "Pune Depot")
    assert billed() == 0
    scan(c, dana, "SUS001", "Pune Depot")  # the billing rule keeps it billed; we count it
    assert billed() == 1
    assert events(c, "suspicious_scan")[-1]["detail"] == {"kind": "billed_bag", "qr_id": "SUS001"}


def test_every_suspicious_kind_and_injection_kind_starts_at_zero(
    users: str, tmp_path: Path
) -> None:
    with make_client(users, tmp_path) as c:
        text = c.get("/metrics").text
    for kind in ("impossible_travel", "scan_burst", "unknown_qr_probing", "billed_bag"):
        assert f'tracetrack_suspicious_scans_total{{kind="{kind}"}}' in text
    for kind in ("sql", "script", "path_traversal"):
        assert f'tracetrack_injection_attempts_total{{kind="{kind}"}}' in text
    for rc in ("login", "writes", "reads"):
        assert f'tracetrack_rate_limited_total{{route_class="{rc}"}}' in text
    assert "tracetrack_blocked_clients " in text


# --- injection signatures ------------------------------------------------------------


def test_injection_strings_are_counted_and_the_hospital_is_not(
    scanning: tuple[TestClient, dict[str, str]],
) -> None:
    c, dana = scanning
    sql = Delta("tracetrack_injection_attempts_total", kind="sql")
    script = Delta("tracetrack_injection_attempts_total", kind="script")
    traversal = Delta("tracetrack_injection_attempts_total", kind="path_traversal")
    # Ordinary text is accepted and not counted.
    scan(c, dana, "SUS005", "Select Specialty Hospital")
    scan(c, dana, "SUS006", "O'Reilly Depot; Gate 3 -- east")
    r = c.post("/api/scans", json={"qr_id": "SUS007", "location": ""}, headers=dana)
    assert r.status_code == 422  # rejected, but no signature
    assert sql() == script() == traversal() == 0
    # Rejected input with signatures: still a plain 422, counted by kind.
    r = c.get("/api/bags/1' OR '1'='1", headers=dana)
    assert r.status_code == 422
    r = c.post(
        "/api/scans", json={"qr_id": "<script>alert(1)</script>", "location": "x"}, headers=dana
    )
    assert r.status_code == 422
    r = c.get("/api/bags", params={"q": "../../etc/passwd"}, headers=dana)
    assert r.status_code == 422
    r = c.get("/static/..%2f..%2fetc/passwd")
    assert r.status_code == 404
    assert (sql(), script(), traversal()) == (1, 1, 2)
    found = events(c, "injection_attempt")
    assert {e["detail"]["kind"] for e in found} == {"sql", "script", "path_traversal"}
    assert all("OR '1'='1" not in json.dumps(e["detail"]) for e in found)
    # Never blocked for it: the same client goes on working.
    assert c.get("/api/bags/SUS005", headers=dana).status_code == 200


# --- the admin view and the access log -------------------------------------------------


def test_security_overview_lists_events_offenders_and_blocks(users: str, tmp_path: Path) -> None:
    with make_client(users, tmp_path, client=ATTACKER) as c:
        for i in range(3):
            login(c, "dana", f"bad-{i}")
        admin = auth(token(beside(c, OFFICE), "root"))
        r = c.get("/analytics/api/security", params={"since": "1h"}, headers=admin)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["top_ips"][0] == {**body["top_ips"][0], "key": ATTACKER[0], "events": 3}
        assert body["top_accounts"][0]["key"] == "dana"
        assert body["events"][0]["kind"] == "login_failed"
        assert (
            c.get("/analytics/api/security", params={"since": "x"}, headers=admin).status_code
            == 422
        )
        dana = auth(token(beside(c, OFFICE), "dana"))
        assert c.get("/analytics/api/security", headers=dana).status_code == 403
        access = (tmp_path / "log" / "access.jsonl").read_text().splitlines()
        lines = [json.loads(x) for x in access]
        assert {(x["client_ip"], x["route"], x["status"]) for x in lines} >= {
            (ATTACKER[0], "/api/auth/login", 401),
            (ATTACKER[0], "/analytics/api/security", 403),
        }
        assert all(
            set(x) == {"time", "client_ip", "user", "method", "route", "status", "duration_ms"}
            for x in lines
        )


def test_events_carrying_nul_are_stored_and_do_not_lose_their_batch(
    users: str, tmp_path: Path
) -> None:
    """Events record hostile input: a NUL in a path (an injection signature) reached
    PostgreSQL, which refused the whole batch, so an attacker could hide their failed
    logins behind one such request. The unlock API refuses what no login can be."""
    with make_client(users, tmp_path, client=ATTACKER) as c:
        admin = auth(token(beside(c, OFFICE), "root"))
        login(c, "dana", "bad-1")
        assert c.get("/api/bags/x%00y", headers=admin).status_code == 422
        for body in ({"username": "a\x00"}, {"ip": "203.0.113.7\x00"}, {"ip": "nope"}):
            r = c.post("/api/security/unlock", json=body, headers=admin)
            assert r.status_code == 422, (body, r.text)
        guard(c).events.flush()
        r = c.get("/analytics/api/security", params={"since": "1h"}, headers=admin)
        stored = {(e["kind"], e["route"]) for e in r.json()["events"]}
        assert ("login_failed", "/api/auth/login") in stored, stored
        assert ("injection_attempt", "/api/bags/x\ufffdy") in stored, stored


# --- the CLI -------------------------------------------------------------------------


def test_events_on_the_terminal_cannot_drive_it_or_forge_a_line(users: str, tmp_path: Path) -> None:
    """An attacker chooses the login name an event records; `tracetrack security events`
    (the runbook's first step) printed it raw: escape sequences reached the operator's
    terminal and a newline printed a forged event."""
    with make_client(users, tmp_path, client=ATTACKER) as c:
        forged = "x\n2026-01-01T00:00:00  login_ok  ip=10.0.0.1 \x1b[2J\x1b]0;owned\x07"
        assert login(c, forged, "Password1").status_code == 401
        guard(c).events.flush()
        r = cli(users, tmp_path, "events", "--since", "1h")
        assert r.returncode == 0, r.stderr
        (line,) = [x for x in r.stdout.splitlines() if "login_failed" in x]
        assert "\x1b" not in r.stdout and "\x07" not in r.stdout
        assert "user=x\\n2026-01-01" in line and "\\x1b[2J" in line
        assert not [x for x in r.stdout.splitlines() if x.startswith("2026-01-01")]


def cli(database_url: str, tmp_path: Path, *args: str, redis_url: str = "") -> Any:
    import subprocess

    exe = TRACETRACK
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "TRACETRACK_VAR_DIR": str(tmp_path),
    }
    return subprocess.run(
        [exe, "security", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_block_list_events_unblock_through_the_cli(users: str, tmp_path: Path) -> None:
    with make_client(users, tmp_path, client=ATTACKER, block_refresh_seconds=0.2) as c:
        assert c.get("/healthz").status_code == 200
        r = cli(users, tmp_path, "block", "203.0.113.0/24", "--for", "1h", "--reason", "stuffing")
        assert r.returncode == 0, r.stderr
        assert "blocked 203.0.113.0/24 until" in r.stdout
        # Every worker re-reads the list: this app refuses the client within its refresh.
        poll(lambda: c.get("/healthz").status_code == 403, 30, "the app to see the CLI's block")
        r = cli(users, tmp_path, "list")
        assert r.returncode == 0 and "203.0.113.0/24" in r.stdout and "stuffing" in r.stdout
        r = cli(users, tmp_path, "list", "--json")
        assert json.loads(r.stdout.splitlines()[0])["network"] == "203.0.113.0/24"
        r = cli(users, tmp_path, "events", "--since", "1h")
        assert r.returncode == 0 and "blocked_request" in r.stdout and "block_added" in r.stdout
        r = cli(users, tmp_path, "unblock", "203.0.113.0/24")
        assert r.returncode == 0 and "unblocked 203.0.113.0/24" in r.stdout
        poll(lambda: c.get("/healthz").status_code == 200, 30, "the app to see the unblock")
        assert cli(users, tmp_path, "unblock", "203.0.113.0/24").returncode == 1
        # Expiry through the CLI too.
        assert (
            cli(users, tmp_path, "block", ATTACKER[0], "--for", "3s", "--reason", "x").returncode
            == 0
        )
        poll(lambda: c.get("/healthz").status_code == 403, 30, "the short block")
        poll(lambda: c.get("/healthz").status_code == 200, 30, "the short block to expire")
    # Bad input names the problem, exit status 2.
    for args, needle in (
        (("block", "10.1.2.3/8", "--reason", "x"), "CIDR"),
        (("block", "0.0.0.0/0", "--reason", "x"), "every client"),  # took the app down
        (("block", "2001::/16", "--reason", "x"), "wider than a /32"),
        (("block", "10.0.0.0/8", "--for", "later", "--reason", "x"), "--for"),
        (("events", "--since", "yesterday"), "--since"),
        (("unlock", "--ip", "garbage"), "--ip: 'garbage' is not an IP address"),
    ):
        r = cli(users, tmp_path, *args)
        assert r.returncode == 2 and needle in r.stderr, (args, r.stderr)


def test_unlock_through_the_cli(users: str, tmp_path: Path, redis_url: str) -> None:
    with make_client(
        users,
        tmp_path,
        redis_url=redis_url,
        login_max_failures_per_account=2,
        lockout_base_seconds=600,
    ) as c:
        login(c, "dana", "wrong-1")
        assert login(c, "dana", "wrong-2").status_code == 429
        r = cli(users, tmp_path, "unlock", "dana", redis_url=redis_url)
        assert r.returncode == 0 and "unlocked account dana" in r.stdout, r.stderr
        assert login(c, "dana", PASSWORD).status_code == 200
    r = cli(users, tmp_path, "unlock", "dana")
    assert r.returncode == 2 and "REDIS_URL is not set" in r.stderr


def test_automatic_blocks_when_enabled(users: str, tmp_path: Path) -> None:
    settings = {
        "auto_block": True,
        "auto_block_strikes": 3,
        "auto_block_seconds": 600,
        "auto_block_exempt": "127.0.0.0/8",
        "rate_limit_reads": "2/minute",
    }
    with make_client(users, tmp_path, client=ATTACKER, **settings) as c:
        assert [c.get("/api/bags").status_code for _ in range(5)] == [401, 401, 429, 429, 429]
        # The event writer hands the strikes to the blocker; the block reaches the list.
        poll(lambda: c.get("/api/bags").status_code == 403, 30, "the automatic block")
        with c.app.state.sessionmaker() as db:  # type: ignore[attr-defined]
            blocks = active_blocks(db)
        assert [(b.network, b.source) for b in blocks] == [(f"{ATTACKER[0]}/32", "auto")]
        # An exempt address (loopback here) trips the limits without being blocked.
        local = TestClient(c.app, client=("127.0.0.1", 1))
        assert [local.get("/api/bags").status_code for _ in range(5)][-1] == 429
        guard(c).events.flush()
        assert local.get("/api/bags").status_code == 429  # limited, never blocked


def test_automatic_blocks_are_off_by_default(users: str, tmp_path: Path) -> None:
    with make_client(users, tmp_path, client=ATTACKER, rate_limit_reads="2/minute") as c:
        for _ in range(10):
            c.get("/api/bags")
        guard(c).events.flush()
        assert c.get("/api/bags").status_code == 429
        assert metric("tracetrack_blocked_clients") == 0
