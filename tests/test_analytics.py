"""The /analytics API against a live stack: the real app and exporter scraped by a real
Prometheus, alerts in a real Alertmanager. Auth, every endpoint's JSON, the shared
cache, and 503s when a backend is down."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.analytics.queries import QUERIES, REALTIME
from app.analytics.service import Analytics
from app.analytics.settings import AnalyticsSettings
from app.main import create_app
from tests.support.appkit import add_user, app_settings, auth, token
from tests.support.livestack import LiveStack, drive_traffic, start_live_stack
from tests.support.stack import start_prometheus
from tooling.pgserver import PostgresServer
from tooling.procs import free_port, wait_until

ENDPOINTS = [
    "/analytics/api/metrics/realtime",
    "/analytics/api/metrics/performance",
    "/analytics/api/metrics/bags",
    "/analytics/api/metrics/users",
    "/analytics/api/alerts",
    "/analytics/api/slo",
    "/analytics/api/reports",
]
CACHE_TTL = 3.0


@pytest.fixture(scope="module")
def stack(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStack]:
    database_url = postgres.create_database("analytics_live")
    s = start_live_stack(
        tmp_path_factory.mktemp("analytics"),
        database_url,
        app_env={"ANALYTICS_CACHE_TTL_SECONDS": str(CACHE_TTL)},
    )
    try:
        drive_traffic(s)
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def client(stack: LiveStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.app_url, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def admin(stack: LiveStack) -> dict[str, str]:
    return auth(stack.admin_token)


def fresh(
    client: httpx.Client, admin: dict[str, str], path: str, ready: Any, timeout: float = 30
) -> dict[str, Any]:
    """Poll until `ready(body)`: Prometheus needs a few scrapes to see the traffic."""
    found: dict[str, Any] = {}

    def check() -> bool:
        r = client.get(path, headers=admin)
        assert r.status_code == 200, r.text
        found["body"] = r.json()
        return bool(ready(found["body"]))

    try:
        wait_until(check, timeout, f"{path} to show live values", interval=0.5)
    except TimeoutError:
        pytest.fail(f"{path} never showed live values; last body: {found.get('body')}")
    return found["body"]


def value(body: dict[str, Any], section: str, name: str) -> Any:
    return body[section][name]["value"]


# --- auth -------------------------------------------------------------------------------


def test_every_endpoint_needs_an_admin(stack: LiveStack, client: httpx.Client) -> None:
    dispatcher = token(client, "dispatcher")
    for path in ENDPOINTS:
        r = client.get(path)
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"] == "Bearer"
        r = client.get(path, headers=auth(dispatcher))
        assert r.status_code == 403, path
        assert "admin" in r.json()["detail"]
        assert client.get(path, headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    # The page: a browser without a session is sent to the login form; others are refused.
    r = client.get("/analytics/dashboard")
    assert r.status_code == 303 and r.headers["location"] == "/analytics/login"
    r = client.get("/analytics/dashboard", headers=auth(dispatcher))
    assert r.status_code == 403 and "Admins only" in r.text


def test_the_login_form_sets_a_cookie_only_for_admins(client: httpx.Client) -> None:
    r = client.post(
        "/analytics/login", data={"username": "dispatcher", "password": "correct-horse-battery"}
    )
    assert r.status_code == 401 and "admins only" in r.text and "set-cookie" not in r.headers
    r = client.post("/analytics/login", data={"username": "admin", "password": "wrong"})
    assert r.status_code == 401 and "wrong username or password" in r.text
    r = client.post(
        "/analytics/login", data={"username": "admin", "password": "correct-horse-battery"}
    )
    assert r.status_code == 303 and r.headers["location"] == "/analytics/dashboard"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/analytics" in cookie
    session = {"Cookie": f"tracetrack_analytics={r.cookies['tracetrack_analytics']}"}
    page = client.get("/analytics/dashboard", headers=session)
    assert page.status_code == 200 and 'id="system"' in page.text
    # The cookie is not a way into the JSON API, which takes the bearer header only.
    assert client.get(ENDPOINTS[0], headers=session).status_code == 401


# --- live values --------------------------------------------------------------------------


def test_realtime_reports_system_performance_and_business_with_threshold_status(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    body = fresh(
        client,
        admin,
        ENDPOINTS[0],
        lambda b: (
            (value(b, "performance", "requests_per_minute") or 0) > 0
            and (value(b, "business", "total_bags") or 0) >= 20
            and value(b, "performance", "cache_hit_rate") is not None
        ),
    )
    assert set(body) >= {"generated_at", "cached", "system", "performance", "business"}
    for section, names in REALTIME.items():
        assert list(body[section]) == list(names)
    cpu = body["system"]["cpu_usage"]
    assert 0 <= cpu["value"] <= 1 and cpu["unit"] == "ratio"
    assert cpu["status"] in ("ok", "warning", "critical")
    assert (cpu["warning"], cpu["critical"], cpu["bad_when"]) == (0.75, 0.9, "above")
    assert 0 <= value(body, "system", "memory_usage") <= 1
    assert 0 < value(body, "system", "disk_usage") <= 1
    assert value(body, "system", "db_connections") >= 1
    perf = body["performance"]
    assert perf["avg_response_time"]["value"] > 0
    assert perf["p95_response_time"]["status"] == "ok"
    # 404s among ~150 requests, no 5xx.
    assert perf["error_rate"]["value"] == 0 and perf["error_rate"]["status"] == "ok"
    # Each bag looked up three times: one miss, then hits.
    assert 0.5 < perf["cache_hit_rate"]["value"] < 1
    assert perf["cache_hit_rate"]["bad_when"] == "below"
    users = body["business"]["active_users"]
    assert users["value"] >= 1 and users["status"] == "ok"


def test_performance_breaks_down_by_route_template_and_status(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    # Ready once the route's p95 is a number: a route whose buckets Prometheus has seen
    # in only one scrape has no rate yet, so histogram_quantile gives NaN (null) for it.
    body = fresh(
        client,
        admin,
        ENDPOINTS[1],
        lambda b: (
            "404" in b["by_status"]["requests_per_minute_by_status"]["values"]
            and (
                b["by_route"]["p95_response_time_by_route"]["values"].get("/api/bags/{qr_id}") or 0
            )
            > 0
        ),
    )
    routes = body["by_route"]["p95_response_time_by_route"]["values"]
    assert "/api/bags/{qr_id}" in routes and routes["/api/bags/{qr_id}"] > 0
    assert not any("LIVE" in r for r in routes), "raw paths leaked into route labels"
    statuses = body["by_status"]["requests_per_minute_by_status"]["values"]
    assert statuses["200"] > 0
    rt = body["response_time"]
    assert 0 < rt["p50_response_time"]["value"] <= rt["p99_response_time"]["value"]
    # No REDIS_URL: the in-process cache serves (the redis series may be absent).
    backends = body["cache"]["cache_backend"]["values"]
    assert backends["memory"] == 1.0 and backends.get("redis", 0.0) == 0.0


def test_bags_counts_what_was_created_scanned_and_billed(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    body = fresh(
        client,
        admin,
        ENDPOINTS[2],
        lambda b: (
            (value(b, "bags", "total_bags") or 0) >= 20
            and (value(b, "scans", "scans_today") or 0) >= 10
        ),
    )
    assert value(body, "bags", "total_bags") == 20
    assert value(body, "scans", "scans_today") == 10
    assert value(body, "bills", "bills_today") == 2
    assert value(body, "scans", "scans_per_minute") > 0
    assert value(body, "bags", "bags_created_per_minute") > 0


def test_users_reports_active_and_registered_users(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    body = fresh(
        client,
        admin,
        ENDPOINTS[3],
        lambda b: (
            (value(b, "users", "active_users") or 0) >= 1
            and value(b, "users", "registered_users") is not None
        ),
    )
    assert value(body, "users", "registered_users") == 2
    assert body["users"]["active_users"]["warning"] == 1500
    assert value(body, "security", "login_failures_last_hour") is not None


def test_slo_reports_availability_budget_and_burn_rates_of_the_healthy_app(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    body = fresh(
        client,
        admin,
        "/analytics/api/slo",
        lambda b: (
            value(b, "slo", "availability") is not None
            and value(b, "burn_rates", "burn_rate_1h") is not None
        ),
    )
    assert body["objective"] == {"availability": 0.999, "window_days": 30}
    # A healthy app answering everything: full availability, untouched budget, no burn.
    assert value(body, "slo", "availability") == 1
    assert value(body, "slo", "error_budget_remaining") == 1
    assert {k: v["value"] for k, v in body["burn_rates"].items()} == {
        "burn_rate_1h": 0,
        "burn_rate_6h": 0,
        "burn_rate_1d": 0,
        "burn_rate_3d": 0,
    }
    assert [a["factor"] for a in body["burn_rate_alerts"]] == [14.4, 6, 3, 1]


def test_alerts_lists_alertmanagers_active_alerts_newest_first(
    stack: LiveStack, client: httpx.Client, admin: dict[str, str]
) -> None:
    stack.post_alert("Watchdog", "info", "Alerting pipeline heartbeat (always firing)")
    stack.post_alert("HighCPUUsage", "warning", "CPU above 75 %", instance="host-1")
    time.sleep(1.1)  # distinct startsAt seconds
    stack.post_alert("HighErrorRate", "critical", "5xx above 5 %", instance="app-1")
    body = fresh(client, admin, ENDPOINTS[4], lambda b: b["total"] >= 2)
    assert [a["alertname"] for a in body["alerts"]] == ["HighErrorRate", "HighCPUUsage"]
    assert body["watchdog_firing"] is True
    assert body["by_severity"] == {"critical": 1, "warning": 1, "info": 0}
    first = body["alerts"][0]
    assert first["severity"] == "critical" and first["summary"] == "5xx above 5 %"
    assert first["labels"]["instance"] == "app-1" and first["state"] == "active"


# --- the cache -----------------------------------------------------------------------------


def prometheus_queries_served(stack: LiveStack) -> float:
    text = httpx.get(f"{stack.prometheus_url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if (
                s.name == "prometheus_http_requests_total"
                and s.labels.get("handler") == "/api/v1/query"
            ):
                return s.value
    return 0.0


def test_admins_share_one_cached_answer_per_ttl(
    stack: LiveStack, client: httpx.Client, admin: dict[str, str]
) -> None:
    time.sleep(CACHE_TTL + 0.2)  # whatever an earlier test left cached has expired
    before = prometheus_queries_served(stack)
    with ThreadPoolExecutor(8) as pool:
        bodies = [
            r.json() for r in pool.map(lambda _: client.get(ENDPOINTS[0], headers=admin), range(8))
        ]
    after_burst = prometheus_queries_served(stack)
    named = sum(len(v) for v in REALTIME.values())
    # Eight concurrent admins share rounds of the named queries: one round, unless the
    # machine is so slow that the burst outlives the TTL (the cache's exact semantics,
    # on a clock the test moves, are tests/test_analytics_cache.py's).
    rounds, rest = divmod(after_burst - before, named)
    assert rest == 0 and 1 <= rounds < 8, (after_burst - before, named)
    assert len({b["generated_at"] for b in bodies}) <= rounds
    # An answer marked cached cost Prometheus nothing; one that is not, one round.
    again = client.get(ENDPOINTS[0], headers=admin).json()
    after_again = prometheus_queries_served(stack)
    if again["cached"]:
        assert again["generated_at"] in {b["generated_at"] for b in bodies}
        assert after_again == after_burst
    else:
        assert after_again - after_burst == named
    time.sleep(CACHE_TTL + 0.2)
    later = client.get(ENDPOINTS[0], headers=admin).json()
    assert later["cached"] is False
    assert prometheus_queries_served(stack) - after_again == named


# --- backends down ------------------------------------------------------------------------


@pytest.fixture()
def inprocess(database_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    add_user(database_url, "admin", "admin")
    # Nothing listens there; behind basic auth, as a hosted backend often is.
    dead = f"http://monitor:s3cret-pw@127.0.0.1:{free_port()}"
    settings = app_settings(
        database_url, tmp_path, prometheus_url=dead, alertmanager_url=dead, metrics_enabled=False
    )
    app = create_app(settings)
    with TestClient(app) as c:
        yield c, auth(token(c, "admin"))


def test_prometheus_unreachable_is_a_503_with_a_clear_json_error(inprocess) -> None:
    c, admin = inprocess
    for path in ENDPOINTS[:4]:
        r = c.get(path, headers=admin)
        assert r.status_code == 503, path
        body = r.json()
        assert body["backend"] == "prometheus"
        assert body["detail"].startswith(f"prometheus at {body['url']} is unavailable")
        assert "ConnectError" in body["reason"]
        assert r.headers["retry-after"]
        assert "s3cret" not in r.text and body["url"].startswith("http://127.0.0.1:")
    r = c.get(ENDPOINTS[4], headers=admin)
    assert r.status_code == 503 and r.json()["backend"] == "alertmanager"
    assert "s3cret" not in r.text
    page = c.get("/analytics/dashboard", headers=admin)
    assert page.status_code == 503 and "Metrics unavailable" in page.text
    assert "s3cret" not in page.text


class _LoginPage(BaseHTTPRequestHandler):
    """What a URL that is not Prometheus' or Alertmanager's answers: an HTML page, 200."""

    def _page(self) -> None:
        body = b"<html><body>Please log in</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _page

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_backend_url_that_is_not_the_backend_is_a_clear_503(
    database_url: str, tmp_path: Path
) -> None:
    """PROMETHEUS_URL or ALERTMANAGER_URL at Grafana or a proxy's login page: every
    /analytics call was a 500 with a traceback (the answer was not JSON)."""
    add_user(database_url, "admin", "admin")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _LoginPage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        other = f"http://127.0.0.1:{server.server_address[1]}"
        settings = app_settings(
            database_url, tmp_path, prometheus_url=other, alertmanager_url=other
        )
        with TestClient(create_app(settings)) as c:
            admin = auth(token(c, "admin"))
            for path in ENDPOINTS[:6]:
                r = c.get(path, headers=admin)
                assert r.status_code == 503, (path, r.text)
                assert "text/html, not its API's answer" in r.json()["reason"]
    finally:
        server.shutdown()
        server.server_close()


class SilentServer:
    """Accepts connections and never answers: a hung Prometheus."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                self.accepted.append(self.sock.accept()[0])
            except OSError:
                pass

    def hang_up(self) -> None:
        for conn in list(self.accepted):
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.hang_up()
        self.sock.close()


@pytest.fixture()
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    try:
        yield server
    finally:
        server.close()


def analytics_against(c: TestClient, url: str, timeout: float) -> None:
    app: Any = c.app
    settings = app.state.settings.model_copy(update={"prometheus_url": url})
    app.state.analytics = Analytics(
        settings,
        AnalyticsSettings(analytics_query_timeout_seconds=timeout, analytics_cache_ttl_seconds=0),
    )


def test_a_hung_prometheus_is_a_503_naming_the_timeout(inprocess, silent_server) -> None:
    c, admin = inprocess
    analytics_against(c, silent_server.url, timeout=0.5)
    r = c.get(ENDPOINTS[0], headers=admin)
    assert r.status_code == 503 and "timeout" in r.json()["reason"]


def test_the_named_queries_wait_on_a_hung_prometheus_together(inprocess, silent_server) -> None:
    """One timeout, not one per query: every query of the page is in flight at once.
    Shown without a clock: the hung server sees all of them connected before it hangs
    up on them (one at a time would leave it holding one for the whole timeout)."""
    c, admin = inprocess
    analytics_against(c, silent_server.url, timeout=60)
    queries = sum(len(names) for names in REALTIME.values())
    answer: dict[str, Any] = {}
    request = threading.Thread(target=lambda: answer.update(r=c.get(ENDPOINTS[0], headers=admin)))
    request.start()
    try:
        wait_until(
            lambda: len(silent_server.accepted) >= queries,
            30,
            f"all {queries} named queries connected to the hung Prometheus",
        )
    finally:
        silent_server.hang_up()
        request.join(60)
    assert answer["r"].status_code == 503


def test_prometheus_going_down_and_coming_back(inprocess, tmp_path: Path) -> None:
    c, admin = inprocess
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = c.app.state.settings.model_copy(update={"prometheus_url": url})
    c.app.state.analytics = Analytics(settings, AnalyticsSettings(analytics_cache_ttl_seconds=0))

    def start() -> Any:
        # Same port and data directory: the same Prometheus, restarted.
        return start_prometheus(tmp_path / "prometheus", targets={}, port=port).proc

    prom = start()
    try:
        r = c.get(ENDPOINTS[2], headers=admin)
        # Up, but nothing scraped: every figure is there, without a value.
        assert r.status_code == 200 and value(r.json(), "bags", "total_bags") is None
        prom.stop()
        r = c.get(ENDPOINTS[2], headers=admin)
        assert r.status_code == 503 and r.json()["backend"] == "prometheus"
        prom = start()
        assert c.get(ENDPOINTS[2], headers=admin).status_code == 200
    finally:
        prom.stop()


# --- named queries only (transport-level double, docs/architecture.md §10) ---------------------------------


def test_only_named_queries_reach_prometheus_whatever_the_request_says(inprocess) -> None:
    c, admin = inprocess
    sent: list[str] = []

    def prometheus(request: httpx.Request) -> httpx.Response:
        form = dict(x.split("=", 1) for x in request.content.decode().split("&"))
        sent.append(httpx.QueryParams(f"query={form['query']}")["query"])
        return httpx.Response(
            200,
            json={
                "status": "success",
                "data": {"resultType": "vector", "result": [{"metric": {}, "value": [0, "0.5"]}]},
            },
        )

    c.app.state.analytics = Analytics(
        c.app.state.settings,
        AnalyticsSettings(analytics_cache_ttl_seconds=0),
        transport=httpx.MockTransport(prometheus),
    )
    r = c.get(ENDPOINTS[0] + "?query=up&instance=evil%22%7D", headers=admin)
    assert r.status_code == 200
    assert sorted(sent) == sorted(QUERIES[n].promql for v in REALTIME.values() for n in v)


def test_a_query_prometheus_rejects_is_a_502_naming_it(inprocess) -> None:
    c, admin = inprocess

    def prometheus(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            400, json={"status": "error", "errorType": "bad_data", "error": "parse error"}
        )

    c.app.state.analytics = Analytics(
        c.app.state.settings,
        AnalyticsSettings(analytics_cache_ttl_seconds=0),
        transport=httpx.MockTransport(prometheus),
    )
    r = c.get(ENDPOINTS[3], headers=admin)
    assert r.status_code == 502 and "parse error" in r.json()["detail"]
