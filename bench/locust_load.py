"""1000 locust users against the app (docs/architecture.md §7: error rate < 0.1 %, p95 < 1 s), for `make bench`.

    results["locust"] = run_locust(base_url, seeded_bags, workdir=workdir)
    .venv/bin/python -m bench.locust_load http://127.0.0.1:8000 5000000 [-u 1000 -t 60s]

Runs `locust -f loadtest/locustfile.py --headless` (the shipped load test, unchanged)
against an app that is already running on a seeded database, over loopback, and
reads locust's CSV statistics. Locust runs on the same 2 cores as the app and
PostgreSQL; its own CPU use is recorded, and when it passes 90 % of a core (locust
warns) the figures are a lower bound of what the app can serve.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench import results
from common.metric_names import RATE_LIMITED
from tooling.checkout import ROOT
from tooling.stackconfig import duration_seconds

LOCUSTFILE = ROOT / "loadtest" / "locustfile.py"
ERROR_BUDGET_PCT = 0.1
P95_BUDGET_MS = 1000.0
LOGIN = "/api/auth/login"
CPU_WARNING = "CPU usage above"


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _num(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "", "N/A") else None
    except ValueError:
        return None


def _entry(row: dict[str, str]) -> dict[str, Any]:
    return {
        "requests": int(row["Request Count"]),
        "failures": int(row["Failure Count"]),
        "p50_ms": _num(row.get("50%")),
        "p95_ms": _num(row.get("95%")),
        "p99_ms": _num(row.get("99%")),
        "max_ms": _num(row.get("Max Response Time")),
        "rps": _num(row.get("Requests/s")),
    }


def _at_full_load(history: list[dict[str, str]], users: int) -> dict[str, Any] | None:
    """The last history row of the aggregate with every user running: locust's
    'current' figures (a sliding window of the last ~10 s)."""
    rows = [
        r for r in history if r.get("Name") == "Aggregated" and r.get("User Count") == str(users)
    ]
    if not rows:
        return None
    last = rows[-1]
    return {
        "p95_ms": _num(last.get("95%")),
        "p50_ms": _num(last.get("50%")),
        "rps": _num(last.get("Requests/s")),
        "failures_per_s": _num(last.get("Failures/s")),
    }


def run_locust(
    base_url: str,
    seeded_bags: int,
    users: int = 1000,
    spawn_rate: int = 100,
    duration: str = "60s",
    *,
    workdir: Path,
    password: str | None = None,
    stop_timeout: float = 60.0,
    extra_timeout: float = 120.0,
) -> dict[str, Any]:
    """Run the shipped locustfile headless; figures and BENCHMARKS.md rows.

    stop_timeout: at the end, users finish the request in flight for up to this long,
      so the slowest requests (and logins) are counted instead of silently dropped.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    prefix = workdir / "locust"
    log_path = workdir / "locust.log"
    locust = str(Path(sys.executable).with_name("locust"))
    cmd = [
        locust,
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "-u",
        str(users),
        "-r",
        str(spawn_rate),
        "-t",
        duration,
        "--host",
        base_url,
        "--csv",
        str(prefix),
        "--csv-full-history",
        "--stop-timeout",
        f"{stop_timeout:g}",
        "--only-summary",
        "--loglevel",
        "INFO",
    ]
    # The shipped think times, whatever the caller's environment says.
    env = {k: v for k, v in os.environ.items() if k not in ("TT_WAIT_MIN", "TT_WAIT_MAX")}
    env["TT_SEEDED_BAGS"] = str(seeded_bags)
    if password is not None:
        env["TT_PASSWORD"] = password
    result: dict[str, Any] = {
        "users": users,
        "spawn_rate": spawn_rate,
        "duration": duration,
        "stop_timeout_s": stop_timeout,
        "command": f"locust -f loadtest/locustfile.py --headless -u {users} -r {spawn_rate} "
        f"-t {duration}",
        "log": str(log_path),
    }

    limited_before = rate_limited(base_url)
    cpu_before = psutil.cpu_times()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    try:
        with log_path.open("wb") as log:
            run = subprocess.run(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                stdin=subprocess.DEVNULL,
                timeout=duration_seconds(duration) + stop_timeout + extra_timeout,
            )
        result["exit_code"] = run.returncode  # 1 just means "some requests failed"
    except subprocess.TimeoutExpired:
        result["error"] = (
            f"locust did not finish within {duration} + {stop_timeout + extra_timeout:.0f} s"
        )
    wall = time.monotonic() - t0
    limited_after = rate_limited(base_url)
    result["rate_limited"] = (
        None
        if limited_before is None or limited_after is None
        else round(limited_after - limited_before)
    )
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_after = psutil.cpu_times()

    locust_cpu = (
        children_after.ru_utime
        - children_before.ru_utime
        + children_after.ru_stime
        - children_before.ru_stime
    )
    total = sum(cpu_after) - sum(cpu_before)
    idle = (cpu_after.idle + cpu_after.iowait) - (cpu_before.idle + cpu_before.iowait)
    log_text = log_path.read_text(errors="replace")
    result.update(
        {
            "wall_s": round(wall, 1),
            "locust_cpu_pct_of_core": round(100 * locust_cpu / wall, 1) if wall else None,
            "machine_cpu_busy_pct": round(100 * (1 - idle / total), 1) if total else None,
            "locust_cpu_warning": CPU_WARNING in log_text,
        }
    )

    stats = _read_csv(Path(f"{prefix}_stats.csv"))
    by_name = {r["Name"]: r for r in stats}
    if "Aggregated" not in by_name:
        result.setdefault(
            "error",
            "locust wrote no statistics; log tail:\n" + "\n".join(log_text.splitlines()[-20:]),
        )
        result["rows"] = rows_for(result)
        return result
    agg = _entry(by_name["Aggregated"])
    result["aggregate"] = agg
    result["error_rate_pct"] = (
        round(100 * agg["failures"] / agg["requests"], 4) if agg["requests"] else None
    )
    result["endpoints"] = {name: _entry(r) for name, r in by_name.items() if name != "Aggregated"}
    result["full_load"] = _at_full_load(_read_csv(Path(f"{prefix}_stats_history.csv")), users)
    result["failures"] = sorted(
        (
            {"name": f["Name"], "error": f["Error"], "count": int(f["Occurrences"])}
            for f in _read_csv(Path(f"{prefix}_failures.csv"))
        ),
        key=lambda f: -f["count"],
    )
    result["rows"] = rows_for(result)
    return result


def rate_limited(base_url: str) -> float | None:
    """The app's 429s from its rate limits so far (all route classes, all workers), or
    None without /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        r = httpx.get(f"{base_url.rstrip('/')}/metrics", timeout=30)
    except httpx.HTTPError:
        return None
    if r.status_code != 200:
        return None
    return sum(
        sample.value
        for family in text_string_to_metric_families(r.text)
        if family.name == RATE_LIMITED.removesuffix("_total")
        for sample in family.samples
        if sample.name == RATE_LIMITED
    )


def _row(name: str, value: str, budget: str, ok: bool | None, how: str) -> str:
    verdict = {True: "within", False: "**over**", None: "—"}[ok]
    return f"| {name} | {value} | {budget} | {verdict} | {how} |"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _ms(v: float | None) -> str:
    return "—" if v is None else f"{v:,.0f} ms"


def rows_for(r: dict[str, Any]) -> list[str]:
    users = r["users"]
    title = f"{users:,} locust users"
    if "aggregate" not in r:
        return [
            _row(
                f"{title}: error rate and p95",
                "run failed",
                f"< {ERROR_BUDGET_PCT} %, < 1 s",
                False,
                _cell(r.get("error", "unknown error")),
            )
        ]
    agg = r["aggregate"]
    cpu = (
        f"locust used {r['locust_cpu_pct_of_core']} % of one core, the machine was "
        f"{r['machine_cpu_busy_pct']} % busy"
    )
    if r["locust_cpu_warning"]:
        cpu += (
            "; **locust warned its CPU passed 90 %**: it could not generate load faster, so "
            "the throughput is a lower bound of the app's capacity and latencies include "
            "the client's own queueing"
        )
    login_stats = r["endpoints"].get(LOGIN, {})
    logins = login_stats.get("requests", 0) - login_stats.get("failures", 0)
    how = (
        f"`{r['command']}` (the shipped locustfile, unchanged) against the app over "
        f"loopback; whole run including the ramp-up and the logins ({logins:,} of {users:,} "
        f"users had logged in by the end); requests in flight at the end were given "
        f"{r['stop_timeout_s']:g} s to finish and count; {cpu}"
    )
    failures = r.get("failures") or []
    if failures:
        top = "; ".join(
            f"{f['count']}× {f['name']}: {_cell(f['error'])[:120]}" for f in failures[:3]
        )
        how_err = f"{how}; most frequent failures: {top}"
    else:
        how_err = how
    rate = r["error_rate_pct"]
    login = r["endpoints"].get(LOGIN, {})
    others = [
        e["p95_ms"] for n, e in r["endpoints"].items() if n != LOGIN and e["p95_ms"] is not None
    ]
    full = r.get("full_load") or {}
    p95_detail = (
        f"p50 {_ms(agg['p50_ms'])}, p99 {_ms(agg['p99_ms'])}; login p95 "
        f"{_ms(login.get('p95_ms'))}, slowest other endpoint p95 "
        f"{_ms(max(others) if others else None)}"
    )
    if full:
        p95_detail += f"; last ~10 s with all {users:,} users: p95 {_ms(full.get('p95_ms'))}"
    return [
        _row(
            f"{title}: error rate",
            "no request completed"
            if rate is None
            else f"{rate:.3f} % ({agg['failures']:,} of {agg['requests']:,})",
            f"< {ERROR_BUDGET_PCT} %",
            rate is not None and rate < ERROR_BUDGET_PCT,
            how_err,
        ),
        _row(
            f"{title}: response time p95",
            f"{_ms(agg['p95_ms'])} ({p95_detail})",
            "< 1 s",
            agg["p95_ms"] is not None and agg["p95_ms"] < P95_BUDGET_MS,
            "as above, all requests",
        ),
        limits_row(r, title),
        _row(
            f"{title}: throughput",
            f"{agg['rps']:,.0f} requests/s"
            + (f" ({full['rps']:,.0f}/s at the end)" if full.get("rps") is not None else ""),
            "—",
            None,
            "as above (think time 0.5–2 s per user, so throughput follows the users)",
        ),
    ]


def limits_row(r: dict[str, Any], title: str) -> str:
    limited = r.get("rate_limited")
    answered_429 = sum(f["count"] for f in r.get("failures") or [] if "429" in f["error"])
    return _row(
        f"{title}: never rate-limited",
        "no /metrics to read"
        if limited is None
        else f"{limited:,} requests answered 429 by the rate limits"
        f" (tracetrack_rate_limited_total over the run); {answered_429:,} 429s seen by locust",
        "0",
        None if limited is None else limited == 0 and answered_429 == 0,
        "as above, with the shipped limits (RATE_LIMIT_LOGIN/WRITES/READS defaults): the app's"
        " counter read from /metrics before and after the run",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="locust load against a running app")
    parser.add_argument("base_url")
    parser.add_argument("seeded_bags", type=int)
    parser.add_argument("-u", "--users", type=int, default=1000)
    parser.add_argument("-r", "--spawn-rate", type=int, default=100)
    parser.add_argument("-t", "--duration", default="60s")
    parser.add_argument("--workdir", type=Path, default=ROOT / "var" / "bench" / "locust")
    results.add_record_flag(parser)
    args = parser.parse_args(argv)
    out = run_locust(
        args.base_url,
        args.seeded_bags,
        args.users,
        args.spawn_rate,
        args.duration,
        workdir=args.workdir,
    )
    results.finish("locust", out, args, "bench.locust_load", argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
