"""Bridge benchmarks for `make bench` (docs/architecture.md §7): webhook acknowledgement p99 and
sustained notifications per second to local sinks.

    from bench.bridge import run_bridge_bench
    results = run_bridge_bench(Path("var/bench/bridge"))   # {"ack": ..., "rows": [...]}

Each measurement starts a real `tracetrack bridge` process (SQLite outbox, WAL,
synchronous=FULL: the shipped default) on a free port, with webhook sinks served
from this process, and stops it by PID.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from bench import results
from bench.stats import summarize_ms
from tests.support.sinks import WebhookSink
from tooling.checkout import ROOT
from tooling.procs import ManagedProcess, start_tracetrack, wait_until

TOKEN = "bench-bridge-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ACK_BUDGET_MS = 50.0
THROUGHPUT_BUDGET = 500.0


def _payload(i: int, run: str) -> dict[str, Any]:
    labels = {"alertname": f"Bench{i}", "severity": "critical", "instance": "bench"}
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="Bench{i}",run="{run}"}}',
        "status": "firing",
        "receiver": "critical",
        "groupLabels": {"alertname": f"Bench{i}"},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://am.local",
        "truncatedAlerts": 0,
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": f"bench alert {i}", "description": "benchmark"},
                "startsAt": "2030-01-01T00:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prom.local/graph",
                "fingerprint": f"{run}-{i:08d}",
            }
        ],
    }


def _start_bridge(workdir: Path, hooks: list[str], **env: str) -> tuple[ManagedProcess, str]:
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "alert_config.py"
    config.write_text(
        "ALERT_RECIPIENTS = "
        + repr({"webhook": {"critical": [{"url": h, "format": "json"} for h in hooks]}})
        + "\n"
    )
    proc, port = start_tracetrack(
        "bridge",
        workdir / "bridge.log",
        {
            "TRACETRACK_VAR_DIR": str(workdir / "var"),
            "BRIDGE_DATABASE_URL": f"sqlite:///{workdir / 'bridge.sqlite3'}",
            "BRIDGE_AUTH_TOKEN": TOKEN,
            "ALERT_CONFIG_FILE": str(config),
            "ENABLE_WEBHOOK_ALERTS": "true",
            "ENABLE_EMAIL_ALERTS": "false",
            "ENABLE_SMS_ALERTS": "false",
            "BRIDGE_WATCHDOG_TIMEOUT_SECONDS": "0",
            **env,
        },
        name="bridge",
        ready="/readyz",
    )
    return proc, f"http://127.0.0.1:{port}"


def measure_ack(workdir: Path, posts: int = 2000, concurrency: int = 1) -> dict[str, Any]:
    """Webhook acknowledgement latency (client side, keep-alive) over `posts` distinct
    notifications, while the bridge delivers each to two local webhook sinks."""
    sink = WebhookSink()
    sink.start()
    proc, url = _start_bridge(workdir, [sink.url_for("a"), sink.url_for("b")])
    try:
        run = f"ack{time.time_ns()}"
        with httpx.Client(
            base_url=url, timeout=30, headers=AUTH, limits=httpx.Limits(max_connections=concurrency)
        ) as client:
            for i in range(20):  # warm-up: connections, SQLite pages, code paths
                client.post("/alertmanager/critical", json=_payload(i, run + "w"))
            bodies = [json.dumps(_payload(i, run)).encode() for i in range(posts)]

            def one(body: bytes) -> float:
                t = time.perf_counter()
                resp = client.post(
                    "/alertmanager/critical",
                    content=body,
                    headers={"Content-Type": "application/json"},
                )
                elapsed = time.perf_counter() - t
                if resp.status_code != 200:
                    raise RuntimeError(f"bridge answered {resp.status_code}: {resp.text}")
                return elapsed

            with ThreadPoolExecutor(concurrency) as pool:
                samples = list(pool.map(one, bodies))
        wait_until(lambda: sink.count() >= 2 * (posts + 20), 120, "deliveries after the ack bench")
        return {**summarize_ms(samples), "concurrency": concurrency}
    finally:
        proc.stop()
        sink.stop()


def measure_throughput(
    workdir: Path, notifications: int = 10_000, fanout: int = 10, worker_threads: int = 16
) -> dict[str, Any]:
    """Sustained deliveries per second to a local webhook sink.

    `notifications / fanout` payloads, each to `fanout` webhook recipients. Two figures:
    - drain: the sink holds every request while all payloads are posted (a backlog as
      after an outage), then lets go; deliveries / seconds until the last arrives;
    - end to end: a second run posting while delivering, first post to last delivery.
    """
    out: dict[str, Any] = {"fanout": fanout, "worker_threads": worker_threads}
    for mode in ("drain", "end_to_end"):
        sink = WebhookSink()
        sink.start()
        hooks = [sink.url_for(f"hook{i}") for i in range(fanout)]
        proc, url = _start_bridge(workdir / mode, hooks, BRIDGE_WORKER_THREADS=str(worker_threads))
        try:
            run = f"{mode}{time.time_ns()}"
            payloads = notifications // fanout
            total = payloads * fanout
            if mode == "drain":
                sink.faults.hold()  # requests wait unanswered: a backlog builds up
            with httpx.Client(base_url=url, timeout=30, headers=AUTH) as client:
                t0 = time.perf_counter()
                for i in range(payloads):
                    resp = client.post("/alertmanager/critical", json=_payload(i, run))
                    if resp.status_code != 200:
                        raise RuntimeError(f"bridge answered {resp.status_code}: {resp.text}")
                intake = time.perf_counter() - t0
                if mode == "drain":
                    t0 = time.perf_counter()
                    sink.faults.release(discard=False)
                wait_until(
                    lambda s=sink, n=total: s.count() >= n,  # type: ignore[misc]  # mypy cannot type default-argument lambdas
                    600,
                    f"{total} deliveries",
                    interval=0.01,
                )
                elapsed = time.perf_counter() - t0
            out[mode] = {
                "notifications": total,
                "seconds": round(elapsed, 2),
                "per_second": round(total / elapsed, 1),
                "intake_seconds": round(intake, 2),
            }
        finally:
            proc.stop()
            sink.stop()
    return out


def _row(name: str, value: str, budget: str, ok: bool, how: str) -> str:
    return f"| {name} | {value} | {budget} | {'within' if ok else '**over**'} | {how} |"


def run_bridge_bench(
    workdir: Path, posts: int = 2000, notifications: int = 10_000
) -> dict[str, Any]:
    ack = measure_ack(workdir / "ack", posts)
    ack4 = measure_ack(workdir / "ack4", posts, concurrency=4)
    tp = measure_throughput(workdir / "throughput", notifications)
    rows = [
        _row(
            "Alert bridge webhook ack, p99",
            f"{ack['p99_ms']} ms (p50 {ack['p50_ms']})",
            f"< {ACK_BUDGET_MS:.0f} ms",
            ack["p99_ms"] < ACK_BUDGET_MS,
            f"{ack['n']} sequential Alertmanager-shaped posts (distinct notifications, 2 webhook "
            "deliveries each, delivered meanwhile); stored in SQLite with synchronous=FULL "
            "before the 200; client-side",
        ),
        _row(
            "Alert bridge webhook ack, p99 at 4 concurrent posts",
            f"{ack4['p99_ms']} ms (p50 {ack4['p50_ms']})",
            f"< {ACK_BUDGET_MS:.0f} ms",
            ack4["p99_ms"] < ACK_BUDGET_MS,
            "as above, 4 client threads",
        ),
        _row(
            "Alert bridge sustained delivery (backlog drain)",
            f"{tp['drain']['per_second']} notifications/s",
            f">= {THROUGHPUT_BUDGET:.0f}/s",
            tp["drain"]["per_second"] >= THROUGHPUT_BUDGET,
            f"{tp['drain']['notifications']} webhook deliveries "
            f"({tp['drain']['notifications'] // tp['fanout']} stored notifications x "
            f"{tp['fanout']} recipients) to a local sink, timed from the sink accepting to "
            f"the last delivery; {tp['worker_threads']} worker threads, each outcome "
            "committed (group commit)",
        ),
        _row(
            "Alert bridge delivery while receiving",
            f"{tp['end_to_end']['per_second']} notifications/s",
            f">= {THROUGHPUT_BUDGET:.0f}/s",
            tp["end_to_end"]["per_second"] >= THROUGHPUT_BUDGET,
            "as above, posting and delivering at once: first post to last delivery "
            f"(posting took {tp['end_to_end']['intake_seconds']} s)",
        ),
    ]
    return {"ack": ack, "ack_concurrent": ack4, "throughput": tp, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the alert bridge's ack time and throughput")
    parser.add_argument("workdir", type=Path, nargs="?", default=ROOT / "var" / "bench" / "bridge")
    results.add_record_flag(parser)
    args = parser.parse_args(argv)
    out = run_bridge_bench(args.workdir)
    results.finish("bridge", out, args, "bench.bridge", argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
