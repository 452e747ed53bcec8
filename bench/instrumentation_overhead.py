"""What the instrumentation costs a DB-backed request (docs/architecture.md §7), for `make bench`.

    results["overhead"] = measure_overhead(database_url=url, workdir=workdir)
    .venv/bin/python -m bench.instrumentation_overhead [--bags 50000]   # standalone

The variants of the app under comparison live side by side **in the same server
process** (a header picks one per request), because two processes running
identical code differ by as much as the effect measured: on the 2-core bench
machine, two uninstrumented servers differed by ~70 µs CPU per request (~2 %),
which had put a per-process bias into the verdict. Each server process (uvicorn,
1 worker, loopback) hosts:

- `off`: TRACETRACK_METRICS_ENABLED=false, no middleware;
- `off_control`: a second, identical `off` app: its difference from `off` is the
  measurement's noise floor, reported beside the result;
- `on`: ours, as `tracetrack app` runs it;
- `instrumentator`: ours off, prometheus-fastapi-instrumentator's defaults on;
- `guard_off`: `off` without the security guard (TRACETRACK_GUARD_ENABLED=false):
  `off` minus `guard_off` is what the guard's layers (client identity, IP blocks,
  rate limits) cost a request (docs/architecture.md §7: < 50 µs CPU).

Two such processes run in prometheus_client's multiprocess mode (as `tracetrack
app`, so every metric write is an mmap write) and one more without it hosts `off`
and `on` for the in-memory-values figure (`on_in_process`); the mode is per process.

The request is `GET /api/bags/{qr_id}` with the cache TTL at 0, so every request
authenticates, misses the cache and reads PostgreSQL. Requests are interleaved one
by one across every (process, variant) in rounds, in a new random order every time,
so drift (CPU frequency, PostgreSQL, the other processes) and the extra cost of the
first request a process serves after the others' hit all variants alike.

Three figures per variant: server-side time (an ASGI timer around each variant's
app, identical in every variant), client-side time, and the server process's CPU
time per request, the least noisy of the three. Overhead is relative to `off` in the
same process and taken per round, then the median over rounds and processes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from array import array
from pathlib import Path
from typing import Any

import httpx

from bench import results
from bench.stats import percentile
from tooling.checkout import ROOT
from tooling.procs import ManagedProcess, free_port, http_ok

BUDGET_PCT = 2.0
USERNAME = "bench-overhead"
PASSWORD = "bench-overhead-password"
SECRET = "bench-overhead-secret-key-0123456789abcdef"
TIMINGS_PATH = "/__bench__/timings"
TIMED_PREFIX = "/api/bags/"
VARIANT_HEADER = "x-bench-variant"
VARIANTS_ENV = "BENCH_OVERHEAD_VARIANTS"
MULTIPROCESS_SERVERS = ("mp1", "mp2")
# Server process -> (multiprocess mode?, the variants it hosts).
SERVERS: dict[str, tuple[bool, tuple[str, ...]]] = {
    **{
        s: (True, ("off", "off_control", "on", "instrumentator", "guard_off"))
        for s in MULTIPROCESS_SERVERS
    },
    "in_process": (False, ("off", "on")),
}
# Reported figure -> where it comes from: the servers and the variant compared with their `off`.
FIGURES = {
    "on": (MULTIPROCESS_SERVERS, "on"),
    "off_control": (MULTIPROCESS_SERVERS, "off_control"),
    "instrumentator": (MULTIPROCESS_SERVERS, "instrumentator"),
    "on_in_process": (("in_process",), "on"),
    "guard": (MULTIPROCESS_SERVERS, "off"),
}
# The variant a figure is compared with, where it is not `off`.
BASELINES = {"guard": "guard_off"}
GUARD_BUDGET_US = 50.0
VARIANTS = ("off", *FIGURES)


# --- the servers' side: one uvicorn factory hosting several variants ----------------


class ServerTimer:
    """Outermost ASGI wrapper of one variant: each /api/bags/ request's wall and CPU time.

    CPU time is the whole process's (the sync endpoint runs in a worker thread); with
    one request at a time in the process it is that request's CPU, unaffected by
    waiting for a core.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.wall = array("d")
        self.cpu = array("d")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path == TIMINGS_PATH:
            body = json.dumps({"wall": list(self.wall), "cpu": list(self.cpu)}).encode()
            self.wall, self.cpu = array("d"), array("d")
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        start, start_cpu = time.perf_counter(), time.process_time()
        await self.app(scope, receive, send)
        if path.startswith(TIMED_PREFIX):
            self.wall.append(time.perf_counter() - start)
            self.cpu.append(time.process_time() - start_cpu)


class VariantRouter:
    """Several apps in one process: the `x-bench-variant` header picks the app.

    Runs every app's lifespan (startup in order, shutdown in reverse), so each starts
    as it would alone (the instrumented one starts its pool sampler).
    """

    def __init__(self, apps: dict[str, Any]) -> None:
        self.apps = apps
        self._header = VARIANT_HEADER.encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        name = next((v.decode() for k, v in scope.get("headers", ()) if k == self._header), "off")
        app = self.apps.get(name)
        if app is None:
            await send({"type": "http.response.start", "status": 400, "headers": []})
            await send({"type": "http.response.body", "body": f"unknown variant {name!r}".encode()})
            return
        await app(scope, receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        await receive()  # lifespan.startup
        running = [await _Lifespan.start(app) for app in self.apps.values()]
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        for lifespan in reversed(running):
            await lifespan.stop()
        await send({"type": "lifespan.shutdown.complete"})


class _Lifespan:
    """One app's ASGI lifespan, driven by hand."""

    def __init__(self, app: Any) -> None:
        self._to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        self._task = asyncio.ensure_future(app(scope, self._to_app.get, self._from_app.put))

    @classmethod
    async def start(cls, app: Any) -> _Lifespan:
        lifespan = cls(app)
        await lifespan._step("lifespan.startup")
        return lifespan

    async def stop(self) -> None:
        await self._step("lifespan.shutdown")
        await self._task

    async def _step(self, message: str) -> None:
        await self._to_app.put({"type": message})
        reply = await self._from_app.get()
        if reply["type"] != f"{message}.complete":
            raise RuntimeError(f"{message}: {reply}")


def _create_app(metrics_enabled: bool, guard_enabled: bool = True) -> Any:
    from app.main import create_app
    from common.settings import Settings

    return create_app(Settings(metrics_enabled=metrics_enabled, guard_enabled=guard_enabled))


def _variant_app(variant: str) -> Any:
    if variant == "on":
        return _create_app(True)
    if variant == "guard_off":
        return _create_app(False, guard_enabled=False)
    app = _create_app(False)
    if variant == "instrumentator":
        from prometheus_fastapi_instrumentator import Instrumentator

        Instrumentator().instrument(app).expose(app)
    return app


def app_variants() -> VariantRouter:
    """The uvicorn factory: the variants named in $BENCH_OVERHEAD_VARIANTS."""
    names = os.environ[VARIANTS_ENV].split(",")
    return VariantRouter({name: ServerTimer(_variant_app(name)) for name in names})


# --- the client's side --------------------------------------------------------------


def ensure_user(database_url: str) -> None:
    from app import repository as repo
    from app.users import add_user

    try:
        add_user(database_url, USERNAME, PASSWORD, "admin")
    except repo.Conflict:
        pass  # made by an earlier run on this database


def sample_qr_ids(database_url: str, n: int) -> list[str]:
    """Up to n existing QR ids spread over the table (adding bags if it is nearly empty)."""
    import sqlalchemy as sa

    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            lo, hi = conn.execute(sa.text("SELECT min(id), max(id) FROM bags")).one()
            if lo is None or hi - lo < n:
                conn.execute(
                    sa.text(
                        "INSERT INTO bags (qr_id, bag_type, status) SELECT 'OVH' || g, 'parent', 'created' "
                        "FROM generate_series(1, :n) g ON CONFLICT DO NOTHING"
                    ),
                    {"n": n},
                )
                conn.commit()
                lo, hi = conn.execute(sa.text("SELECT min(id), max(id) FROM bags")).one()
            ids = random.Random(11).sample(range(lo, hi + 1), min(4 * n, hi - lo + 1))
            rows = (
                conn.execute(
                    sa.text("SELECT qr_id FROM bags WHERE id = ANY(:ids) LIMIT :n"),
                    {"ids": ids, "n": n},
                )
                .scalars()
                .all()
            )
            return list(rows)
    finally:
        engine.dispose()


def start_server(name: str, database_url: str, workdir: Path) -> tuple[ManagedProcess, int]:
    multiprocess, variants = SERVERS[name]
    port = free_port()
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": "",
        "TRACETRACK_VAR_DIR": str(workdir),
        "TRACETRACK_SECRET_KEY": SECRET,
        "TRACETRACK_MIGRATE_ON_START": "false",
        "CACHE_TTL_SECONDS": "0",
        "CACHE_WARM_ENTRIES": "0",
        "APP_WORKERS": "1",
        "PYTHONPATH": str(ROOT),
        VARIANTS_ENV: ",".join(variants),
    }
    if multiprocess:
        # As `tracetrack app` runs it: a fresh directory shared through the environment.
        shared = workdir / f"multiproc-{port}"
        shared.mkdir()
        env["PROMETHEUS_MULTIPROC_DIR"] = str(shared)
    args = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.instrumentation_overhead:app_variants",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    proc = ManagedProcess(
        f"overhead-{name}", args, workdir / f"overhead-{name}.log", env=env, cwd=ROOT
    ).start()
    proc.wait_ready(http_ok(f"http://127.0.0.1:{port}/healthz"), timeout=60)
    return proc, port


Samples = dict[str, list[list[float]]]  # "client" | "wall" | "cpu" -> per round, per request


def measure_overhead(
    database_url: str,
    workdir: Path,
    rounds: int = 20,
    per_round: int = 250,
    warmup: int = 300,
    distinct_bags: int = 500,
    micro_iterations: int = 1500,
) -> dict[str, Any]:
    """Run the server processes, interleave `rounds` x `per_round` lookups per variant of
    each, return figures.

    Also measures the middleware in isolation (`middleware_cost`). The returned dict
    has "rows" for BENCHMARKS.md (bench/report.py renders them as they are).
    """
    workdir = Path(workdir) / "overhead"
    workdir.mkdir(parents=True, exist_ok=True)
    ensure_user(database_url)
    qr_ids = sample_qr_ids(database_url, distinct_bags)
    targets = [(server, v) for server, (_mp, variants) in SERVERS.items() for v in variants]
    samples: dict[tuple[str, str], Samples] = {
        t: {"client": [], "wall": [], "cpu": []} for t in targets
    }
    procs: list[ManagedProcess] = []
    clients: dict[tuple[str, str], httpx.Client] = {}
    try:
        for server in SERVERS:
            proc, port = start_server(server, database_url, workdir)
            procs.append(proc)
            for v in SERVERS[server][1]:
                clients[server, v] = httpx.Client(
                    base_url=f"http://127.0.0.1:{port}", timeout=30, headers={VARIANT_HEADER: v}
                )
        tok = clients[targets[0]].post(
            "/api/auth/login", json={"username": USERNAME, "password": PASSWORD}
        )
        tok.raise_for_status()
        for c in clients.values():
            c.headers["Authorization"] = f"Bearer {tok.json()['access_token']}"

        for i in range(warmup):
            for t in targets:
                _lookup(clients[t], t, qr_ids[i % len(qr_ids)])
        for c in clients.values():
            c.get(TIMINGS_PATH)  # drop the warm-up samples

        rng = random.Random(5)
        order = list(targets)
        for _round in range(rounds):
            for t in targets:
                samples[t]["client"].append([])
            for _ in range(per_round):
                qr = rng.choice(qr_ids)
                # Shuffled, not rotated: a rotation keeps each process's variants in one
                # cyclic order, and the first request a process sees after serving the
                # others costs more CPU (cold caches, sleeping threads), so one variant
                # would always pay it.
                rng.shuffle(order)
                for t in order:
                    samples[t]["client"][-1].append(_lookup(clients[t], t, qr))
            for t in targets:
                timings = clients[t].get(TIMINGS_PATH).json()
                samples[t]["wall"].append(timings["wall"])
                samples[t]["cpu"].append(timings["cpu"])
    finally:
        for c in clients.values():
            c.close()
        for proc in procs:
            proc.stop()

    def pooled(servers: tuple[str, ...], variant: str) -> Samples:
        """The rounds of several processes, one after another (paired with their `off`)."""
        return {
            kind: [r for s in servers for r in samples[s, variant][kind]]
            for kind in ("client", "wall", "cpu")
        }

    result: dict[str, Any] = {
        "request": "GET /api/bags/{qr_id}, cache TTL 0 (token check, cache miss, PostgreSQL read)",
        "rounds": rounds,
        "requests_per_variant": rounds * per_round,
        "distinct_bags": len(qr_ids),
        "servers": {
            s: {"multiprocess": mp, "variants": list(vs)} for s, (mp, vs) in SERVERS.items()
        },
        "variants": {
            "off": _figures(pooled(MULTIPROCESS_SERVERS, "off")),
            **{f: _figures(pooled(servers, v)) for f, (servers, v) in FIGURES.items()},
        },
        "overhead": {
            f: _overhead(pooled(servers, v), pooled(servers, BASELINES.get(f, "off")))
            for f, (servers, v) in FIGURES.items()
        },
        "middleware_us": {
            mode: middleware_cost(mode, workdir, micro_iterations)
            for mode in ("multiprocess", "in_process")
        },
    }
    result["rows"] = _rows(result)
    return result


def _lookup(client: httpx.Client, target: tuple[str, str], qr: str) -> float:
    t = time.perf_counter()
    r = client.get(f"/api/bags/{qr}")
    elapsed = time.perf_counter() - t
    if r.status_code != 200:
        raise RuntimeError(f"{target}: GET /api/bags/{qr}: {r.status_code} {r.text}")
    return elapsed


def _median_ms(rounds: list[list[float]]) -> float:
    return round(statistics.median(x for r in rounds for x in r) * 1e3, 4)


def _figures(s: Samples) -> dict[str, float]:
    wall = [x for r in s["wall"] for x in r]
    return {
        "server_p50_ms": _median_ms(s["wall"]),
        "server_p95_ms": round(percentile(wall, 95) * 1e3, 4),
        "server_cpu_p50_ms": _median_ms(s["cpu"]),
        "client_p50_ms": _median_ms(s["client"]),
    }


def _overhead(s: Samples, off: Samples) -> dict[str, Any]:
    """Per round (so drift cancels), then the median over rounds."""

    def pct(kind: str) -> list[float]:
        return [
            100 * (statistics.median(a) / statistics.median(b) - 1)
            for a, b in zip(s[kind], off[kind], strict=True)
        ]

    def rounded(xs: list[float]) -> dict[str, Any]:
        return {
            "median": round(statistics.median(xs), 2),
            "range": [round(min(xs), 2), round(max(xs), 2)],
        }

    cpu_us = [
        1e6 * (statistics.median(a) - statistics.median(b))
        for a, b in zip(s["cpu"], off["cpu"], strict=True)
    ]
    off_wall_p50_us = 1e6 * statistics.median(x for r in off["wall"] for x in r)
    low, high = bootstrap_median_ci(cpu_us)
    return {
        "server_p50_pct": rounded(pct("wall")),
        "client_p50_pct": rounded(pct("client")),
        "cpu_p50_us": rounded(cpu_us),
        # Instrumentation is CPU only: its CPU cost is what it adds to the p50 on a free core.
        "cpu_p50_pct_of_wall_p50": round(100 * statistics.median(cpu_us) / off_wall_p50_us, 2),
        "cpu_p50_pct_ci95": [
            round(100 * low / off_wall_p50_us, 2),
            round(100 * high / off_wall_p50_us, 2),
        ],
    }


def bootstrap_median_ci(
    xs: list[float], resamples: int = 2000, seed: int = 7
) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of the median of `xs` (the per-round differences):
    how far the figure could move with other rounds of the same run."""
    rng = random.Random(seed)
    medians = sorted(statistics.median(rng.choices(xs, k=len(xs))) for _ in range(resamples))
    return medians[int(0.025 * resamples)], medians[int(0.975 * resamples) - 1]


# --- the middleware in isolation -----------------------------------------------------


def middleware_cost(mode: str, workdir: Path, iterations: int = 1500) -> dict[str, float]:
    """µs of CPU one request spends in each instrumentation, on a bare route, no network.

    Runs in a fresh interpreter so that `mode` ("multiprocess" or "in_process") really
    decides how prometheus_client stores values, for ours and the instrumentator alike.
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if mode == "multiprocess":
        shared = workdir / f"micro-multiproc-{os.getpid()}"
        shared.mkdir(exist_ok=True)
        env["PROMETHEUS_MULTIPROC_DIR"] = str(shared)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.instrumentation_overhead",
            "--micro",
            "--micro-iterations",
            str(iterations),
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode != 0:
        raise RuntimeError(f"middleware micro-benchmark failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


MICRO_SECRET = "bench-micro-secret-0123456789abcdefghij"


def _micro_authorization() -> bytes:
    from app.security import Principal, TokenCodec

    token, _ttl = TokenCodec(MICRO_SECRET, 3600).issue(Principal(1, "bench", "admin"))
    return f"Bearer {token}".encode()


MICRO_AUTHORIZATION = b""


def _bare_app(kind: str) -> Any:
    from fastapi import APIRouter, FastAPI
    from prometheus_client import CollectorRegistry
    from sqlalchemy import create_engine

    app = FastAPI()
    router = APIRouter(prefix="/api/bags")

    @router.get("/{qr_id}")
    def get_bag(qr_id: str) -> dict[str, str]:
        return {"qr_id": qr_id}

    app.include_router(router)
    if kind == "guard":
        from starlette.middleware import Middleware

        from app.guard import Guard
        from app.guard.middleware import ClientGuardMiddleware, RateLimitMiddleware
        from app.security import TokenCodec
        from common.settings import Settings

        # One user sends every request here, far faster than anyone could: a budget it
        # cannot spend keeps each request on the path a working user takes (a 429 is cheaper).
        settings = Settings(rate_limit_reads="100000000/minute")
        guard = Guard(settings, None, TokenCodec(MICRO_SECRET, 3600))
        app.user_middleware = [  # as app/middleware.py places them, without the others
            Middleware(ClientGuardMiddleware, guard=guard),
            Middleware(RateLimitMiddleware, guard=guard),
        ]
    elif kind == "ours":
        from app.instrumentation import instrument
        from common.settings import Settings

        instrument(app, Settings(), create_engine("sqlite://"), registry=CollectorRegistry())
    elif kind == "instrumentator":
        from prometheus_fastapi_instrumentator import Instrumentator

        Instrumentator(registry=CollectorRegistry()).instrument(app)
    return app


async def _drive(app: Any, n: int) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_message: dict[str, Any]) -> None:
        return None

    start = time.process_time()
    for _ in range(n):
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/api/bags/P0000000001",
            "raw_path": b"/api/bags/P0000000001",
            "query_string": b"",
            "root_path": "",
            # A valid bearer token: the guard keys its rate limits by the user it names.
            "headers": [(b"host", b"bench"), (b"authorization", MICRO_AUTHORIZATION)],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 2),
            "state": {"user_id": 1},
        }
        await app(scope, receive, send)
    return (time.process_time() - start) / n * 1e6


def _micro_main(iterations: int, repeats: int = 20) -> dict[str, float]:
    import asyncio

    global MICRO_AUTHORIZATION
    MICRO_AUTHORIZATION = _micro_authorization()
    kinds = ("none", "ours", "instrumentator", "guard")
    apps = {k: _bare_app(k) for k in kinds}

    async def run() -> dict[str, float]:
        best = dict.fromkeys(kinds, float("inf"))
        for k in kinds:
            await _drive(apps[k], iterations // 4)
        for _ in range(repeats):  # interleaved; the minimum is the least disturbed run
            for k in kinds:
                best[k] = min(best[k], await _drive(apps[k], iterations))
        return {
            "bare_request": round(best["none"], 1),
            "ours": round(best["ours"] - best["none"], 1),
            "instrumentator": round(best["instrumentator"] - best["none"], 1),
            "guard": round(best["guard"] - best["none"], 1),
        }

    return asyncio.run(run())


# --- the report ---------------------------------------------------------------------


def _row(name: str, value: str, budget: str, ok: bool, how: str) -> str:
    return f"| {name} | {value} | {budget} | {'within' if ok else '**over**'} | {how} |"


def _rows(r: dict[str, Any]) -> list[str]:
    ours, ref = r["overhead"]["on"], r["overhead"]["instrumentator"]
    inproc, control = r["overhead"]["on_in_process"], r["overhead"]["off_control"]
    off = r["variants"]["off"]
    micro_mp, micro_ip = r["middleware_us"]["multiprocess"], r["middleware_us"]["in_process"]
    how = (
        f"{r['requests_per_variant']} `{r['request']}` per variant and server process: two uvicorn "
        "processes (1 worker, multiprocess mode as `tracetrack app`) each host off, an identical "
        "off control, ours and prometheus-fastapi-instrumentator side by side (a header picks the "
        "app), a third (in-process values) hosts off and ours; interleaved request by request in a random order over "
        f"{r['rounds']} rounds. Off: server p50 {off['server_p50_ms']} ms, CPU p50 "
        f"{off['server_cpu_p50_ms']} ms, client p50 {off['client_p50_ms']} ms. Verdict on the CPU p50 "
        "difference from off in the same process per round (median of rounds of both processes) "
        "relative to off's server p50: instrumentation only costs CPU, and CPU time is immune to "
        "waiting for a shared core. The off control's difference is the noise floor; wall-clock p50 "
        "differences are shown with their per-round range"
    )
    rows = [
        _row(
            "Instrumentation overhead, p50 of a DB-backed request",
            f"{ours['cpu_p50_pct_of_wall_p50']:+.2f} % ({ours['cpu_p50_us']['median']:+.1f} µs CPU; 95 % "
            f"bootstrap interval {ours['cpu_p50_pct_ci95'][0]:+.2f} to {ours['cpu_p50_pct_ci95'][1]:+.2f} %); "
            f"noise floor (identical uninstrumented app) {control['cpu_p50_pct_of_wall_p50']:+.2f} % "
            f"({control['cpu_p50_us']['median']:+.1f} µs); wall p50 "
            f"{ours['server_p50_pct']['median']:+.2f} % server-side (rounds {ours['server_p50_pct']['range']}), "
            f"{ours['client_p50_pct']['median']:+.2f} % client-side; in-process values "
            f"{inproc['cpu_p50_pct_of_wall_p50']:+.2f} %; the middleware alone ({micro_mp['ours']} µs) is "
            f"{100 * micro_mp['ours'] / (1e3 * off['server_p50_ms']):.2f} % of off's p50",
            f"< {BUDGET_PCT:g} %",
            ours["cpu_p50_pct_of_wall_p50"] < BUDGET_PCT,
            how,
        )
    ]
    cheaper = (
        ours["cpu_p50_us"]["median"] < ref["cpu_p50_us"]["median"]
        and micro_mp["ours"] < micro_mp["instrumentator"]
        and micro_ip["ours"] < micro_ip["instrumentator"]
    )
    rows.append(
        _row(
            "Instrumentation cost vs prometheus-fastapi-instrumentator",
            f"in the app: ours {ours['cpu_p50_us']['median']:+.1f} µs CPU/request, instrumentator "
            f"{ref['cpu_p50_us']['median']:+.1f} µs; middleware alone: ours {micro_mp['ours']} µs "
            f"(multiprocess) / {micro_ip['ours']} µs (in-process), instrumentator "
            f"{micro_mp['instrumentator']} / {micro_ip['instrumentator']} µs",
            "ours cheaper",
            cheaper,
            "in the app: as above, the instrumentator with its defaults (`Instrumentator().instrument(app)"
            ".expose(app)`); alone: CPU per request of a bare FastAPI route driven in-process without "
            f"network (bare request {micro_ip['bare_request']} µs), minimum of 20 interleaved runs, "
            "both libraries in the same prometheus_client mode",
        )
    )
    guard = r["overhead"]["guard"]
    rows.append(
        _row(
            "Security layer (client identity, IP blocks, rate limits), CPU per request",
            f"{guard['cpu_p50_us']['median']:+.1f} µs CPU in the app (rounds {guard['cpu_p50_us']['range']};"
            f" {guard['cpu_p50_pct_of_wall_p50']:+.2f} % of the p50); noise floor (identical app)"
            f" {control['cpu_p50_us']['median']:+.1f} µs; its two layers alone {micro_ip['guard']} µs",
            f"< {GUARD_BUDGET_US:g} µs",
            guard["cpu_p50_us"]["median"] < GUARD_BUDGET_US,
            "in the app: the same run, `off` (the guard on, metrics off) against `guard_off` (both"
            " off: TRACETRACK_GUARD_ENABLED=false) in the same two server processes, CPU p50"
            " difference per round, median of rounds; each request carries a valid token, so it"
            " spends that user's reads budget (counted locally, handed to the shared storage in"
            " batches). Alone: the two ASGI layers around a bare route driven in-process, minimum of"
            " 20 interleaved runs. A login adds the lockout check: two storage reads, next to a"
            " ~20 ms password hash",
        )
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a seeded database (default: a fresh one here)")
    parser.add_argument(
        "--bags", type=int, default=50_000, help="bags to seed into a fresh database"
    )
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--per-round", type=int, default=250)
    parser.add_argument("--workdir", type=Path, default=ROOT / "var" / "bench-overhead")
    parser.add_argument("--micro", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--micro-iterations", type=int, default=1500)
    results.add_record_flag(parser)
    args = parser.parse_args(argv)
    if args.micro:  # the child of middleware_cost()
        print(json.dumps(_micro_main(args.micro_iterations)))
        return 0

    from app.db import migrate
    from app.seed import seed_database
    from tooling.pgserver import PostgresServer

    args.workdir.mkdir(parents=True, exist_ok=True)
    pg = None
    try:
        url = args.database_url
        if url is None:
            pg = PostgresServer(args.workdir / "pg").start()
            url = pg.create_database(f"overhead_{os.getpid()}")
            migrate(url)
            seed_database(url, bags=args.bags, progress=False)
        result = measure_overhead(
            url,
            args.workdir,
            rounds=args.rounds,
            per_round=args.per_round,
            micro_iterations=args.micro_iterations,
        )
    finally:
        if pg is not None:
            pg.stop()
    results.finish("overhead", result, args, "bench.instrumentation_overhead", argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
