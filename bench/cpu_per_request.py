"""CPU per request of each kind the locustfile sends, against two floors, for `make bench`.

    results["cpu_per_request"] = measure_cpu_per_request(app_pid, base_url, ...)
    .venv/bin/python -m bench.cpu_per_request --bags 100000   # standalone, own services

Three servers run the same way (uvicorn, one worker, uvloop + httptools, loopback,
keep-alive): the app as `tracetrack app --workers 1` runs it (metrics on, Redis cache),
a bare FastAPI `async def` route and a bare ASGI callable (bench/floors.py). One client
sends requests one at a time; what is counted is the server process's own CPU time
(user + system, from /proc) divided by the requests it served, so neither the client
nor the neighbours on a shared machine enter the figure. PostgreSQL's and Redis's CPU
per request are counted the same way (their whole process trees).

Kinds are measured in rounds, each round every kind in a new random order, and each
figure is the median over rounds: drift hits every kind alike.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import results
from bench.cpu import CpuMeter
from tooling.checkout import ROOT
from tooling.procs import ManagedProcess, free_port, http_ok, start_tracetrack

# The targets for the app's CPU per request, as multiples of the FastAPI floor.
TARGET_RATIO = {"lookup_hit": 3.0, "lookup_random": 6.0, "scan": 8.0}
LABELS = {
    "healthz": "`GET /healthz`",
    "lookup_hit": "cache-hit lookup `GET /api/bags/{qr_id}`",
    "lookup_random": "random lookup `GET /api/bags/{qr_id}` (uniform over all bags: misses)",
    "search": "search `GET /api/bags?q=<7-9 chars>&limit=20`",
    "history": "scan history `GET /api/bags/{qr_id}/scans?limit=10`",
    "scan": "`POST /api/scans`",
    "fastapi_floor": "bare FastAPI `async def` route (floor)",
    "asgi_floor": "bare ASGI callable (floor)",
}
APP_KINDS = ("healthz", "lookup_hit", "lookup_random", "search", "history", "scan")
LOCATIONS = ("Mumbai Hub", "Delhi Hub", "Chennai Hub", "Pune Depot", "Jaipur Depot")


def qr_of(bag_id: int) -> str:
    """The seeder's QR id of bag `bag_id` (app/seed.py: every 10th bag is a parent)."""
    return f"{'P' if bag_id % 10 == 1 else 'C'}{bag_id:010d}"


class Client:
    """One keep-alive HTTP/1.1 connection; asserts every answer is the expected status."""

    def __init__(self, port: int, token: str | None = None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def request(
        self, method: str, path: str, body: bytes | None = None, status: int = 200
    ) -> bytes:
        headers = dict(self.headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=body, headers=headers)
        r = self.conn.getresponse()
        data = r.read()
        if r.status != status:
            raise RuntimeError(f"{method} {path}: {r.status} {data[:300]!r}")
        return data

    def close(self) -> None:
        self.conn.close()


def login(port: int, username: str, password: str) -> str:
    c = Client(port)
    body = json.dumps({"username": username, "password": password}).encode()
    token = json.loads(c.request("POST", "/api/auth/login", body))["access_token"]
    c.close()
    return str(token)


def app_requests(client: Client, bags: int, rng: random.Random) -> dict[str, Callable[[], Any]]:
    hot = qr_of(1)
    client.request("GET", f"/api/bags/{hot}")  # now cached

    def scan() -> None:
        body = {"qr_id": qr_of(rng.randint(1, bags)), "location": rng.choice(LOCATIONS)}
        client.request("POST", "/api/scans", json.dumps(body).encode(), status=201)

    return {
        "healthz": lambda: client.request("GET", "/healthz"),
        "lookup_hit": lambda: client.request("GET", f"/api/bags/{hot}"),
        "lookup_random": lambda: client.request("GET", f"/api/bags/{qr_of(rng.randint(1, bags))}"),
        "search": lambda: client.request(
            "GET", f"/api/bags?q={qr_of(rng.randint(1, bags))[: rng.randint(7, 9)]}&limit=20"
        ),
        "history": lambda: client.request(
            "GET", f"/api/bags/{qr_of(rng.randint(1, bags))}/scans?limit=10"
        ),
        "scan": scan,
    }


def start_floor(kind: str, workdir: Path) -> tuple[ManagedProcess, int]:
    port = free_port()
    target = {
        "fastapi_floor": "bench.floors:fastapi_floor",
        "asgi_floor": "bench.floors:asgi_floor",
    }
    args = [sys.executable, "-m", "uvicorn", target[kind], "--port", str(port)]
    args += ["--log-level", "warning", "--no-access-log", "--loop", "uvloop", "--http", "httptools"]
    args += ["--timeout-keep-alive", "75"]  # as `tracetrack app`: rounds leave gaps
    if kind == "fastapi_floor":
        args.append("--factory")
    proc = ManagedProcess(kind, args, workdir / f"{kind}.log", cwd=ROOT).start()
    proc.wait_ready(http_ok(f"http://127.0.0.1:{port}/floor"), timeout=60)
    return proc, port


def measure_cpu_per_request(
    *,
    app_pid: int,
    app_port: int,
    token: str,
    bags: int,
    workdir: Path,
    pg_pid: int | None = None,
    redis_pid: int | None = None,
    rounds: int = 10,
    per_round: int = 300,
    seed: int = 7,
) -> dict[str, Any]:
    """CPU µs per request of each kind (median over rounds) and its ratio to the floors."""
    rng = random.Random(seed)
    floors: dict[str, tuple[ManagedProcess, int]] = {}
    try:
        for kind in ("fastapi_floor", "asgi_floor"):
            floors[kind] = start_floor(kind, workdir)
        app_client = Client(app_port, token)
        calls = app_requests(app_client, bags, rng)
        floor_clients = {k: Client(port) for k, (_, port) in floors.items()}
        for k, c in floor_clients.items():
            calls[k] = lambda c=c: c.request("GET", "/floor")  # type: ignore[misc]  # mypy cannot type default-argument lambdas
        server_pid = {k: app_pid for k in APP_KINDS} | {k: p.pid for k, (p, _) in floors.items()}
        parties = {"server": 0}
        samples: dict[str, dict[str, list[float]]] = {k: {"server": []} for k in calls}
        if pg_pid:
            parties["postgresql"] = pg_pid
        if redis_pid:
            parties["redis"] = redis_pid
        for fn in calls.values():  # warm every path once
            for _ in range(20):
                fn()
        for _ in range(rounds):
            order = list(calls)
            rng.shuffle(order)
            for kind in order:
                meter = CpuMeter({**parties, "server": server_pid[kind]})
                fn = calls[kind]
                for _ in range(per_round):
                    fn()
                used = meter.used()
                for party, seconds in used.items():
                    samples[kind].setdefault(party, []).append(seconds / per_round * 1e6)
        app_client.close()
        for c in floor_clients.values():
            c.close()
    finally:
        for proc, _ in floors.values():
            proc.stop()

    us = {k: {p: round(statistics.median(v), 1) for p, v in s.items()} for k, s in samples.items()}
    floor = us["fastapi_floor"]["server"]
    asgi = us["asgi_floor"]["server"]
    kinds = {
        k: {
            "server_us": v["server"],
            "postgresql_us": v.get("postgresql") if k in APP_KINDS else None,
            "redis_us": v.get("redis") if k in APP_KINDS else None,
            "x_fastapi_floor": round(v["server"] / floor, 2) if floor else None,
            "x_asgi_floor": round(v["server"] / asgi, 2) if asgi else None,
        }
        for k, v in us.items()
    }
    result = {"rounds": rounds, "per_round": per_round, "bags": bags, "kinds": kinds}
    result["rows"] = rows_for(result)
    return result


def _row(name: str, value: str, budget: str, ok: bool | None, how: str) -> str:
    verdict = {True: "within", False: "**over**", None: "—"}[ok]
    return f"| {name} | {value} | {budget} | {verdict} | {how} |"


def rows_for(r: dict[str, Any]) -> list[str]:
    kinds = r["kinds"]
    floor = kinds["fastapi_floor"]["server_us"]
    how = (
        f"server process CPU (user+system from /proc) per request, median of {r['rounds']} "
        f"rounds x {r['per_round']} sequential keep-alive requests, kinds in a new random "
        f"order each round; app as `tracetrack app --workers 1` (uvloop, httptools, metrics "
        f"and security guard on, its rate limits raised so the one client is never refused; "
        f"Redis cache) over {r['bags']:,} bags; floors served by the same uvicorn"
    )
    rows = []
    for k in (*APP_KINDS, "fastapi_floor", "asgi_floor"):
        v = kinds[k]
        value = f"{v['server_us']:,.0f} µs"
        if k in APP_KINDS:
            value += f" = {v['x_fastapi_floor']}× the FastAPI floor, {v['x_asgi_floor']}× bare ASGI"
            extra = [
                f"{name} {v[key]:,.0f} µs"
                for name, key in (("PostgreSQL", "postgresql_us"), ("Redis", "redis_us"))
                if v.get(key) is not None
            ]
            if extra:
                value += f" (+ {', '.join(extra)})"
        target = TARGET_RATIO.get(k)
        budget = f"≤ {target:g}× floor" if target else "—"
        ok = None if target is None else v["x_fastapi_floor"] <= target
        if k == "fastapi_floor":
            how_k = "the floor: `@app.get` `async def` returning a small dict"
        elif k == "asgi_floor":
            how_k = f"a bare ASGI callable answering the same body ({floor:,.0f} µs FastAPI floor)"
        else:
            how_k = how if k == APP_KINDS[0] else "as above"
        rows.append(_row(f"CPU per request: {LABELS[k]}", value, budget, ok, how_k))
    return rows


# Far above what one benchmark client sends: the guard still counts every request (its
# cost is part of the figure), it just never answers 429 to the measurement.
UNLIMITED = {
    "RATE_LIMIT_READS": "1000000/minute",
    "RATE_LIMIT_WRITES": "1000000/minute",
    "RATE_LIMIT_LOGIN": "1000000/minute",
}


def start_app(
    url: str, redis_url: str, workdir: Path, workers: int = 1, env: dict[str, str] | None = None
) -> tuple[ManagedProcess, int]:
    """`tracetrack app` as the benches run it (Redis cache, metrics and guard on)."""
    return start_tracetrack(
        "app",
        workdir / f"app-{workers}w.log",
        {
            "DATABASE_URL": url,
            "REDIS_URL": redis_url,
            "TRACETRACK_VAR_DIR": str(workdir),
            **(env or {}),
        },
        args=["--workers", str(workers)],
        name=f"app-{workers}w",
        timeout=120,
    )


def run_against(
    url: str,
    *,
    bags: int,
    workdir: Path,
    redis_url: str,
    pg_pid: int | None = None,
    redis_pid: int | None = None,
    rounds: int = 10,
    per_round: int = 300,
) -> dict[str, Any]:
    """Start a one-worker app on `url` (seeded with `bags`), measure, stop it."""
    from app.users import add_user

    password = "bench-cpu-password"
    try:
        add_user(url, "bench-cpu", password, "admin")
    except Exception:  # noqa: BLE001 - a rerun on the same database: the user exists
        pass
    app, port = start_app(url, redis_url, workdir, env=UNLIMITED)
    try:
        return measure_cpu_per_request(
            app_pid=app.pid,
            app_port=port,
            token=login(port, "bench-cpu", password),
            bags=bags,
            workdir=workdir,
            pg_pid=pg_pid,
            redis_pid=redis_pid,
            rounds=rounds,
            per_round=per_round,
        )
    finally:
        app.stop()


def main(argv: list[str] | None = None) -> int:
    """Standalone: a fresh PostgreSQL seeded with --bags, Redis, the app, then the figures."""
    from app.db import migrate
    from app.seed import seed_database
    from tooling.pgserver import PostgresServer
    from tooling.procs import start_redis

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bags", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--per-round", type=int, default=300)
    parser.add_argument("--workdir", type=Path, default=ROOT / "var" / "bench" / "cpu")
    results.add_record_flag(parser)
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    pg = PostgresServer(args.workdir / "pg").start()
    redis_proc: ManagedProcess | None = None
    try:
        url = pg.create_database("cpu")
        migrate(url)
        seed_database(url, bags=args.bags, progress=False)
        redis_proc, redis_port = start_redis(args.workdir / "redis")
        out = run_against(
            url,
            bags=args.bags,
            workdir=args.workdir,
            redis_url=f"redis://127.0.0.1:{redis_port}/0",
            pg_pid=pg.pid,
            redis_pid=redis_proc.pid,
            rounds=args.rounds,
            per_round=args.per_round,
        )
    finally:
        if redis_proc is not None:
            redis_proc.stop()
        pg.stop()
    results.finish("cpu_per_request", out, args, "bench.cpu_per_request", argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
