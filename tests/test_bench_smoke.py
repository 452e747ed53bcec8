"""The breach-to-delivery, bridge and locust benchmarks run end to end at tiny sizes and hand
bench/run.py the figures and BENCHMARKS.md rows it expects. Shape only: budgets are
`make bench`'s business, never asserted here."""

from __future__ import annotations

from pathlib import Path

from app.db import migrate
from app.seed import seed_database
from bench.breach_to_delivery import measure_breach_to_delivery
from bench.bridge import run_bridge_bench
from bench.capacity import capacity_search
from bench.cpu_per_request import APP_KINDS, run_against
from bench.locust_load import run_locust
from common.topology import APP_JOB
from tests.support.appkit import start_app_process
from tooling.pgserver import PostgresServer
from tooling.procs import free_port


def _cells(row: str) -> list[str]:
    assert row.startswith("| ") and row.endswith(" |"), row
    cells = [c.strip() for c in row[2:-2].split(" | ")]
    assert len(cells) == 5, row  # figure, measured, budget, verdict, how
    return cells


def test_breach_reaches_every_channel_through_the_real_chain(
    tmp_path: Path, database_url: str
) -> None:
    out = measure_breach_to_delivery(tmp_path, database_url, modes=("fast",), timeout=60)
    fast = out["fast"]
    assert "error" not in fast, fast
    assert fast["timed_out"] == []
    assert fast["config"] == {
        "scrape_interval_s": 1.0,
        "evaluation_interval_s": 1.0,
        "for_s": 1.0,
        "group_wait_s": 1.0,
    }
    channels = fast["channels_s"]
    assert set(channels) == {"email", "sms", "webhook"}
    assert fast["max_s"] == max(channels.values())
    # The chain's steps happen in order, each after the breach, before any delivery.
    st = fast["stages_s"]
    assert 0 < st["pending"] <= st["firing"] <= st["at_bridge"] <= min(channels.values()), fast
    # When after the last good scrape the app died is a reported figure, not a bound: on a
    # busy machine noticing the scrape takes a moment.
    assert fast["breach_after_scrape_s"] >= 0
    [row] = out["rows"]
    name, value, budget, verdict, how = _cells(row)
    assert "fast test configuration" in name and budget == "< 5 s"
    assert value.startswith(f"{fast['max_s']:.1f} s (email ")
    assert verdict in ("within", "**over**")
    assert "TraceTrackTargetDown" in how


def test_locust_figures_and_rows(tmp_path: Path, database_url: str) -> None:
    migrate(database_url)
    seed_database(database_url, bags=2000, users=50, progress=False)
    proc, port = start_app_process(tmp_path / "app", database_url)
    try:
        out = run_locust(
            f"http://127.0.0.1:{port}",
            2000,
            users=5,
            spawn_rate=5,
            duration="4s",
            workdir=tmp_path / "locust",
            stop_timeout=5,
        )
    finally:
        proc.stop()
    assert "error" not in out, out
    agg = out["aggregate"]
    assert agg["requests"] > 5 and agg["failures"] == 0, out.get("failures")
    assert out["error_rate_pct"] == 0.0
    assert out["endpoints"]["/api/auth/login"]["requests"] == 5  # each user logs in once
    assert sum(e["requests"] for e in out["endpoints"].values()) == agg["requests"]
    assert agg["p50_ms"] is not None and agg["p50_ms"] <= agg["p95_ms"] <= agg["p99_ms"]
    assert isinstance(out["locust_cpu_warning"], bool) and out["locust_cpu_pct_of_core"] > 0
    rows = out["rows"]
    assert [_cells(r)[0] for r in rows] == [
        "5 locust users: error rate",
        "5 locust users: response time p95",
        "5 locust users: never rate-limited",
        "5 locust users: throughput",
    ]
    assert _cells(rows[0])[1] == f"0.000 % (0 of {agg['requests']:,})"
    # The app's own counter, read from /metrics before and after.
    assert out["rate_limited"] == 0
    assert (
        _cells(rows[2])[1].startswith("0 requests answered 429") and _cells(rows[2])[3] == "within"
    )
    assert "5 of 5 users had logged in" in _cells(rows[0])[4]


def test_locust_against_a_dead_app_reports_the_failures(tmp_path: Path) -> None:
    out = run_locust(
        f"http://127.0.0.1:{free_port()}",
        2000,
        users=3,
        spawn_rate=3,
        duration="2s",
        workdir=tmp_path,
        stop_timeout=1,
    )
    assert out["aggregate"]["failures"] == out["aggregate"]["requests"] > 0
    assert out["error_rate_pct"] == 100.0
    assert out["failures"] and out["failures"][0]["name"] == "/api/auth/login"
    name, value, budget, verdict, how = _cells(out["rows"][0])
    assert verdict == "**over**" and value.startswith("100.000 %")
    assert "most frequent failures:" in how and "/api/auth/login" in how


def test_bridge_bench_delivers_every_notification_and_reports_rows(tmp_path: Path) -> None:
    out = run_bridge_bench(tmp_path, posts=20, notifications=100)
    assert out["ack"]["n"] == 20 and out["ack_concurrent"]["n"] == 20
    tp = out["throughput"]
    for mode in ("drain", "end_to_end"):
        # Held back in the drain run, then every one of them delivered.
        assert tp[mode]["notifications"] == 100 and tp[mode]["per_second"] > 0, tp
    assert [_cells(r)[0] for r in out["rows"]] == [
        "Alert bridge webhook ack, p99",
        "Alert bridge webhook ack, p99 at 4 concurrent posts",
        "Alert bridge sustained delivery (backlog drain)",
        "Alert bridge delivery while receiving",
    ]


def test_ha_bench_churn_figures_and_its_benchmarks_section(tmp_path: Path) -> None:
    from bench import report, results
    from bench.ha import SECTION, measure_churn, record_parts

    churn = measure_churn(tmp_path / "churn", dead=5)
    folded = churn["folded (the app)"]
    assert folded["files"] <= 3 < churn["prometheus_client alone"]["files"]
    recorded = tmp_path / "results"
    (path,) = record_parts({"churn": churn}, recorded)
    assert path.name == "ha_churn.json"
    text = report.render(results.load(recorded))
    assert text.count(f"## {SECTION}") == 1 and "after 5 dead workers" in text


def test_cpu_per_request_measures_every_kind_against_both_floors(
    tmp_path: Path, database_url: str, postgres: PostgresServer, redis_server
) -> None:
    migrate(database_url)
    seed_database(database_url, bags=2000, users=50, progress=False)
    redis_proc, redis_port = redis_server
    out = run_against(
        database_url,
        bags=2000,
        workdir=tmp_path,
        redis_url=f"redis://127.0.0.1:{redis_port}/0",
        pg_pid=postgres.pid,
        redis_pid=redis_proc.pid,
        rounds=2,
        per_round=10,
    )
    kinds = out["kinds"]
    assert set(kinds) == {*APP_KINDS, "fastapi_floor", "asgi_floor"}
    for name in APP_KINDS:
        k = kinds[name]
        assert k["server_us"] > 0 and k["x_fastapi_floor"] > 0, (name, k)
        assert k["postgresql_us"] is not None and k["redis_us"] is not None
    assert kinds["scan"]["postgresql_us"] > 0  # a write reaches PostgreSQL
    names = [_cells(r)[0] for r in out["rows"]]
    assert names[0] == "CPU per request: `GET /healthz`" and len(names) == len(kinds)
    hit = _cells(out["rows"][1])
    assert hit[2] == "≤ 3× floor" and hit[3] in ("within", "**over**")


def test_capacity_trial_splits_ramp_and_steady_state_and_lists_alerts(
    tmp_path: Path, database_url: str, postgres: PostgresServer
) -> None:
    migrate(database_url)
    seed_database(database_url, bags=2000, users=50, progress=False)
    proc, port = start_app_process(tmp_path / "app", database_url)
    try:
        out = capacity_search(
            f"http://127.0.0.1:{port}",
            2000,
            workdir=tmp_path / "capacity",
            pids={"app": proc.pid, "postgresql": postgres.pid},
            targets={APP_JOB: [f"127.0.0.1:{port}"]},
            start=6,
            steady_s=8,
            max_trials=1,
        )
    finally:
        proc.stop()
    [trial] = out["trials"]
    assert trial["users"] == 6
    steady, ramp = trial["steady"], trial["ramp"]
    assert steady["requests"] > 0 and ramp["requests"] >= 0, trial  # 6 users arrive at once
    assert steady["from"] >= ramp["to"]
    cpu = steady["cpu_us_per_request"]
    # Every party served the steady state, the app included (its CPU counts the threads
    # that hashed the logins and have exited since: bench/cpu.py).
    assert set(cpu) == {"app", "postgresql", "locust"} and min(cpu.values()) > 0, cpu
    assert trial["passed"] is False  # under 20 s of steady state never counts as a pass
    assert set(trial["alerts"]) >= {"pending", "firing"}
    assert "Watchdog" not in " ".join(trial["alerts"]["firing"])
    assert [_cells(r)[0] for r in out["rows"]] == [
        "6 locust users",
        "Most locust users served (capacity search)",
    ]
