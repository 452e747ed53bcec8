"""Worker churn: the metric files of dead workers are folded into archives
(app/instrumentation/compaction.py), so the files a scrape reads stay few after any
number of worker restarts, while every total stays exactly what the workers counted.

Dead workers are real processes writing through the app's own metric objects in
prometheus_client's multiprocess mode (forked children of a subprocess, 100 of them in
a second or two); the last test kills real uvicorn workers of `tracetrack app`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import httpx
import psutil
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from app.instrumentation import compaction
from app.instrumentation.compaction import ChurnSafeCollector, compact, scrape_lock
from app.instrumentation.multiproc import ENV
from tests.support.appkit import start_app_process
from tooling.checkout import ROOT
from tooling.procs import spawn, wait_until

# Each child is one short-lived worker: counts requests, observes latencies, reports a
# cache backend and a request in progress, then dies (os._exit: no clean shutdown).
WORKERS = textwrap.dedent("""
    import os, sys, time
    from app.metrics import CACHE_BACKEND, HTTP_REQUEST_DURATION, HTTP_REQUESTS
    from app.metrics import HTTP_REQUESTS_IN_PROGRESS
    n, pause = int(sys.argv[1]), float(sys.argv[2])
    for i in range(n):
        pid = os.fork()
        if pid == 0:
            for _ in range(3):
                HTTP_REQUESTS.labels(method="GET", route="/api/bags/{qr_id}", status="200").inc()
            HTTP_REQUEST_DURATION.labels(method="GET", route="/api/bags/{qr_id}").observe(0.004)
            HTTP_REQUESTS.labels(method="POST", route="/api/scans", status="201").inc(i)
            CACHE_BACKEND.labels(backend="redis").set(i)
            HTTP_REQUESTS_IN_PROGRESS.inc()
            os._exit(0)
        os.waitpid(pid, 0)
        time.sleep(pause)
""")


def run_workers(shared: Path, n: int, pause: float = 0.0) -> subprocess.Popen[str]:
    return spawn(
        [sys.executable, "-c", WORKERS, str(n), str(pause)],
        env={**os.environ, ENV: str(shared)},
        cwd=ROOT,
        text=True,
    )


def scrape(shared: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """What /metrics would report: the app's scrape path (compact, then read under the lock)."""
    compact(shared)
    with scrape_lock(shared):
        registry = CollectorRegistry()
        ChurnSafeCollector(registry, str(shared))
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in registry.collect()
            for s in family.samples
        }


def value(metrics: dict, name: str, **labels: str) -> float:
    return float(metrics.get((name, tuple(sorted(labels.items()))), 0.0))


BAGS = {"method": "GET", "route": "/api/bags/{qr_id}", "status": "200"}
SCANS = {"method": "POST", "route": "/api/scans", "status": "201"}


def expected(n: int) -> dict[str, float]:
    return {"bags": 3.0 * n, "scans": float(sum(range(n))), "observations": float(n)}


def totals(metrics: dict) -> dict[str, float]:
    return {
        "bags": value(metrics, "tracetrack_http_requests_total", **BAGS),
        "scans": value(metrics, "tracetrack_http_requests_total", **SCANS),
        "observations": value(
            metrics,
            "tracetrack_http_request_duration_seconds_count",
            method="GET",
            route="/api/bags/{qr_id}",
        ),
    }


def test_a_hundred_dead_workers_fold_into_one_file_per_type(tmp_path: Path) -> None:
    shared = tmp_path / "mp"
    shared.mkdir()
    assert run_workers(shared, 100).wait(120) == 0
    files = list(shared.glob("*.db"))
    assert len(files) >= 400  # counter, histogram, two gauges per dead worker

    uncompacted = CollectorRegistry()
    MultiProcessCollector(uncompacted, str(shared))
    before = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in uncompacted.collect()
        for s in f.samples
    }
    after = scrape(shared)
    assert totals(after) == expected(100) == totals(before)
    # Every histogram bucket and sum survives, not only the count.
    histogram = {k: v for k, v in before.items() if k[0].startswith("tracetrack_http_request_d")}
    assert histogram and all(after[k] == v for k, v in histogram.items())
    # The newest cache-backend value wins, as with the workers' own files.
    assert value(after, "tracetrack_cache_backend", backend="redis") == 99
    # A dead worker has nothing in progress.
    assert value(after, "tracetrack_http_requests_in_progress") == 0
    assert sorted(p.name for p in shared.glob("*.db")) == [
        "counter_archive.db",
        "gauge_mostrecent_archive.db",
        "histogram_archive.db",
    ]
    # More deaths fold into the same archives.
    assert run_workers(shared, 10).wait(60) == 0
    more = scrape(shared)
    assert totals(more)["bags"] == 3.0 * 110
    assert len(list(shared.glob("*.db"))) == 3


def test_scrapes_during_churn_never_see_a_total_go_back_or_double(tmp_path: Path) -> None:
    """Workers die one after another while two scrapers (as two app workers would)
    compact and read concurrently: each counter only ever grows, and ends exact."""
    shared = tmp_path / "mp"
    shared.mkdir()
    n = 60
    workers = run_workers(shared, n, pause=0.01)
    problems: list[str] = []
    done = threading.Event()

    def scraper() -> None:
        last = 0.0
        while not done.is_set():
            try:
                bags = totals(scrape(shared))["bags"]
            except Exception as exc:  # noqa: BLE001 - a failed scrape is a finding too
                problems.append(f"scrape failed: {exc!r}")
                return
            if bags < last or bags > 3 * n:
                problems.append(f"bags went from {last} to {bags}")
            last = bags

    threads = [threading.Thread(target=scraper) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        assert workers.wait(120) == 0
    finally:
        done.set()
        for t in threads:
            t.join(30)
    assert not problems, problems[:5]
    assert totals(scrape(shared)) == expected(n)


@pytest.mark.parametrize("crash_at", [1, 2, 3])
def test_a_compaction_killed_half_way_is_finished_or_undone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crash_at: int
) -> None:
    """os.replace fails on its `crash_at`-th call (1: the journal, uncommitted; 2 and
    3: committed, archives half renamed): the next compaction still ends exact."""
    shared = tmp_path / "mp"
    shared.mkdir()
    assert run_workers(shared, 20).wait(60) == 0
    real_replace = os.replace
    calls = 0

    def crashing_replace(src: str | Path, dst: str | Path) -> None:
        nonlocal calls
        calls += 1
        if calls == crash_at:
            raise KeyboardInterrupt("killed here")
        real_replace(src, dst)

    monkeypatch.setattr(compaction.os, "replace", crashing_replace)
    with pytest.raises(KeyboardInterrupt):
        compact(shared)
    monkeypatch.setattr(compaction.os, "replace", real_replace)
    assert totals(scrape(shared)) == expected(20)
    assert not list(shared.glob("*.new")) and not (shared / compaction.JOURNAL).exists()
    assert len(list(shared.glob("*.db"))) == 3


def worker_pids(master: int) -> set[int]:
    return {c.pid for c in psutil.Process(master).children(recursive=True) if c.is_running()}


def healthz_total(client: httpx.Client) -> float:
    text = client.get("/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("tracetrack_http_requests_total{") and 'route="/healthz"' in line
    )


def test_killed_uvicorn_workers_leave_counts_intact_and_files_few(
    tmp_path: Path, database_url: str
) -> None:
    shared = tmp_path / "mp"
    proc, port = start_app_process(
        tmp_path / "app",
        database_url,
        workers=2,
        env={"PROMETHEUS_MULTIPROC_DIR": str(shared)},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
            sent = 0
            last = 0.0
            for _ in range(5):
                for _ in range(20):
                    assert client.get("/healthz").status_code == 200
                sent += 20

                # A worker hands its counts to its files once a second (tally.py): what
                # it handed over must survive kill -9, not what it was still holding.
                def flushed(n: int = sent) -> bool:
                    return healthz_total(client) >= n

                wait_until(flushed, 30, f"{sent} requests flushed")
                before = worker_pids(proc.pid)
                victim = sorted(before)[-1]
                os.kill(victim, signal.SIGKILL)
                wait_until(
                    lambda b=before, v=victim: (  # type: ignore[misc]  # mypy cannot type default-argument lambdas
                        len(worker_pids(proc.pid) - b) == 1 and v not in worker_pids(proc.pid)
                    ),
                    60,
                    "uvicorn to replace the killed worker",
                )
                wait_until(lambda: client.get("/healthz").status_code == 200, 60, "a worker")
                healthz = healthz_total(client)
                assert healthz >= sent and healthz >= last, (healthz, sent, last)
                last = healthz
            # Two live workers' files plus one archive per type, however many died.
            names = sorted(p.name for p in shared.glob("*.db"))
            assert len(names) <= 2 * 4 + 3, names
            assert "counter_archive.db" in names
    finally:
        proc.stop()
