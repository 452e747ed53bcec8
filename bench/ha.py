"""The capacity and HA figures of docs/scaling.md, measured with the real engines on loopback.

    flock /work/wt/.heavy.lock .venv/bin/python -m bench.ha            # all, updates BENCHMARKS.md
    .venv/bin/python -m bench.ha --only replicas,churn --no-record    # some, print only

- replicas: ten `tracetrack app` replicas (one worker each) behind HAProxy, through
  PgBouncer, under the shipped locustfile; one Prometheus scrapes them at the shipped
  interval with the shipped rules. Series per replica, samples/s, scrape durations,
  Prometheus memory per series (before/after the replicas join), PgBouncer's server
  connections.
- churn: scrape time of a multiprocess directory after 100 dead workers, folded into
  archives (what the app does) and not (what prometheus_client alone does).
- exactly_once: the HA alerting topology (two Prometheus, two clustered Alertmanagers,
  two bridges on one PostgreSQL outbox) delivering a stream of critical breaches while
  an Alertmanager and a bridge are killed -9 at random moments; what every recipient got.

`make bench` runs them too (bench/run.py). Each part is recorded on its own
(bench/results/ha_<part>.json) and rendered in BENCHMARKS.md's "High availability and
capacity" section: `--only` refreshes those parts and keeps the others' rows.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import textwrap
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import psutil

from app.db import migrate
from app.seed import seed_database
from common import topology
from common.settings import Settings
from tooling import haconfig, stackconfig
from tooling.checkout import ROOT
from tooling.pgserver import PostgresServer
from tooling.procs import free_port, start_tracetrack, wait_until

SECTION = "High availability and capacity"  # of BENCHMARKS.md (bench/report.py)
SHIPPED_SCRAPE = "10s"


# --- ten replicas ---------------------------------------------------------------------------


def _prom_value(prom: Any, expr: str) -> float:
    result = prom.query(expr)
    return float(result[0]["value"][1]) if result else 0.0


def simulate_replicas(
    workdir: Path, replicas: int = 10, users: int = 100, seconds: int = 120
) -> dict[str, Any]:
    from bench.locust_load import run_locust
    from tests.support.hakit import start_haproxy, start_pgbouncer, start_victoriametrics
    from tests.support.stack import start_prometheus

    workdir.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"replicas": replicas, "users": users, "seconds": seconds}
    with ExitStack() as stack:
        pg = PostgresServer(workdir / "pg").start()
        stack.callback(pg.stop)
        url = pg.create_database("sim")
        migrate(url)
        bags = 20_000
        seed_database(url, bags=bags, progress=False)
        budget = haconfig.ConnectionBudget(app_replicas=replicas)
        pgb = start_pgbouncer(
            workdir / "pgbouncer",
            db_port=pg.port,
            db_name="sim",
            budget=budget,
            settings=Settings(),
        )
        stack.callback(pgb.proc.stop)
        ports = {}
        for i in range(1, replicas + 1):
            proc, port = start_tracetrack(
                "app",
                workdir / f"app-{i}.log",
                {
                    "DATABASE_URL": pgb.url("sim"),
                    "REDIS_URL": "",
                    "TRACETRACK_VAR_DIR": str(workdir / f"app-{i}"),
                    "TRACETRACK_MIGRATE_ON_START": "false",
                    "TRACETRACK_SECRET_KEY": "bench-secret-key-0123456789-abcdefgh",
                    "TRUSTED_PROXY_HOPS": "1",
                    "DB_STATEMENT_CACHE_SIZE": "0",  # through PgBouncer, as in compose
                },
                args=["--workers", "1"],
                name=f"app-{i}",
                timeout=120,
            )
            stack.callback(proc.stop)
            ports[f"app-{i}"] = port
        lb = start_haproxy(workdir / "haproxy", {n: f"127.0.0.1:{p}" for n, p in ports.items()})
        stack.callback(lb.proc.stop)
        # The rest of one production stack's targets: the exporter (with PgBouncer's
        # pools) and a bridge, so their series are counted too.
        others = {}
        for job, cmd, env in (
            (
                topology.EXPORTER_JOB,
                "exporter",
                {"DATABASE_URL": url, "PGBOUNCER_URL": pgb.dsn("pgbouncer")},
            ),
            (
                topology.BRIDGE_JOB,
                "bridge",
                {
                    "BRIDGE_AUTH_TOKEN": "bench-bridge-token-0123456789",
                    "BRIDGE_DATABASE_URL": pg.dsn("sim"),
                    "BRIDGE_WATCHDOG_TIMEOUT_SECONDS": "0",
                },
            ),
        ):
            proc, port = start_tracetrack(
                cmd,
                workdir / f"{cmd}.log",
                {**env, "TRACETRACK_VAR_DIR": str(workdir / cmd), "REDIS_URL": ""},
                name=job,
                ready="/metrics",
            )
            stack.callback(proc.stop)
            others[job] = [f"127.0.0.1:{port}"]
        vm = start_victoriametrics(workdir / "victoriametrics", SHIPPED_SCRAPE)
        stack.callback(vm.proc.stop)

        # Prometheus alone first (its own series), then with the replicas: the difference
        # in memory per added series is what a replica costs Prometheus.
        prom_port = free_port()
        rules = stackconfig.write_rules(workdir / "rules.yml")
        self_only = {topology.PROMETHEUS_JOB: [f"127.0.0.1:{prom_port}"]}
        prom = start_prometheus(
            workdir / "prometheus",
            port=prom_port,
            targets=self_only,
            rule_files=[rules],
            scrape_interval=SHIPPED_SCRAPE,
            evaluation_interval=SHIPPED_SCRAPE,
            remote_write=[vm.write_url],
        )
        stack.callback(prom.proc.stop)
        time.sleep(35)  # a few scrapes of itself: the baseline settles
        before_series = _prom_value(prom, "prometheus_tsdb_head_series")
        before_rss = psutil.Process(prom.proc.pid).memory_info().rss

        stackconfig.write_prometheus_config(
            prom.config_file,
            targets={
                **self_only,
                **others,
                topology.APP_JOB: [f"127.0.0.1:{p}" for p in ports.values()],
            },
            rule_files=[rules],
            alertmanagers=[],
            remote_write=[vm.write_url],
            scrape_interval=SHIPPED_SCRAPE,
            evaluation_interval=SHIPPED_SCRAPE,
        )
        httpx.post(f"{prom.url}/-/reload", timeout=30).raise_for_status()

        load = run_locust(
            lb.url,
            bags,
            users=users,
            spawn_rate=20,
            duration=f"{seconds}s",
            workdir=workdir / "locust",
        )
        out["locust"] = {
            k: load.get(k) for k in ("aggregate", "error_rate_pct", "machine_cpu_busy_pct")
        }
        pgb_stats = _pgbouncer_servers(pgb)
        time.sleep(25)  # two more scrapes after the load: every series the mix creates
        app = f'job="{topology.APP_JOB}"'
        series = {
            r["metric"]["instance"]: float(r["value"][1])
            for r in prom.query(f"scrape_samples_scraped{{{app}}}")
        }
        durations = prom.query(f"max_over_time(scrape_duration_seconds{{{app}}}[{seconds}s])")
        avg_durations = prom.query(f"avg_over_time(scrape_duration_seconds{{{app}}}[{seconds}s])")
        per_job = {
            job: int(_prom_value(prom, f'sum(scrape_samples_scraped{{job="{job}"}})'))
            for job in (*others, topology.PROMETHEUS_JOB)
        }
        out["series_per_job"] = per_job
        out["victoriametrics"] = _vm_storage(vm)
        after_series = _prom_value(prom, "prometheus_tsdb_head_series")
        after_rss = psutil.Process(prom.proc.pid).memory_info().rss
        rule_series = _prom_value(prom, 'count({__name__=~"[a-z]+:.+"})')
        out.update(
            {
                "samples_per_replica": {k: int(v) for k, v in sorted(series.items())},
                "series_per_replica_mean": round(statistics.mean(series.values()), 1),
                "series_per_replica_max": int(max(series.values())),
                "samples_per_second_per_replica": round(
                    statistics.mean(series.values()) / stackconfig.duration_seconds(SHIPPED_SCRAPE),
                    1,
                ),
                "scrape_seconds_max": round(max(float(r["value"][1]) for r in durations), 4),
                "scrape_seconds_mean": round(
                    statistics.mean(float(r["value"][1]) for r in avg_durations), 4
                ),
                "head_series_before": int(before_series),
                "head_series_after": int(after_series),
                "recording_rule_series": int(rule_series),
                "prometheus_rss_before_mib": round(before_rss / 2**20, 1),
                "prometheus_rss_after_mib": round(after_rss / 2**20, 1),
                "prometheus_bytes_per_added_series": round(
                    (after_rss - before_rss) / max(1.0, after_series - before_series)
                ),
                "pgbouncer": pgb_stats,
                "pgbouncer_budget": {
                    "pool": budget.pool,
                    "reserve": budget.reserve,
                    "max_client_conn": budget.max_client_connections(Settings()),
                },
            }
        )
    return out


def _vm_storage(vm: Any) -> dict[str, Any]:
    """Rows and bytes on disk after a flush: fresh parts, compressed less than merged
    ones will be, so bytes per sample is an upper bound."""
    from prometheus_client.parser import text_string_to_metric_families

    httpx.get(f"{vm.url}/internal/force_flush", timeout=30)
    time.sleep(2)
    text = httpx.get(f"{vm.url}/metrics", timeout=30).text
    rows = size = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            kind = sample.labels.get("type", "")
            if sample.name == "vm_rows" and kind.startswith("storage/"):
                rows += sample.value
            if sample.name == "vm_data_size_bytes" and kind.startswith(("storage/", "indexdb")):
                size += sample.value
    return {
        "rows": int(rows),
        "bytes": int(size),
        "bytes_per_sample": round(size / rows, 2) if rows else None,
    }


def vm_year_storage(
    workdir: Path, series: int = 3600, hours: float = 6.0, seed: int = 15
) -> dict[str, Any]:
    """Disk per sample once VictoriaMetrics has merged its parts, for series shaped like
    ours (synthetic: the ten-replica run is too short to merge): 85 % counters (request
    counts and histogram buckets, each at its own rate, many nearly flat), 15 % gauges
    moving a little; one sample per 10 s with a few ms of scrape jitter."""
    import numpy as np

    from tests.support.hakit import start_victoriametrics

    rng = np.random.default_rng(seed)
    points = int(hours * 3600 / 10)
    start_ms = int((time.time() - hours * 3600) * 1000)
    stamps = start_ms + np.arange(points) * 10_000
    vm = start_victoriametrics(workdir / "vm", SHIPPED_SCRAPE)
    try:
        lines = []
        for i in range(series):
            jitter = rng.integers(-5, 6, points)
            if i % 100 < 85:
                rate = 10 ** rng.uniform(-2, 1.7)  # 0.01 to 50 per scrape
                values = np.cumsum(rng.poisson(rate, points)).astype(float)
            else:
                values = np.round(50 + np.cumsum(rng.normal(0, 0.5, points)), 3)
            lines.append(
                json.dumps(
                    {
                        "metric": {"__name__": f"sim_metric_{i % 120}", "series": str(i)},
                        "values": values.tolist(),
                        "timestamps": (stamps + jitter).tolist(),
                    }
                )
            )
        httpx.post(
            f"{vm.url}/api/v1/import", content="\n".join(lines).encode(), timeout=600
        ).raise_for_status()
        httpx.get(f"{vm.url}/internal/force_flush", timeout=60)
        httpx.get(f"{vm.url}/internal/force_merge", timeout=600)
        time.sleep(10)  # the merge runs in the background
        out = _vm_storage(vm)
    finally:
        vm.proc.stop()
    samples = series * points
    out.update({"series": series, "hours": hours, "imported": samples})
    if out.get("bytes"):
        out["bytes_per_sample"] = round(out["bytes"] / samples, 3)
    return out


def _pgbouncer_servers(pgb: Any) -> dict[str, Any]:
    import psycopg2

    conn = psycopg2.connect(pgb.dsn("pgbouncer"))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW POOLS")
            cols = [c.name for c in cur.description]
            pools = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    finally:
        conn.close()
    sim = [p for p in pools if p["database"] == "sim"]
    return {
        "client_connections": sum(p["cl_active"] + p["cl_waiting"] for p in sim),
        "server_connections": sum(
            p["sv_active"] + p["sv_idle"] + p["sv_used"] + p["sv_tested"] + p["sv_login"]
            for p in sim
        ),
    }


# --- worker churn ---------------------------------------------------------------------------

CHURN = textwrap.dedent("""
    import os, sys
    from app.metrics import CACHE_BACKEND, CACHE_REQUESTS, HTTP_REQUEST_DURATION, HTTP_REQUESTS
    from app.metrics import HTTP_REQUESTS_IN_PROGRESS, SCANS
    routes = ["/api/bags/{qr_id}", "/api/bags", "/api/scans", "/api/bills", "/healthz"]
    for i in range(int(sys.argv[1])):
        pid = os.fork()
        if pid == 0:
            for route in routes:
                for status in ("200", "201", "404", "401"):
                    HTTP_REQUESTS.labels(method="GET", route=route, status=status).inc()
                HTTP_REQUEST_DURATION.labels(method="GET", route=route).observe(0.003)
            CACHE_REQUESTS.labels(result="hit").inc()
            CACHE_BACKEND.labels(backend="memory").set(1)
            SCANS.inc()
            HTTP_REQUESTS_IN_PROGRESS.inc()
            os._exit(0)
        os.waitpid(pid, 0)
""")


def _time_scrapes(collect: Any, n: int = 30) -> dict[str, float]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        collect()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {"p50_ms": round(times[len(times) // 2], 2), "max_ms": round(times[-1], 2)}


def measure_churn(workdir: Path, dead: int = 100) -> dict[str, Any]:
    from prometheus_client import CollectorRegistry, generate_latest

    from app.instrumentation.compaction import ChurnSafeCollector, compact, scrape_lock
    from app.instrumentation.multiproc import ENV

    out: dict[str, Any] = {"dead_workers": dead}
    for variant in ("prometheus_client alone", "folded (the app)"):
        shared = workdir / re.sub(r"\W+", "-", variant)
        shared.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-c", CHURN, "0"], env={**os.environ, ENV: str(shared)}, check=True
        )
        registry = CollectorRegistry()
        ChurnSafeCollector(registry, str(shared))

        def scrape(d: Path = shared, r: Any = registry) -> None:
            compact(d)
            with scrape_lock(d):
                generate_latest(r)

        def plain(r: Any = registry) -> None:
            generate_latest(r)

        collect = plain if variant.startswith("prometheus_client") else scrape
        fresh = _time_scrapes(collect)
        subprocess.run(
            [sys.executable, "-c", CHURN, str(dead)],
            env={**os.environ, ENV: str(shared)},
            check=True,
        )
        after = _time_scrapes(collect)
        out[variant] = {
            "fresh": fresh,
            f"after {dead} dead": after,
            "files": len(list(shared.glob("*.db"))),
        }
    return out


# --- exactly once across HA faults ------------------------------------------------------------


def exactly_once(workdir: Path, rounds: int = 3, breaches: int = 8) -> dict[str, Any]:
    """Each round: a fresh HA alerting stack, `breaches` critical breaches one after
    another; an Alertmanager and a bridge killed -9 at random moments during the stream
    (no fault injected at the receivers: the kill lands wherever it lands)."""
    from tests.support.hakit import GaugeTarget, pages_by_recipient, start_ha_alerting
    from tests.support.sinks import SmtpSink, TwilioSink, WebhookSink

    totals: Counter[str] = Counter()
    per_round = []
    rng = random.Random(15)
    pg = PostgresServer(workdir / "pg").start()
    try:
        for r in range(rounds):
            rdir = workdir / f"round{r}"
            rdir.mkdir(parents=True)
            outbox = pg.create_database(f"outbox{r}").replace("+psycopg2", "")
            with ExitStack() as stack:
                smtp, twilio, hooks = (
                    SmtpSink().start(),
                    TwilioSink().start(),
                    WebhookSink().start(),
                )
                stack.callback(smtp.stop)
                stack.callback(twilio.stop)
                stack.callback(hooks.stop)
                target = GaugeTarget("ha_breach", ("n",))
                stack.callback(target.stop)
                ha = start_ha_alerting(
                    rdir,
                    stack,
                    outbox_url=outbox,
                    smtp=smtp,
                    twilio=twilio,
                    hooks=hooks,
                    breach_target=target,
                )
                bridges, ams, recipients = ha.bridges, ha.alertmanagers, ha.recipients
                kill_am = rng.randrange(1, breaches - 1)
                kill_bridge = rng.randrange(1, breaches - 1)
                start = time.monotonic()
                for n in range(breaches):
                    target.gauge.labels(n=str(n)).set(1)
                    # The kills land inside the stream, at a random moment after a breach.
                    gap = rng.uniform(0.5, 2.5)
                    t0 = time.monotonic()
                    actions = []
                    if n == kill_am:
                        actions.append((rng.uniform(0, gap), ams[0].proc.kill9))
                    if n == kill_bridge:
                        actions.append((rng.uniform(0, gap), bridges[0].kill9))
                    for at, kill in sorted(actions, key=lambda a: a[0]):
                        time.sleep(max(0.0, t0 + at - time.monotonic()))
                        kill()
                    time.sleep(max(0.0, t0 + gap - time.monotonic()))

                def complete(sinks: tuple[Any, ...] = (smtp, twilio, hooks, recipients)) -> bool:
                    pages = pages_by_recipient(*sinks)
                    return all(set(c) >= set(range(breaches)) for c in pages.values())

                try:
                    wait_until(complete, 180, "every breach at every recipient")
                    bridges[1].wait_settled(120)
                except TimeoutError:
                    pass  # counted below as lost
                pages = pages_by_recipient(smtp, twilio, hooks, recipients)
                expected = breaches * len(pages)
                delivered = sum(sum(c.values()) for c in pages.values())
                lost = sum(1 for c in pages.values() for n in range(breaches) if c[n] == 0)
                dupes = delivered - (expected - lost)
                same_key = _dedupable(smtp, hooks)
                row = {
                    "expected": expected,
                    "delivered": delivered,
                    "lost": lost,
                    "duplicates": dupes,
                    "duplicates_with_the_same_id": same_key,
                    "seconds": round(time.monotonic() - start, 1),
                }
                per_round.append(row)
                totals.update({k: v for k, v in row.items() if k != "seconds"})
    finally:
        pg.stop()
    return {"rounds": per_round, "total": dict(totals), "breaches": breaches}


def _dedupable(smtp: Any, hooks: Any) -> int:
    """Duplicates a receiver that de-duplicates on the message's id would drop."""
    ids = Counter(m.message["Message-ID"] for m in smtp.messages())
    keys = Counter(r.headers.get("idempotency-key") for r in list(hooks.received))
    return sum(n - 1 for n in ids.values() if n > 1) + sum(
        n - 1 for k, n in keys.items() if k and n > 1
    )


# --- bridge throughput on the shared outbox ---------------------------------------------------


def bridge_throughput(
    workdir: Path, notifications: int = 5000, fanout: int = 10, worker_threads: int = 16
) -> dict[str, Any]:
    """Deliveries per second from one, then two bridges on one PostgreSQL outbox: a
    backlog of `notifications / fanout` payloads (each posted to every bridge, as the
    Alertmanager receivers do) is released at once; time to the last delivery."""
    from bench.bridge import AUTH, _payload, _start_bridge
    from tests.support.sinks import WebhookSink

    out: dict[str, Any] = {"fanout": fanout, "worker_threads": worker_threads}
    pg = PostgresServer(workdir / "pg").start()
    try:
        for replicas in (1, 2):
            outbox = pg.create_database(f"outbox{replicas}").replace("+psycopg2", "")
            sink = WebhookSink().start()
            hooks = [sink.url_for(f"hook{i}") for i in range(fanout)]
            bridges = [
                _start_bridge(
                    workdir / f"r{replicas}-{i}",
                    hooks,
                    BRIDGE_DATABASE_URL=outbox,
                    BRIDGE_INSTANCE_ID=f"bridge-{i}",
                    BRIDGE_WORKER_THREADS=str(worker_threads),
                    # Held requests must not time out meanwhile: a sink answering after
                    # the bridge gave up would count as a (legitimate) second delivery.
                    WEBHOOK_TIMEOUT_SECONDS="300",
                )
                for i in range(replicas)
            ]
            try:
                sink.faults.hold()
                total = (notifications // fanout) * fanout
                clients = [
                    httpx.Client(base_url=url, timeout=30, headers=AUTH) for _p, url in bridges
                ]
                for i in range(notifications // fanout):
                    for client in clients:
                        resp = client.post("/alertmanager/critical", json=_payload(i, "tp"))
                        resp.raise_for_status()
                for client in clients:
                    client.close()
                t0 = time.perf_counter()
                sink.faults.release(discard=False)
                wait_until(lambda s=sink, n=total: s.count() >= n, 600, "deliveries", 0.01)  # type: ignore[misc]  # mypy cannot type default-argument lambdas
                elapsed = time.perf_counter() - t0
                time.sleep(2)  # anything sent twice would arrive now
                out[f"{replicas} replica(s)"] = {
                    "notifications": total,
                    "seconds": round(elapsed, 2),
                    "per_second": round(total / elapsed, 1),
                    "received": sink.count(),
                }
            finally:
                for proc, _url in bridges:
                    proc.stop()
                sink.stop()
    finally:
        pg.stop()
    return out


# --- report -----------------------------------------------------------------------------------


def _replicas_rows(rep: dict[str, Any]) -> list[str]:
    lines = []
    loc = rep.get("locust") or {}
    agg = loc.get("aggregate") or {}
    how = (
        f"{rep['replicas']} `tracetrack app --workers 1` behind HAProxy, through PgBouncer, "
        f"{rep['users']} locust users of the shipped locustfile for {rep['seconds']} s "
        f"({agg.get('requests', '?')} requests, {loc.get('error_rate_pct', '?')} % errors); "
        f"one Prometheus, scrape and evaluation {SHIPPED_SCRAPE}, the shipped rules"
    )
    lines.append(
        f"| Series per app replica (one worker) | {rep['series_per_replica_mean']:.0f} "
        f"(max {rep['series_per_replica_max']}) | samples per scrape after the mix "
        f"(`scrape_samples_scraped`); {how} |"
    )
    lines.append(
        f"| Samples/s per replica at {SHIPPED_SCRAPE} | "
        f"{rep['samples_per_second_per_replica']} | series / scrape interval |"
    )
    lines.append(
        f"| Scrape duration of a replica | mean {rep['scrape_seconds_mean'] * 1000:.1f} ms, "
        f"max {rep['scrape_seconds_max'] * 1000:.1f} ms | `scrape_duration_seconds` over "
        "the load |"
    )
    lines.append(
        f"| Prometheus head series, {rep['replicas']} replicas | {rep['head_series_after']:,} "
        f"(itself alone: {rep['head_series_before']:,}; recording rules: "
        f"{rep['recording_rule_series']}) | `prometheus_tsdb_head_series` |"
    )
    lines.append(
        f"| Prometheus memory per added series | {rep['prometheus_bytes_per_added_series']:,} "
        f"bytes (RSS {rep['prometheus_rss_before_mib']} → {rep['prometheus_rss_after_mib']} "
        f"MiB) | resident memory before the replicas joined and after the load, over the "
        "series they added |"
    )
    jobs = rep.get("series_per_job") or {}
    if jobs:
        lines.append(
            "| Series of the other targets | "
            + ", ".join(f"{job} {n}" for job, n in sorted(jobs.items()))
            + " | `scrape_samples_scraped` of the same run (the exporter with PgBouncer's "
            "pools, one bridge, Prometheus itself) |"
        )
    vmr = rep.get("victoriametrics") or {}
    if vmr.get("bytes_per_sample"):
        lines.append(
            f"| VictoriaMetrics disk per sample | {vmr['bytes_per_sample']} bytes "
            f"({vmr['rows']:,} samples, {vmr['bytes'] / 2**20:.1f} MiB) | the same run "
            "remote-written; right after a flush, before background merges compress "
            "further: an upper bound |"
        )
    pgb = rep["pgbouncer"]
    lines.append(
        f"| PostgreSQL connections, {rep['replicas']} replicas | {pgb['server_connections']} "
        f"server connections for {pgb['client_connections']} clients | PgBouncer's "
        f"`SHOW POOLS` right after the load (pool {rep['pgbouncer_budget']['pool']} + reserve "
        f"{rep['pgbouncer_budget']['reserve']}) |"
    )
    return lines


def _churn_rows(churn: dict[str, Any]) -> list[str]:
    n = churn["dead_workers"]
    lines = []
    for variant in ("prometheus_client alone", "folded (the app)"):
        v = churn[variant]
        lines.append(
            f"| Multiprocess scrape after {n} dead workers, {variant} | p50 "
            f"{v[f'after {n} dead']['p50_ms']} ms ({v['files']} files; fresh "
            f"{v['fresh']['p50_ms']} ms) | the app's metric objects in {n} forked, exited "
            "workers; 30 scrapes each, in-process |"
        )
    return lines


def _vm_storage_rows(vms: dict[str, Any]) -> list[str]:
    if not vms.get("bytes_per_sample"):
        return []
    return [
        f"| VictoriaMetrics disk per sample, merged | {vms['bytes_per_sample']} bytes "
        f"({vms['imported']:,} samples, {vms['bytes'] / 2**20:.1f} MiB) | "
        f"{vms['series']:,} synthetic series shaped like ours (85 % counters at rates "
        f"from 0.01 to 50 per scrape, 15 % gauges), {vms['hours']:g} h at 10 s with scrape "
        "jitter, imported, flushed and force-merged |"
    ]


def _bridge_pg_rows(tp: dict[str, Any]) -> list[str]:
    one, two = tp["1 replica(s)"], tp["2 replica(s)"]
    return [
        f"| Bridge deliveries on the PostgreSQL outbox | one replica {one['per_second']}/s, "
        f"two replicas {two['per_second']}/s together ({two['received']} received of "
        f"{two['notifications']}) | a backlog of {one['notifications']} webhook deliveries "
        f"({tp['fanout']} recipients per notification, every notification posted to every "
        f"replica) released at once to a local sink; {tp['worker_threads']} worker threads "
        "per replica; first release to last delivery |"
    ]


def _exactly_once_rows(once: dict[str, Any]) -> list[str]:
    t = once["total"]
    return [
        f"| Pages across HA faults | {t['delivered']} delivered of {t['expected']} expected: "
        f"{t['lost']} lost, {t['duplicates']} duplicated ({t['duplicates_with_the_same_id']} "
        f"of them with the same Message-ID / Idempotency-Key) | {len(once['rounds'])} rounds "
        f"of {once['breaches']} critical breaches through two Prometheus, two clustered "
        "Alertmanagers and two bridges on one PostgreSQL outbox, to 2 email, 1 SMS and 2 "
        "webhook recipients; in each round one Alertmanager and one bridge killed -9 at "
        "random moments (no fault held at the receivers) |"
    ]


ROWS: dict[str, Any] = {
    "replicas": _replicas_rows,
    "churn": _churn_rows,
    "vm_storage": _vm_storage_rows,
    "bridge_pg": _bridge_pg_rows,
    "exactly_once": _exactly_once_rows,
}


def record_parts(results: dict[str, Any], directory: Path | None = None) -> list[Path]:
    """Each measured part as its own results file (bench/results/ha_<part>.json) of
    BENCHMARKS.md's "High availability and capacity" section: the parts not in
    `results` keep their recorded rows."""
    from bench import results as bench_results

    return [
        bench_results.record(
            f"ha_{part}",
            section=SECTION,
            columns=bench_results.FIGURE_COLUMNS,
            rows=rows_for(results[part]),
            command=f"python -m bench.ha --only {part}",
            raw=results[part],
            directory=directory or bench_results.RESULTS_DIR,
        )
        for part, rows_for in ROWS.items()
        if part in results
    ]


PARTS: dict[str, tuple[str, Any]] = {
    "churn": ("worker churn", measure_churn),
    "replicas": ("ten app replicas", simulate_replicas),
    "bridge_pg": ("bridge throughput on PostgreSQL", bridge_throughput),
    "vm_storage": ("VictoriaMetrics disk per sample, merged", vm_year_storage),
    "exactly_once": ("exactly once across HA faults", exactly_once),
}


def run_all(workdir: Path, only: set[str]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for part in PARTS:
        if part in only:
            what, measure = PARTS[part]
            print(f"{what}...", flush=True)
            results[part] = measure(workdir / part)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default=",".join(PARTS))
    parser.add_argument("--workdir", type=Path, default=ROOT / "var" / "bench-ha")
    parser.add_argument(
        "--no-record", action="store_true", help="print only: no results file, no BENCHMARKS.md"
    )
    args = parser.parse_args(argv)
    import shutil

    from bench import report

    if args.workdir.exists():
        shutil.rmtree(args.workdir)
    args.workdir.mkdir(parents=True)
    results = run_all(args.workdir, set(args.only.split(",")))
    (args.workdir / "results.json").write_text(json.dumps(results, indent=2, default=str))
    for part, data in results.items():
        print("\n".join(ROWS[part](data)))
    if not args.no_record:
        record_parts(results)
        print(f"recorded; wrote {report.write()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
