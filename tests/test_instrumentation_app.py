"""The instrumentation of the real app: route templates, and one /metrics for two workers."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from app.main import create_app
from tests.support.appkit import add_user, app_settings, auth, start_app_process, token
from tooling.procs import wait_until

BAG_ROUTE = "/api/bags/{qr_id}"


def registry_count(route: str, status: str, method: str = "GET") -> float:
    return (
        REGISTRY.get_sample_value(
            "tracetrack_http_requests_total", {"method": method, "route": route, "status": status}
        )
        or 0.0
    )


def test_real_routes_are_labelled_by_template(database_url: str, tmp_path: Path) -> None:
    add_user(database_url, "dora", "dispatcher")
    with TestClient(create_app(app_settings(database_url, tmp_path))) as client:
        h = auth(token(client, "dora"))
        for qr in ("P100", "P101"):
            assert (
                client.post(
                    "/api/bags", json={"qr_id": qr, "bag_type": "parent"}, headers=h
                ).status_code
                == 201
            )
        before = {s: registry_count(BAG_ROUTE, s) for s in ("200", "404", "401")}
        scans_before = registry_count("/api/bags/{qr_id}/scans", "200")
        for qr in ("P100", "P101", "P100"):
            assert client.get(f"/api/bags/{qr}", headers=h).status_code == 200
        assert client.get("/api/bags/NOPE1", headers=h).status_code == 404
        assert client.get("/api/bags/P100").status_code == 401
        assert client.get("/api/bags/P100/scans", headers=h).status_code == 200

        # The middleware hands its counts to the metrics in batches (app/instrumentation/tally.py).
        def counted() -> dict[str, float]:
            return {
                **{s: registry_count(BAG_ROUTE, s) - before[s] for s in before},
                "scans": registry_count("/api/bags/{qr_id}/scans", "200") - scans_before,
            }

        expected = {"200": 3, "404": 1, "401": 1, "scans": 1}
        wait_until(lambda: counted() == expected, 30, "the requests flushed to the registry")
        assert registry_count("/api/bags/P100", "200") == 0
        text = client.get("/metrics").text
        assert f'route="{BAG_ROUTE}"' in text and 'route="/api/bags/P100"' not in text
        for name in (
            "tracetrack_active_users",
            "tracetrack_db_pool_connections",
            "tracetrack_cache_backend",
            "tracetrack_http_requests_in_progress",
        ):
            assert name in text, name


def test_metrics_disabled_means_no_metrics_route(database_url: str, tmp_path: Path) -> None:
    app = create_app(app_settings(database_url, tmp_path, metrics_enabled=False))
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/metrics").status_code == 404


# --- two workers --------------------------------------------------------------------


def requests_by_pid(shared: Path, route: str) -> dict[int, float]:
    """Requests to `route` recorded by each worker, read from its own counter file."""
    counts: dict[int, float] = defaultdict(float)
    for f in shared.glob("counter_*.db"):
        pid = int(f.stem.rsplit("_", 1)[1])
        for metric in MultiProcessCollector.merge([str(f)], accumulate=False):
            for s in metric.samples:
                if s.name == "tracetrack_http_requests_total" and s.labels["route"] == route:
                    counts[pid] += s.value
    return dict(counts)


def scrape(client: httpx.Client) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    r = client.get("/metrics")
    assert r.status_code == 200, r.text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def bag_200s(samples: dict) -> float:
    key = frozenset({"method": "GET", "route": BAG_ROUTE, "status": "200"}.items())
    return samples.get(("tracetrack_http_requests_total", key), 0.0)


@pytest.fixture()
def two_worker_app(database_url: str, tmp_path: Path) -> Iterator[tuple[str, Path, object]]:
    shared = tmp_path / "multiproc"
    proc, port = start_app_process(
        tmp_path, database_url, workers=2, env={"PROMETHEUS_MULTIPROC_DIR": str(shared)}
    )
    try:
        yield f"http://127.0.0.1:{port}", shared, proc
    finally:
        proc.stop()


def probe_worker(shared: Path, before: dict[int, float]) -> int:
    """The pid of the one worker whose /healthz count grew since `before`."""
    served: list[int] = []

    def recorded() -> bool:
        now = requests_by_pid(shared, "/healthz")
        served[:] = [pid for pid, n in now.items() if n > before.get(pid, 0)]
        return len(served) == 1

    wait_until(recorded, 30, "the probe request recorded by one worker")
    return served[0]


def connection_per_worker(base: str, shared: Path, workers: int = 2) -> dict[int, httpx.Client]:
    """One keep-alive connection pinned to each worker (a connection stays with the
    worker that accepted it); which worker it is shows in that worker's counter file."""
    pinned: dict[int, httpx.Client] = {}
    spare: list[httpx.Client] = []
    for _ in range(60):
        client = httpx.Client(base_url=base, timeout=10, limits=httpx.Limits(max_connections=1))
        before = requests_by_pid(shared, "/healthz")
        assert client.get("/healthz").status_code == 200
        # A scrape makes the worker answering it hand over its counts at once (tally.py):
        # waiting for its background flush could outlast the keep-alive of the others.
        assert client.get("/metrics").status_code == 200
        served = probe_worker(shared, before)
        if served in pinned:
            spare.append(client)
        else:
            pinned[served] = client
        if len(pinned) == workers:
            break
    for client in spare:
        client.close()
    assert len(pinned) == workers, f"connections only ever reached workers {list(pinned)}"
    return pinned


def test_two_workers_one_metrics_counts_every_request_once(
    database_url: str, two_worker_app
) -> None:
    base, shared, proc = two_worker_app
    users = {name: add_user(database_url, name, "dispatcher") for name in ("ann", "ben", "cat")}
    pinned = connection_per_worker(base, shared)
    try:
        first = next(iter(pinned.values()))
        tokens = {name: token(first, name) for name in users}
        assert (
            first.post(
                "/api/bags", json={"qr_id": "P7", "bag_type": "parent"}, headers=auth(tokens["ann"])
            ).status_code
            == 201
        )
        start = {pid: bag_200s(scrape(c)) for pid, c in pinned.items()}
        assert len(set(start.values())) == 1  # every worker's /metrics agrees
        # ann only reaches the first worker, ben only the second, cat both: counting
        # per worker would say 2, summing the workers' counts 4; the truth is 3.
        a, b = pinned.values()
        plan = [(a, "ann"), (b, "ben"), (a, "cat"), (b, "cat")]
        per_visit = 9
        for client, name in plan:
            for _ in range(per_visit):
                assert client.get("/api/bags/P7", headers=auth(tokens[name])).status_code == 200
        n = per_visit * len(plan)

        # Each worker hands its counts to the shared files within a second (tally.py).
        wait_until(
            lambda: bag_200s(scrape(first)) >= start[next(iter(start))] + n, 30, "all counted"
        )
        by_pid = requests_by_pid(shared, BAG_ROUTE)
        assert sorted(by_pid) == sorted(pinned), by_pid
        assert all(by_pid[pid] >= 2 * per_visit for pid in pinned), by_pid
        for client in pinned.values():  # exactly n, whichever worker answers the scrape
            m = scrape(client)
            assert bag_200s(m) - start[next(iter(start))] == n
            assert m[("tracetrack_active_users", frozenset())] == len(users)
            assert m[("tracetrack_http_requests_in_progress", frozenset())] == 1  # the scrape
    finally:
        for client in pinned.values():
            client.close()

    proc.stop()
    # Workers that exit cleanly remove their live gauges (in progress, pool) themselves.
    assert not list(shared.glob("gauge_livesum_*.db"))
    assert list(shared.glob("counter_*.db"))


def test_active_users_leave_the_window(database_url: str, tmp_path: Path) -> None:
    add_user(database_url, "eve", "dispatcher")
    app = create_app(app_settings(database_url, tmp_path))
    with TestClient(app) as client:
        store: Any = next(
            m.kwargs["active_users"] for m in app.user_middleware if "active_users" in m.kwargs
        )
        h = auth(token(client, "eve"))
        client.get("/api/bags/NONE1", headers=h)
        assert "tracetrack_active_users 1.0" in client.get("/metrics").text
        store.window = 0.2  # instead of waiting 5 minutes
        time.sleep(0.3)
        assert "tracetrack_active_users 0.0" in client.get("/metrics").text


def test_overhead_benchmark_runs_end_to_end(database_url: str, tmp_path: Path) -> None:
    """`make bench` is not run by CI: this keeps its overhead part from rotting (no figures checked)."""
    from bench.instrumentation_overhead import VARIANTS, measure_overhead

    r = measure_overhead(
        database_url,
        tmp_path,
        rounds=2,
        per_round=5,
        warmup=3,
        distinct_bags=20,
        micro_iterations=20,
    )
    assert set(r["variants"]) == set(VARIANTS)
    assert r["requests_per_variant"] == 10 and r["distinct_bags"] == 20
    assert set(r["middleware_us"]) == {"multiprocess", "in_process"}
    assert all("guard" in r["middleware_us"][mode] for mode in r["middleware_us"])
    # Instrumentation overhead, cost against the instrumentator, the security layer's cost.
    assert len(r["rows"]) == 3 and all(
        row.startswith("| ") and row.count(" | ") == 4 for row in r["rows"]
    )
    assert r["rows"][2].startswith("| Security layer")


def test_one_worker_uses_the_same_shared_directory_and_removes_it(
    database_url: str, tmp_path: Path
) -> None:
    proc, port = start_app_process(tmp_path, database_url, workers=1)
    try:
        (shared,) = tmp_path.glob("prometheus-multiproc-*")
        assert shared.name == f"prometheus-multiproc-{proc.pid}"
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            for _ in range(4):
                client.get("/api/bags/P1")  # 401: no token
            wait_until(
                lambda: requests_by_pid(shared, BAG_ROUTE).get(proc.pid) == 4,
                30,
                "the requests in the shared directory",
            )
            text = client.get("/metrics").text
        assert (
            'tracetrack_http_requests_total{method="GET",route="/api/bags/{qr_id}",status="401"} 4.0'
            in text
        )
    finally:
        proc.stop()
    assert not shared.exists()  # removed on SIGTERM
