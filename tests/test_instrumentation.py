"""The instrumentation on a small FastAPI app of the test's own, with a real PostgreSQL pool.

Each test builds a fresh CollectorRegistry and reads what GET /metrics serves.
The real app and several workers are in test_instrumentation_app.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Annotated

import pytest
from fastapi import APIRouter, FastAPI, Header, HTTPException, Request
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from prometheus_client import values as prometheus_values
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, create_engine, text

from app.instrumentation import instrument, prepare_multiprocess
from app.instrumentation.active_users import ActiveUsers
from app.instrumentation.compaction import compact
from app.instrumentation.multiproc import ACTIVE_USERS_FILE, DIR_PREFIX, ENV
from app.metrics import UNMATCHED_ROUTE
from common.settings import Settings
from tooling.checkout import ROOT
from tooling.procs import spawn, wait_until


def scrape(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    r = client.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def requests_total(samples: dict, method: str, route: str, status: str) -> float | None:
    return value(
        samples, "tracetrack_http_requests_total", method=method, route=route, status=status
    )


def build_app(engine: Engine, registry: CollectorRegistry, **options: float) -> FastAPI:
    app = FastAPI()
    bags = APIRouter(prefix="/api/bags")
    seals = APIRouter(prefix="/seals")

    def who(request: Request, x_user: Annotated[int | None, Header()] = None) -> None:
        if x_user is not None:  # what the real app's auth dependency does
            request.state.user_id = x_user

    @bags.get("/{qr_id}")
    def get_bag(
        qr_id: str, request: Request, x_user: Annotated[int | None, Header()] = None
    ) -> dict:
        who(request, x_user)
        if qr_id == "missing":
            raise HTTPException(404, "no such bag")
        with engine.connect() as conn:
            return {"qr_id": qr_id, "one": conn.execute(text("SELECT 1")).scalar()}

    @seals.get("/{seal_no:int}")
    def get_seal(seal_no: int) -> dict:
        return {"seal": seal_no}

    bags.include_router(seals)
    app.include_router(bags)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("unhandled, on purpose")

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            for _ in range(3):
                await asyncio.sleep(0.1)
                yield b"chunk\n"

        return StreamingResponse(body())

    @app.get("/in-flight")
    def in_flight() -> dict:
        return {"value": registry.get_sample_value("tracetrack_http_requests_in_progress")}

    instrument(app, Settings(), engine, registry=registry, **options)
    return app


@pytest.fixture()
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url, pool_size=5, max_overflow=0)
    yield engine
    engine.dispose()


@pytest.fixture()
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture()
def client(engine: Engine, registry: CollectorRegistry) -> Iterator[TestClient]:
    with TestClient(
        build_app(engine, registry, pool_sample_interval=0.05), raise_server_exceptions=False
    ) as client:
        yield client


def test_route_label_is_the_template_never_the_raw_path(client: TestClient) -> None:
    for qr in ("P1", "P2", "C3"):
        assert client.get(f"/api/bags/{qr}").status_code == 200
    assert client.get("/api/bags/missing").status_code == 404
    assert client.get("/api/bags/seals/12").status_code == 200  # nested router, int converter
    m = scrape(client)
    assert requests_total(m, "GET", "/api/bags/{qr_id}", "200") == 3
    assert requests_total(m, "GET", "/api/bags/{qr_id}", "404") == 1
    assert requests_total(m, "GET", "/api/bags/seals/{seal_no}", "200") == 1
    assert (
        value(
            m,
            "tracetrack_http_request_duration_seconds_count",
            method="GET",
            route="/api/bags/{qr_id}",
        )
        == 4
    )
    routes = {
        dict(labels)["route"] for (name, labels) in m if name == "tracetrack_http_requests_total"
    }
    assert not any(r.startswith("/api/bags/P") or r.endswith("/12") for r in routes), routes


def test_unmatched_paths_and_odd_methods_are_one_label_value_each(client: TestClient) -> None:
    for path in ("/nope", "/wp-admin.php", "/api/bags/P1/unknown", "/a/b/c"):
        assert client.get(path).status_code == 404
    assert client.request("BREW", "/nope").status_code == 404
    assert client.post("/api/bags/P1").status_code == 405  # the route matched, the method did not
    m = scrape(client)
    assert requests_total(m, "GET", UNMATCHED_ROUTE, "404") == 4
    assert requests_total(m, "OTHER", UNMATCHED_ROUTE, "404") == 1
    assert requests_total(m, "POST", "/api/bags/{qr_id}", "405") == 1
    assert not any("BREW" in dict(labels).values() for (_n, labels) in m)


def test_a_raising_route_counts_as_500_and_leaves_nothing_in_progress(client: TestClient) -> None:
    for _ in range(2):
        assert client.get("/boom").status_code == 500
    m = scrape(client)
    assert requests_total(m, "GET", "/boom", "500") == 2
    # /metrics itself is the one request in flight while it is scraped.
    assert value(m, "tracetrack_http_requests_in_progress") == 1


def test_in_progress_counts_the_request_being_served(client: TestClient) -> None:
    assert client.get("/in-flight").json() == {"value": 1.0}
    assert value(scrape(client), "tracetrack_http_requests_in_progress") == 1


def test_streaming_duration_covers_the_whole_body(client: TestClient) -> None:
    r = client.get("/stream")
    assert r.status_code == 200 and r.text == "chunk\n" * 3
    m = scrape(client)
    assert requests_total(m, "GET", "/stream", "200") == 1
    total = value(m, "tracetrack_http_request_duration_seconds_sum", method="GET", route="/stream")
    assert total is not None and total >= 0.3
    # It fell in the 0.5 s bucket but not the 0.25 s one.
    assert (
        value(
            m,
            "tracetrack_http_request_duration_seconds_bucket",
            method="GET",
            route="/stream",
            le="0.25",
        )
        == 0
    )
    assert (
        value(
            m,
            "tracetrack_http_request_duration_seconds_bucket",
            method="GET",
            route="/stream",
            le="0.5",
        )
        == 1
    )


def test_duration_buckets_include_the_alert_thresholds(client: TestClient) -> None:
    client.get("/api/bags/P1")
    les = {
        dict(labels)["le"]
        for (name, labels) in scrape(client)
        if name == "tracetrack_http_request_duration_seconds_bucket"
    }
    assert {"2.0", "5.0", "+Inf"} <= les


def test_series_do_not_grow_with_the_number_of_requests(client: TestClient) -> None:
    def burst(n: int) -> None:
        for i in range(n):
            client.get(f"/api/bags/Q{i}")
            client.get(f"/unknown/{i}")

    burst(20)
    scrape(client)  # the first scrape adds the /metrics route's own series
    first = scrape(client)
    burst(300)
    second = scrape(client)
    assert set(first) == set(second)
    assert requests_total(second, "GET", "/api/bags/{qr_id}", "200") == 320


def test_active_users_are_distinct_users(client: TestClient) -> None:
    for _ in range(5):
        for user in (1, 2, 3):
            assert client.get("/api/bags/P1", headers={"x-user": str(user)}).status_code == 200
    client.get("/api/bags/P1")  # anonymous requests are not users
    assert value(scrape(client), "tracetrack_active_users") == 3


def test_active_users_window_and_throttle() -> None:
    store = ActiveUsers(window=300, write_interval=30)
    t0 = 1_000_000.0
    store.seen(1, t0)
    store.seen(2, t0 + 100)
    assert store.count(t0 + 200) == 2
    store.seen(1, t0 + 10)  # within write_interval: not recorded again
    assert store.count(t0 + 305) == 1  # user 1 last recorded at t0
    store.seen(1, t0 + 40)
    assert store.count(t0 + 305) == 2
    assert store.count(t0 + 1000) == 0


def test_active_users_store_is_shared_between_workers(tmp_path: Path) -> None:
    # Two stores on one file stand for two workers; each sees every user twice.
    path = tmp_path / ACTIVE_USERS_FILE
    worker_a, worker_b = ActiveUsers(path), ActiveUsers(path)
    now = time.time()
    for user in (7, 8, 9):
        worker_a.seen(user, now)
        worker_b.seen(user, now + 1)
    worker_b.seen(10, now - 400)  # outside the window
    assert worker_a.count() == 3 and worker_b.count() == 3
    worker_a.close()
    worker_b.close()


def test_active_users_store_errors_never_fail_requests(tmp_path: Path) -> None:
    store = ActiveUsers(tmp_path / "missing-dir" / ACTIVE_USERS_FILE)
    store.seen(1, time.time())  # cannot open: logged, dropped, retried next time
    assert 1 not in store._recorded


def test_pool_gauges_follow_the_real_pool(client: TestClient, engine: Engine) -> None:
    conns = [engine.connect() for _ in range(3)]
    for c in conns:
        c.execute(text("SELECT 1"))
    try:

        def pool_is(checked_out: float, idle: float) -> bool:
            m = scrape(client)
            return (
                value(m, "tracetrack_db_pool_connections", state="checked_out"),
                value(m, "tracetrack_db_pool_connections", state="idle"),
            ) == (checked_out, idle)

        wait_until(lambda: pool_is(3, 0), 30, "3 connections checked out")
    finally:
        for c in conns:
            c.close()
    wait_until(lambda: pool_is(0, 3), 30, "3 idle connections")


def test_pool_sampler_runs_in_the_background(engine: Engine, registry: CollectorRegistry) -> None:
    app = build_app(engine, registry, pool_sample_interval=0.05)
    gauge = ("tracetrack_db_pool_connections", {"state": "checked_out"})
    with TestClient(app):
        conn = engine.connect()
        conn.execute(text("SELECT 1"))
        wait_until(lambda: registry.get_sample_value(*gauge) == 1, 30, "sampler saw the checkout")
        conn.close()
        wait_until(lambda: registry.get_sample_value(*gauge) == 0, 30, "sampler saw the checkin")
        thread = [t for t in threading.enumerate() if t.name == "db-pool-sampler"]
        assert thread
    assert not thread[0].is_alive()  # stopped by the lifespan shutdown


# --- batching: the middleware's tallies reach the metrics -----------------------------


def registry_requests(registry: CollectorRegistry, route: str, status: str = "200") -> float:
    labels = {"method": "GET", "route": route, "status": status}
    return registry.get_sample_value("tracetrack_http_requests_total", labels) or 0.0


def test_counts_reach_the_metrics_within_the_flush_interval(
    engine: Engine, registry: CollectorRegistry
) -> None:
    """No scrape needed: the background flush hands the counts over on its own."""
    app = build_app(engine, registry, flush_interval=0.05)
    route = "/api/bags/seals/{seal_no}"
    with TestClient(app) as client:
        for i in range(7):
            assert client.get(f"/api/bags/seals/{i}").status_code == 200
        wait_until(lambda: registry_requests(registry, route) == 7, 30, "7 requests flushed")
        histogram = (
            "tracetrack_http_request_duration_seconds_count",
            {"method": "GET", "route": route},
        )
        wait_until(lambda: registry.get_sample_value(*histogram) == 7, 30, "7 durations flushed")
        assert [t for t in threading.enumerate() if t.name == "metrics-flush"]
        assert client.get("/in-flight").json() == {"value": 1.0}  # exact at any moment
    assert not [t for t in threading.enumerate() if t.name == "metrics-flush"]


def test_a_scrape_and_a_clean_shutdown_flush_what_is_pending(
    engine: Engine, registry: CollectorRegistry
) -> None:
    app = build_app(engine, registry, flush_interval=3600)  # no background flush in this test
    route = "/api/bags/seals/{seal_no}"
    with TestClient(app) as client:
        for i in range(3):
            client.get(f"/api/bags/seals/{i}")
        assert registry_requests(registry, route) == 0  # batched, not written per request
        assert requests_total(scrape(client), "GET", route, "200") == 3  # the scrape flushed
        for i in range(4):
            client.get(f"/api/bags/seals/{i}")
        assert registry_requests(registry, route) == 3
    assert registry_requests(registry, route) == 7  # the lifespan shutdown flushed the rest


def test_a_worker_exiting_cleanly_leaves_every_count_in_the_shared_files(tmp_path: Path) -> None:
    """Multiprocess mode: the last requests reach the worker's files before it exits."""
    shared = tmp_path / "mp"
    shared.mkdir()
    r = run_python(
        """
        import json
        from fastapi import FastAPI
        from fastapi.testclient import TestClient
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector
        from sqlalchemy import create_engine
        from app.instrumentation import instrument
        from common.settings import Settings

        def requests_in_files():
            reg = CollectorRegistry()
            MultiProcessCollector(reg)
            return sum(
                s.value for f in reg.collect() for s in f.samples
                if s.name == "tracetrack_http_requests_total" and s.labels["route"] == "/x"
            )

        app = FastAPI()
        app.get("/x")(lambda: {})
        instrument(app, Settings(), create_engine("sqlite://"), flush_interval=3600)
        with TestClient(app) as client:
            for _ in range(5):
                assert client.get("/x").status_code == 200
            during = requests_in_files()
        print(json.dumps({"during": during, "after": requests_in_files()}))
        """,
        env={ENV: str(shared)},
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1]) == {"during": 0, "after": 5}
    assert not list(shared.glob("gauge_livesum_*.db"))  # its live gauges left with it


def test_metrics_needs_no_token_and_is_not_in_the_openapi_schema(client: TestClient) -> None:
    assert client.get("/metrics").status_code == 200
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]


# --- multiprocess directory ------------------------------------------------------


def run_python(
    code: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_prepare_multiprocess_default_dir_is_private_and_removed_at_exit(tmp_path: Path) -> None:
    stale = tmp_path / f"{DIR_PREFIX}999999999"  # a dead run's leftover
    stale.mkdir()
    (stale / "counter_1.db").write_bytes(b"x")
    r = run_python(
        f"""
        import os
        from app.instrumentation import prepare_multiprocess
        from common.settings import Settings
        path = prepare_multiprocess(Settings(var_dir={str(tmp_path)!r}))
        assert os.environ["{ENV}"] == str(path) and path.is_dir(), path
        assert path.name == "{DIR_PREFIX}" + str(os.getpid())
        print(path)
    """,
        env={},
    )
    assert r.returncode == 0, r.stderr
    assert not Path(r.stdout.strip()).exists()
    assert not stale.exists()


def test_prepare_multiprocess_empties_only_metric_files_of_a_given_dir(tmp_path: Path) -> None:
    shared = tmp_path / "mp"
    shared.mkdir()
    for name in (
        "counter_12.db",
        "gauge_livesum_12.db",
        ACTIVE_USERS_FILE,
        ACTIVE_USERS_FILE + "-wal",
    ):
        (shared / name).write_bytes(b"old")
    (shared / "keep.txt").write_text("not ours")
    saved = os.environ.get(ENV)
    # prepare_multiprocess switches prometheus_client's value class for this whole
    # process; left switched, every later in-process app writes to a directory that
    # no longer exists (TypeError in unrelated tests).
    saved_class = prometheus_values.ValueClass
    try:
        assert prepare_multiprocess(Settings(prometheus_multiproc_dir=shared)) == shared
        assert os.environ[ENV] == str(shared)
    finally:
        if saved is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = saved
        prometheus_values.ValueClass = saved_class
    assert sorted(p.name for p in shared.iterdir()) == ["keep.txt"]


def test_dead_workers_in_progress_gauges_are_dropped(tmp_path: Path) -> None:
    """A worker killed with -9 cannot mark itself dead; the next scrape does it."""
    shared = tmp_path / "mp"
    shared.mkdir()
    worker = spawn(
        [
            sys.executable,
            "-c",
            textwrap.dedent("""
            import sys, time
            from app.metrics import HTTP_REQUESTS, HTTP_REQUESTS_IN_PROGRESS
            HTTP_REQUESTS.labels(method="GET", route="/x", status="200").inc()
            HTTP_REQUESTS_IN_PROGRESS.inc()
            print("ready", flush=True)
            time.sleep(60)
        """),
        ],
        env={**os.environ, ENV: str(shared)},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"

        def collected() -> dict[str, float]:
            reg = CollectorRegistry()
            MultiProcessCollector(reg, str(shared))
            return {s.name: s.value for f in reg.collect() for s in f.samples}

        assert collected()["tracetrack_http_requests_in_progress"] == 1
        compact(shared)  # alive: kept
        assert collected()["tracetrack_http_requests_in_progress"] == 1
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
        compact(shared)
        after = collected()
        assert after.get("tracetrack_http_requests_in_progress", 0) == 0
        assert after["tracetrack_http_requests_total"] == 1  # counts of dead workers stay
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
