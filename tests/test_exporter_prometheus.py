"""A real Prometheus scrapes `tracetrack exporter` and `tracetrack app`, both up."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.db import migrate
from tests.support.exporterkit import start_exporter_process
from tooling.pgserver import PostgresServer
from tooling.procs import ManagedProcess, free_port, http_ok, prometheus_process, wait_until

COLLECTORS = ("system", "postgres", "business", "redis")


def prometheus_config(targets: dict[str, int]) -> str:
    jobs = "".join(
        f"  - job_name: {job}\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        for job, port in targets.items()
    )
    return (
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "  evaluation_interval: 1s\nscrape_configs:\n" + jobs
    )


def query(prom_port: int, promql: str) -> list[dict[str, Any]]:
    r = httpx.get(f"http://127.0.0.1:{prom_port}/api/v1/query", params={"query": promql}, timeout=5)
    r.raise_for_status()
    return list(r.json()["data"]["result"])


def scalar(prom_port: int, promql: str) -> float | None:
    result = query(prom_port, promql)
    return float(result[0]["value"][1]) if result else None


@pytest.fixture(scope="module")
def stack(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    from tooling.procs import start_redis

    workdir = tmp_path_factory.mktemp("promstack")
    database_url = postgres.create_database(f"t_{uuid.uuid4().hex[:12]}")
    migrate(database_url)
    procs: list[ManagedProcess] = []
    state: dict[str, Any] = {"app_error": None}
    try:
        redis, redis_port = start_redis(workdir / "redis")
        procs.append(redis)
        exporter, exporter_port = start_exporter_process(
            workdir, database_url, redis_url=f"redis://127.0.0.1:{redis_port}/0"
        )
        procs.append(exporter)
        try:
            from tests.support.appkit import start_app_process

            app, app_port = start_app_process(workdir, database_url)
            procs.append(app)
        except Exception as exc:  # noqa: BLE001 - reported by the app's own test below
            state["app_error"] = f"{type(exc).__name__}: {exc}"
            app_port = free_port()
        config = workdir / "prometheus.yml"
        config.write_text(prometheus_config({"exporter": exporter_port, "app": app_port}))
        prom_port = free_port()
        prom = prometheus_process(config, workdir / "prom", prom_port).start()
        procs.append(prom)
        prom.wait_ready(http_ok(f"http://127.0.0.1:{prom_port}/-/ready"), timeout=60)
        state.update(prom_port=prom_port, exporter=exporter, workdir=workdir)
        yield state
    finally:
        for proc in reversed(procs):
            proc.stop()


def test_prometheus_scrapes_the_exporter_with_every_collector_up(stack: dict[str, Any]) -> None:
    port = stack["prom_port"]
    try:
        wait_until(lambda: scalar(port, 'up{job="exporter"}') == 1, 30, "exporter target up")
        wait_until(
            lambda: (
                scalar(port, 'count(tracetrack_exporter_collector_up{job="exporter"} == 1)')
                == len(COLLECTORS)
            ),
            30,
            "every collector up",
        )
    except TimeoutError:
        raise AssertionError(f"exporter log:\n{stack['exporter'].log_tail()}") from None
    # up == 1 is the proof the scrapes end within Prometheus' scrape timeout (a scrape
    # past it is a failed one); how much room is left is bench/exporter_scrape.py's
    # figure, not a wall-clock bound a busy machine would break.
    assert scalar(port, 'scrape_duration_seconds{job="exporter"}') is not None
    assert (scalar(port, 'tracetrack_db_max_connections{job="exporter"}') or 0) > 0


def test_prometheus_scrapes_the_app(stack: dict[str, Any]) -> None:
    if stack["app_error"]:
        pytest.fail(
            f"`tracetrack app` did not start, so Prometheus cannot scrape it: {stack['app_error']}"
        )
    port = stack["prom_port"]
    wait_until(lambda: scalar(port, 'up{job="app"}') == 1, 30, "app target up")
    assert scalar(port, 'tracetrack_http_requests_in_progress{job="app"}') is not None
