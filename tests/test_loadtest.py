"""The locust file runs headless against a real app over a seeded database, error-free."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from app.db import migrate
from app.seed import seed_database
from tests.support.appkit import start_app_process
from tooling.checkout import ROOT


def test_locustfile_runs_headless_without_failures(database_url: str, tmp_path: Path) -> None:
    migrate(database_url)
    seeded = seed_database(database_url, bags=5000, users=50, progress=False)
    proc, port = start_app_process(tmp_path, database_url, workers=1)
    try:
        locust = str(Path(sys.executable).with_name("locust"))
        run = subprocess.run(
            [
                locust,
                "-f",
                str(ROOT / "loadtest" / "locustfile.py"),
                "--headless",
                "-u",
                "30",
                "-r",
                "15",
                "-t",
                "15s",
                # Requests in flight at the end finish and are counted (a write the
                # server stored must show in the statistics the test compares with).
                "--stop-timeout",
                "20",
                "--host",
                f"http://127.0.0.1:{port}",
                "--csv",
                str(tmp_path / "lt"),
                "--only-summary",
                "--loglevel",
                "WARNING",
            ],
            # Short think times: every task of the mix runs within the window even when
            # logins (argon2) are slow on a loaded machine.
            env={
                "TT_SEEDED_BAGS": "5000",
                "TT_WAIT_MIN": "0.05",
                "TT_WAIT_MAX": "0.2",
                "PATH": "/usr/bin:/bin",
            },
            capture_output=True,
            text=True,
            timeout=90,
        )
    finally:
        proc.stop()
    rows = {r["Name"]: r for r in csv.DictReader(open(tmp_path / "lt_stats.csv"))}
    total = rows["Aggregated"]
    assert int(total["Request Count"]) > 50, run.stderr[-2000:]
    assert int(total["Failure Count"]) == 0, (tmp_path / "lt_failures.csv").read_text()
    # Every task of the mix ran at least once.
    for name in (
        "/api/auth/login",
        "/api/bags/{qr_id}",
        "/api/bags?q=",
        "/api/scans",
        "/api/bags/{qr_id}/scans",
        "/api/bills",
    ):
        assert int(rows[name]["Request Count"]) > 0, name
    # Every write carried an Idempotency-Key: one stored answer per scan and bill.
    writes = sum(
        int(rows[n]["Request Count"]) - int(rows[n]["Failure Count"])
        for n in ("/api/scans", "/api/bills")
    )
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        keys = conn.execute(sa.text("SELECT count(*) FROM idempotency_keys")).scalar()
        scans = conn.execute(sa.text("SELECT count(*) FROM scans")).scalar()
        bills = conn.execute(sa.text("SELECT count(*) FROM bills WHERE bill_number LIKE 'LT-%'"))
        new_writes = scans - seeded.scans + bills.scalar()  # type: ignore[operator]
    engine.dispose()
    assert keys == new_writes
    # locust's CSV is written as the run ends, before the requests still in flight
    # (given --stop-timeout) finish: it may count a few writes fewer than were stored.
    assert writes <= keys
