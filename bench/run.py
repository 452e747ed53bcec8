"""`make bench`: seed 5,000,000 bags into a fresh PostgreSQL, then measure every budget
of docs/architecture.md §7 that the current code base can measure, record each part as
it is measured (bench/results/<part>.json) and render BENCHMARKS.md (bench/report.py).

    .venv/bin/python -m bench.run [--bags 5000000] [--out BENCHMARKS.md]

Everything runs on this machine over loopback; each service is started here on a free
port and stopped by PID at the end. A part that fails leaves the others recorded; parts
this run does not measure (a section another bench records) keep their rows.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from app.db import migrate
from app.seed import seed_database
from bench import report
from bench.breach_to_delivery import measure_breach_to_delivery
from bench.bridge import run_bridge_bench
from bench.capacity import capacity_search, vacuum_analyze
from bench.cpu_per_request import run_against
from bench.exporter_scrape import measure_scrape
from bench.ha import PARTS, record_parts, run_all
from bench.instrumentation_overhead import measure_overhead
from bench.oncall import measure_oncall
from bench.oncall import record_parts as record_oncall
from bench.report import _row
from bench.report_render import measure_report_render
from bench.results import record, without_rows
from bench.stats import summarize_ms, time_calls
from common.topology import APP_JOB, EXPORTER_JOB
from tooling.checkout import ROOT
from tooling.pgserver import PostgresServer
from tooling.procs import (
    TRACETRACK,
    ManagedProcess,
    start_redis,
    start_tracetrack,
)

BENCH_PASSWORD = "bench-password-1"


def explain_plans(url: str) -> dict[str, str]:
    engine = sa.create_engine(url)
    queries: dict[str, tuple[str, dict[str, Any]]] = {
        "lookup by QR": ("SELECT * FROM bags WHERE qr_id = 'C0002500002'", {}),
        "search by QR prefix": (
            "SELECT * FROM bags WHERE qr_id >= 'C000250' AND qr_id < 'C000250\U0010ffff' "
            "ORDER BY qr_id LIMIT 51",
            {},
        ),
        "search by status, next page": (
            "SELECT * FROM bags WHERE status = 'lost' AND qr_id > 'C0001000000' "
            "ORDER BY qr_id LIMIT 51",
            {},
        ),
        "scans today": (
            "SELECT count(*) FROM scans WHERE scanned_at >= date_trunc('day', now())",
            {},
        ),
    }
    out = {}
    with engine.connect() as conn:
        for name, (sql, params) in queries.items():
            rows = conn.execute(sa.text("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql), params)
            out[name] = "\n".join(r[0] for r in rows)
    engine.dispose()
    return out


def add_admin(url: str) -> None:
    subprocess.run(
        [TRACETRACK, "user", "add", "bench-admin", "--role", "admin", "--password-stdin"],
        input=BENCH_PASSWORD + "\n",
        text=True,
        check=True,
        capture_output=True,
        env={**os.environ, "DATABASE_URL": url},
    )


def measure_api(base: str, n_bags: int, n: int) -> dict[str, Any]:
    rng = random.Random(7)
    with httpx.Client(base_url=base, timeout=30) as client:
        tok = client.post(
            "/api/auth/login", json={"username": "bench-admin", "password": BENCH_PASSWORD}
        ).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {tok}"

        def qr() -> str:
            bag_id = rng.randint(1, n_bags)
            return f"{'P' if bag_id % 10 == 1 else 'C'}{bag_id:010d}"

        def lookup() -> None:
            r = client.get(f"/api/bags/{qr()}")
            assert r.status_code == 200, r.text

        def search() -> None:
            r = client.get("/api/bags", params={"q": qr()[:9], "limit": 50})
            assert r.status_code == 200 and r.json()["items"], r.text

        def search_status() -> None:
            r = client.get("/api/bags", params={"status": "delivered", "q": qr()[:7], "limit": 50})
            assert r.status_code == 200, r.text

        def metrics() -> None:
            assert client.get("/metrics").status_code == 200

        return {
            "lookup": summarize_ms(time_calls(lookup, n)),
            "search": summarize_ms(time_calls(search, n)),
            "search_status": summarize_ms(time_calls(search_status, n // 2)),
            "metrics": summarize_ms(time_calls(metrics, 200)),
        }


def seed_rows(seed: dict[str, Any]) -> list[str]:
    return [
        _row(
            f"Seed {seed['bags']:,} bags + {seed['scans']:,} scans + {seed['bills']:,} bills",
            f"{seed['seconds']} s",
            "< 120 s",
            seed["seconds"] < 120,
            "`tracetrack seed` code path (COPY into empty tables, indexes rebuilt after); "
            f"phases: {', '.join(f'{k} {v} s' for k, v in seed['phases'].items())}",
        )
    ]


def api_rows(api: dict[str, Any]) -> list[str]:
    how = (
        f"{api['lookup']['n']} sequential requests over loopback keep-alive to the app "
        "(2 workers, Redis cache), random QR ids across all bags (mostly cache misses, so "
        "the database path); client-side, so an upper bound of server time"
    )
    lookup, search, status, metrics = (
        api["lookup"],
        api["search"],
        api["search_status"],
        api["metrics"],
    )
    return [
        _row(
            "Bag lookup by QR, p95",
            f"{lookup['p95_ms']} ms (p50 {lookup['p50_ms']})",
            "< 5 ms",
            lookup["p95_ms"] < 5,
            how,
        ),
        _row(
            "Search by QR prefix, p95 (limit 50)",
            f"{search['p95_ms']} ms (p50 {search['p50_ms']})",
            "< 50 ms",
            search["p95_ms"] < 50,
            "as above, `GET /api/bags?q=<9-char prefix>&limit=50`",
        ),
        _row(
            "Search by status + prefix, p95",
            f"{status['p95_ms']} ms",
            "< 50 ms",
            status["p95_ms"] < 50,
            "`GET /api/bags?status=delivered&q=<7-char prefix>&limit=50`",
        ),
        _row(
            "App `/metrics`, p99",
            f"{metrics['p99_ms']} ms (p50 {metrics['p50_ms']})",
            "< 20 ms",
            metrics["p99_ms"] < 20,
            f"{metrics['n']} scrapes after the load above (2 workers, multiprocess mode)",
        ),
    ]


def exporter_rows(exp: dict[str, Any], bags: int) -> list[str]:
    p99 = exp.get("p99_ms")
    p99_text = f"{p99:.1f}" if isinstance(p99, float) else p99
    return [
        _row(
            f"Exporter scrape at {bags:,} bags, p99",
            f"{p99_text} ms (p50 {exp.get('p50_ms', 0):.1f})",
            "< 50 ms",
            p99 is not None and p99 < 50,
            f"{exp.get('n', '?')} sequential scrapes of the exporter's `/metrics`",
        )
    ]


EXPLAIN_INTRO = (
    "`EXPLAIN (ANALYZE, BUFFERS)` of the queries behind the lookup, the searches and the"
    ' exporter\'s "scans today", on the seeded database. The exporter does not run the full'
    ' "scans today" count on every scrape: it recounts the day up to a sealed boundary in'
    " the background and counts only the rows after it per scrape (`exporter/daycount.py`),"
    " which is why its scrape stays fast although the seeder puts 5 % of all scans in today:"
)


def explain_text(plans: dict[str, str]) -> str:
    blocks = "\n\n".join(f"**{name}**\n\n```\n{plan}\n```" for name, plan in plans.items())
    return f"{EXPLAIN_INTRO}\n\n{blocks}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bags", type=int, default=5_000_000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=report.OUT)
    parser.add_argument("--results", type=Path, default=report.RESULTS_DIR)
    parser.add_argument("--workdir", type=Path, default=ROOT / "var" / "bench")
    args = parser.parse_args(argv)

    if args.workdir.exists():
        shutil.rmtree(args.workdir)
    args.workdir.mkdir(parents=True)
    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "bags": args.bags,
    }

    def save(part: str, rows: list[str], **kw: Any) -> None:
        raw = without_rows(results[part])
        record(part, rows=rows, raw=raw, command="make bench", directory=args.results, **kw)

    procs: list[ManagedProcess] = []
    pg = PostgresServer(args.workdir / "pg").start()
    try:
        url = pg.create_database("bench")
        migrate(url)
        print(f"seeding {args.bags:,} bags...", flush=True)
        t = time.perf_counter()
        stats = seed_database(url, bags=args.bags, progress=True)
        results["seed"] = {
            "seconds": round(time.perf_counter() - t, 1),
            "bags": stats.bags,
            "scans": stats.scans,
            "bills": stats.bills,
            "phases": {k: round(v, 1) for k, v in stats.seconds.items()},
        }
        print(stats.summary(), flush=True)
        save("seed", seed_rows(results["seed"]))
        vacuum_analyze(url)  # the guide's weekly maintenance, as a running database has had
        results["explain"] = explain_plans(url)
        save(
            "explain",
            [],
            section=f"Query plans at {args.bags:,} bags",
            text=explain_text(results["explain"]),
        )
        add_admin(url)

        redis_proc, redis_port = start_redis(args.workdir / "redis")
        procs.append(redis_proc)
        env = {
            "DATABASE_URL": url,
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "TRACETRACK_VAR_DIR": str(args.workdir),
        }
        app, app_port = start_tracetrack(
            "app", args.workdir / "app.log", env, args=["--workers", "2"], name="app", timeout=120
        )
        procs.append(app)
        print("measuring the API...", flush=True)
        results["api"] = measure_api(f"http://127.0.0.1:{app_port}", args.bags, args.requests)
        save("api", api_rows(results["api"]))

        exp, exp_port = start_tracetrack(
            "exporter", args.workdir / "exporter.log", env, name="exporter", ready="/metrics"
        )
        procs.append(exp)
        print("measuring the exporter...", flush=True)
        results["exporter"] = measure_scrape(f"http://127.0.0.1:{exp_port}/metrics", 300)
        save("exporter", exporter_rows(results["exporter"], args.bags))

        print("capacity search with the shipped locustfile (1000 users first)...", flush=True)
        results["capacity"] = capacity_search(
            f"http://127.0.0.1:{app_port}",
            args.bags,
            workdir=args.workdir / "capacity",
            pids={"app": app.pid, "postgresql": pg.pid, "redis": redis_proc.pid},
            # A real Prometheus evaluates the shipped rules on what the load produces.
            targets={APP_JOB: [f"127.0.0.1:{app_port}"], EXPORTER_JOB: [f"127.0.0.1:{exp_port}"]},
        )
        save("capacity", results["capacity"]["rows"])

        app.stop()
        print("measuring CPU per request against the floors...", flush=True)
        results["cpu_per_request"] = run_against(
            url,
            bags=args.bags,
            workdir=args.workdir / "cpu",
            redis_url=env["REDIS_URL"],
            pg_pid=pg.pid,
            redis_pid=redis_proc.pid,
        )
        save("cpu_per_request", results["cpu_per_request"]["rows"])

        print("measuring instrumentation overhead...", flush=True)
        results["overhead"] = measure_overhead(database_url=url, workdir=args.workdir)
        save("overhead", results["overhead"]["rows"])

        print("measuring the alert bridge...", flush=True)
        results["bridge"] = run_bridge_bench(args.workdir / "bridge")
        save("bridge", results["bridge"]["rows"])

        print("measuring breach to delivery on every channel...", flush=True)
        results["breach"] = measure_breach_to_delivery(args.workdir / "breach", url)
        save("breach", results["breach"]["rows"])

        print("measuring the dead man's switch and a storm...", flush=True)
        results["oncall"] = measure_oncall(args.workdir / "oncall")
        record_oncall(results["oncall"], "make bench", args.results)

        print("measuring HA and capacity (docs/scaling.md)...", flush=True)
        results["ha"] = run_all(args.workdir / "ha", set(PARTS))
        record_parts(results["ha"], args.results)

        print("timing the weekly report over eight days of history...", flush=True)
        results["report_render"] = measure_report_render(args.workdir / "report_render")
        save("report_render", results["report_render"]["rows"])
    finally:
        for proc in reversed(procs):
            proc.stop()
        pg.stop()
        # What was measured is recorded even when a later part failed.
        report.write(args.out, args.results)
        print(f"wrote {args.out}")

    (args.workdir / "results.json").write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
