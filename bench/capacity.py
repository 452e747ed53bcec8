"""Capacity of the app under the shipped locustfile, and proof that a normal load pages no one.

    results["capacity"] = capacity_search(base_url, bags, workdir=..., pids=..., targets=...)
    .venv/bin/python -m bench.capacity --bags 100000 [--start 1000]

Each trial runs `bench.locust_load.run_locust` (the shipped locustfile, its think times,
a realistic ramp of 20 users/s) against the running app and splits it into the ramp
(users arriving and logging in: a deliberately slow password hash each) and the steady
state (every user running), from locust's per-second history. A trial passes when the
steady state keeps every 10-second window's p95 under 1 s and the error rate under
0.1 %. The search starts at `start` users, goes up by a quarter while trials pass and
bisects down (not below `floor`) when one fails; the answer is the most users passed.

Meanwhile the CPU of each party (app workers, PostgreSQL, Redis, locust) is sampled
every second from /proc, and the steady state's CPU per request is reported per party:
unlike throughput, it does not depend on what else runs on the machine.

With `targets` (job -> ["host:port"]), a real Prometheus scrapes them every 5 s during
the first trial and evaluates the shipped rules (prometheus/rules.yml, their own `for:`)
every 5 s; afterwards every alert that was pending or firing at any point is listed
(Watchdog, which always fires by design, excepted).
"""

from __future__ import annotations

import argparse
import csv
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench import results
from bench.cpu import tree_cpu_seconds
from bench.locust_load import ERROR_BUDGET_PCT, P95_BUDGET_MS, limits_row, run_locust
from common.alerting import WATCHDOG
from tooling.checkout import ROOT
from tooling.procs import (
    ManagedProcess,
    free_port,
    http_ok,
    prometheus_process,
    start_tracetrack,
)

SPAWN_RATE = 20
ALWAYS_FIRING = {WATCHDOG}


class CpuSampler:
    """Cumulative CPU seconds of each party, sampled every `interval` in a thread."""

    def __init__(self, pids: dict[str, int], interval: float = 1.0) -> None:
        self.pids = pids
        self.interval = interval
        self.samples: list[tuple[float, dict[str, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _locust_pids(self) -> list[int]:
        pids = []
        for p in psutil.Process().children():
            try:
                if "locust" in " ".join(p.cmdline()[:2]) or p.name().startswith("locust"):
                    pids.append(p.pid)
            except psutil.Error:
                continue  # exited, or a zombie not reaped yet
        return pids

    def sample(self) -> None:
        cpu = {name: tree_cpu_seconds(pid) for name, pid in self.pids.items()}
        cpu["locust"] = sum(tree_cpu_seconds(pid) for pid in self._locust_pids())
        self.samples.append((time.time(), cpu))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sample()
            except psutil.Error:
                continue

    def __enter__(self) -> CpuSampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def between(self, t0: float, t1: float) -> dict[str, float]:
        """CPU seconds used per party between the samples nearest to t0 and t1. The
        locust tree is only seen while it runs, so it is taken from its own samples."""
        if not self.samples:
            return {}
        first = min(self.samples, key=lambda s: abs(s[0] - t0))[1]
        last = min(self.samples, key=lambda s: abs(s[0] - t1))[1]
        return {k: max(0.0, last[k] - first.get(k, 0.0)) for k in last}


def _num(v: str | None) -> float | None:
    try:
        return float(v) if v not in (None, "", "N/A") else None
    except ValueError:
        return None


def phases(history_csv: Path, users: int) -> dict[str, Any]:
    """Ramp and steady state from locust's stats history (one row a second)."""
    rows = [r for r in csv.DictReader(history_csv.open()) if r.get("Name") == "Aggregated"]
    if not rows:
        return {}
    steady = [r for r in rows if r["User Count"] == str(users)]
    ramp = [r for r in rows if r not in steady]

    def summary(part: list[dict[str, str]], before: dict[str, str] | None) -> dict[str, Any]:
        if not part:
            return {}
        reqs = int(part[-1]["Total Request Count"]) - int(
            before["Total Request Count"] if before else 0
        )
        fails = int(part[-1]["Total Failure Count"]) - int(
            before["Total Failure Count"] if before else 0
        )
        p95s = [v for v in (_num(r.get("95%")) for r in part) if v is not None]
        return {
            "from": float(part[0]["Timestamp"]),
            "to": float(part[-1]["Timestamp"]),
            "seconds": float(part[-1]["Timestamp"]) - float(part[0]["Timestamp"]),
            "requests": reqs,
            "failures": fails,
            "error_rate_pct": round(100 * fails / reqs, 4) if reqs else None,
            "worst_10s_p95_ms": max(p95s) if p95s else None,
            "median_10s_p95_ms": sorted(p95s)[len(p95s) // 2] if p95s else None,
            "rps": round(
                reqs / max(1.0, float(part[-1]["Timestamp"]) - float(part[0]["Timestamp"])), 1
            ),
        }

    return {
        "ramp": summary(ramp, None),
        # Counted from the last ramp row, so requests of the steady state only.
        "steady": summary(steady[1:], steady[0]) if len(steady) > 1 else {},
    }


def passed(trial: dict[str, Any]) -> bool:
    s = trial.get("steady") or {}
    return bool(
        s
        and s["seconds"] >= 20
        and s["worst_10s_p95_ms"] is not None
        and s["worst_10s_p95_ms"] < P95_BUDGET_MS
        and s["error_rate_pct"] is not None
        and s["error_rate_pct"] < ERROR_BUDGET_PCT
    )


def trial(
    base_url: str, bags: int, users: int, *, workdir: Path, pids: dict[str, int], steady_s: int
) -> dict[str, Any]:
    duration = f"{users // SPAWN_RATE + 10 + steady_s}s"
    with CpuSampler(pids) as cpu:
        run = run_locust(
            base_url, bags, users, SPAWN_RATE, duration, workdir=workdir, stop_timeout=30
        )
    out: dict[str, Any] = {"users": users, "duration": duration, "run": run}
    out.update(phases(workdir / "locust_stats_history.csv", users))
    s = out.get("steady") or {}
    if s.get("requests"):
        used = cpu.between(s["from"], s["to"])
        out["steady"]["cpu_us_per_request"] = {
            k: round(v / s["requests"] * 1e6, 1) for k, v in used.items()
        }
        out["steady"]["cpu_cores_busy"] = {
            k: round(v / max(1.0, s["seconds"]), 2) for k, v in used.items()
        }
    out["passed"] = passed(out)
    return out


def alerts_seen(prom_url: str, since: float, until: float) -> dict[str, set[str]]:
    """alertstate -> alert names that were in it at any evaluation in [since, until]."""
    window = max(1, int(until - since) + 10)
    r = httpx.get(
        f"{prom_url}/api/v1/query",
        params={"query": f"max_over_time(ALERTS[{window}s])", "time": until + 5},
        timeout=30,
    )
    r.raise_for_status()
    seen: dict[str, set[str]] = {"pending": set(), "firing": set()}
    for series in r.json()["data"]["result"]:
        m = series["metric"]
        if m.get("alertname") not in ALWAYS_FIRING:
            seen.setdefault(m.get("alertstate", "?"), set()).add(
                f"{m.get('alertname')}({m.get('severity', '')})"
            )
    return seen


def start_prometheus(workdir: Path, targets: dict[str, list[str]]) -> tuple[ManagedProcess, str]:
    from tooling.stackconfig import write_prometheus_config

    port = free_port()
    config = write_prometheus_config(
        workdir / "prometheus.yml",
        targets=targets,
        alertmanagers=[],
        scrape_interval="5s",
        evaluation_interval="5s",
    )
    proc = prometheus_process(config, workdir / "tsdb", port).start()
    url = f"http://127.0.0.1:{port}"
    proc.wait_ready(http_ok(f"{url}/-/ready"), timeout=60)
    return proc, url


def capacity_search(
    base_url: str,
    bags: int,
    *,
    workdir: Path,
    pids: dict[str, int],
    targets: dict[str, list[str]] | None = None,
    start: int = 1000,
    floor: int = 700,
    ceiling: int = 2000,
    steady_s: int = 90,
    max_trials: int = 4,
) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    trials: list[dict[str, Any]] = []
    result: dict[str, Any] = {"start": start, "floor": floor, "spawn_rate": SPAWN_RATE}
    prom: ManagedProcess | None = None
    best, worst_fail = 0, None
    users = start
    try:
        for i in range(max_trials):
            check = i == 0 and targets is not None
            if check:
                prom, prom_url = start_prometheus(workdir / "prometheus", targets or {})
                time.sleep(6)  # a first scrape before the load
            print(f"capacity: {users} users...", flush=True)
            t0 = time.time()
            t = trial(
                base_url, bags, users, workdir=workdir / f"u{users}", pids=pids, steady_s=steady_s
            )
            if check and prom is not None:
                time.sleep(6)  # the last scrape and evaluation after the load
                seen = alerts_seen(prom_url, t0, time.time())
                t["alerts"] = {k: sorted(v) for k, v in seen.items()}
                prom.stop()
                prom = None
            trials.append(t)
            # Kept as it comes, so a later failure loses no trial.
            (workdir / "trials.json").write_text(
                json.dumps(
                    [{k: v for k, v in x.items() if k != "run"} for x in trials], default=str
                )
            )
            if t["passed"]:
                best = max(best, users)
                nxt = users + users // 4 if worst_fail is None else (users + worst_fail) // 2
            else:
                worst_fail = users if worst_fail is None else min(worst_fail, users)
                nxt = (best + users) // 2 if best else max(floor, users - users // 4)
            if nxt > ceiling or nxt in {x["users"] for x in trials} or abs(nxt - users) < 50:
                break
            users = nxt
    finally:
        if prom is not None:
            prom.stop()
    result["trials"] = [
        {k: v for k, v in t.items() if k != "run"} | {"whole_run": _whole(t)} for t in trials
    ]
    result["max_users_passed"] = best
    result["rows"] = rows_for(result)
    return result


def _whole(t: dict[str, Any]) -> dict[str, Any]:
    run = t.get("run") or {}
    agg = run.get("aggregate") or {}
    return {
        "requests": agg.get("requests"),
        "p95_ms": agg.get("p95_ms"),
        "error_rate_pct": run.get("error_rate_pct"),
        "login_p95_ms": ((run.get("endpoints") or {}).get("/api/auth/login") or {}).get("p95_ms"),
        "failures": run.get("failures") or [],
        "rate_limited": run.get("rate_limited"),
    }


def _row(name: str, value: str, budget: str, ok: bool | None, how: str) -> str:
    verdict = {True: "within", False: "**over**", None: "—"}[ok]
    return f"| {name} | {value} | {budget} | {verdict} | {how} |"


def rows_for(r: dict[str, Any]) -> list[str]:
    rows = []
    how = (
        f"shipped locustfile (FastHttpUser, think time 0.5–2 s), ramp {r['spawn_rate']} users/s, "
        "then the steady state; p95 = the worst 10-s window of the steady state (locust's "
        "per-second history), errors counted over the steady state; locust on the same 2 cores"
    )
    for t in r["trials"]:
        s, ramp, w = t.get("steady") or {}, t.get("ramp") or {}, t["whole_run"]
        if not s:
            rows.append(
                _row(
                    f"{t['users']:,} locust users",
                    "no steady state",
                    "p95 < 1 s, errors < 0.1 %",
                    False,
                    how,
                )
            )
            continue
        cpu = s.get("cpu_us_per_request") or {}
        split = ", ".join(f"{k} {v:,.0f} µs" for k, v in cpu.items())
        value = (
            f"steady: p95 {s['worst_10s_p95_ms']:,.0f} ms (median window {s['median_10s_p95_ms']:,.0f} ms), "
            f"errors {s['error_rate_pct']:.3f} % of {s['requests']:,}, {s['rps']:,.0f} req/s; "
            f"ramp ({ramp.get('seconds', 0):.0f} s, logins): worst p95 {ramp.get('worst_10s_p95_ms') or 0:,.0f} ms, "
            f"errors {ramp.get('error_rate_pct') or 0:.3f} %; whole run p95 {w['p95_ms'] or 0:,.0f} ms, "
            f"login p95 {w['login_p95_ms'] or 0:,.0f} ms; CPU per request: {split}"
        )
        if "alerts" in t:
            firing = t["alerts"].get("firing") or []
            pending = t["alerts"].get("pending") or []
            value += f"; alerts firing: {', '.join(firing) or 'none'}, pending: {', '.join(pending) or 'none'}"
        rows.append(
            _row(
                f"{t['users']:,} locust users", value, "p95 < 1 s, errors < 0.1 %", t["passed"], how
            )
        )
        if t["users"] == 1000:  # the security layer's promise: its limits never touch them
            rows.append(limits_row(t["whole_run"], f"{t['users']:,} locust users"))
    rows.append(
        _row(
            "Most locust users served (capacity search)",
            f"{r['max_users_passed']:,}",
            "≥ 1,000 (≥ 700 if the CPU split proves it impossible)",
            r["max_users_passed"] >= 1000,
            "the trials above",
        )
    )
    return rows


def vacuum_analyze(url: str) -> None:
    """What the weekly maintenance of docs/architecture.md §11 does; a freshly loaded database
    otherwise spends the first minutes of the load in autovacuum (and raises the
    "table not vacuumed" info alert that a maintained database would not)."""
    import psycopg2

    conn = psycopg2.connect(url.replace("+psycopg2", ""))
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE")
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    """Standalone: fresh PostgreSQL + Redis + `tracetrack app --workers 2` + exporter."""
    from app.db import migrate
    from app.seed import seed_database
    from bench.cpu_per_request import start_app
    from common.topology import APP_JOB, EXPORTER_JOB
    from tooling.pgserver import PostgresServer
    from tooling.procs import start_redis

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bags", type=int, default=100_000)
    parser.add_argument("--start", type=int, default=1000)
    parser.add_argument("--steady", type=int, default=90)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--workdir", type=Path, default=ROOT / "var" / "bench" / "capacity")
    results.add_record_flag(parser)
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    pg = PostgresServer(args.workdir / "pg").start()
    procs: list[ManagedProcess] = []
    try:
        url = pg.create_database("capacity")
        migrate(url)
        seed_database(url, bags=args.bags, progress=False)
        vacuum_analyze(url)
        redis_proc, redis_port = start_redis(args.workdir / "redis")
        procs.append(redis_proc)
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        app, port = start_app(url, redis_url, args.workdir, workers=2)
        procs.append(app)
        exp, exp_port = start_tracetrack(
            "exporter",
            args.workdir / "exporter.log",
            {"DATABASE_URL": url, "REDIS_URL": redis_url, "TRACETRACK_VAR_DIR": str(args.workdir)},
            name="exporter",
            ready="/metrics",
        )
        procs.append(exp)
        out = capacity_search(
            f"http://127.0.0.1:{port}",
            args.bags,
            workdir=args.workdir,
            pids={"app": app.pid, "postgresql": pg.pid, "redis": redis_proc.pid},
            targets={APP_JOB: [f"127.0.0.1:{port}"], EXPORTER_JOB: [f"127.0.0.1:{exp_port}"]},
            start=args.start,
            steady_s=args.steady,
            max_trials=args.trials,
        )
    finally:
        for p in reversed(procs):
            p.stop()
        pg.stop()
    (args.workdir / "capacity.json").write_text(json.dumps(out, indent=2, default=str))
    results.finish("capacity", out, args, "bench.capacity", argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
