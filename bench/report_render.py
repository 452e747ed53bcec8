"""Weekly report render time over eight days of history at the shipped scrape interval.

    python -m bench.report_render [--workdir DIR]

Backfills eight days of the reports' synthetic history (tests/support/history.py) at
10 s between samples (prometheus/prometheus.yml's scrape_interval) into a real
Prometheus with promtool, stores the known alert history in the bridge's store, then
times `generate` of the weekly report (every query, chart, the HTML, the PDF and the
JSON) end to end, three times.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from bench import results
from tooling.checkout import ROOT

SHIPPED_SCRAPE_SECONDS = 10
RUNS = 3
BUDGET_SECONDS = 15  # docs/architecture.md §7


def measure_report_render(workdir: Path) -> dict[str, Any]:
    from reports.generate import generate
    from reports.period import period_containing
    from reports.settings import ReportSettings
    from tests.support import history as h

    if workdir.exists():
        shutil.rmtree(workdir)
    t = time.perf_counter()
    proc, url = h.start_prometheus(workdir / "prometheus", step=SHIPPED_SCRAPE_SECONDS)
    backfill_seconds = time.perf_counter() - t
    try:
        store = f"sqlite:///{workdir / 'bridge.sqlite3'}"
        h.fill_alert_history(store)
        settings = ReportSettings(
            prometheus_url=url, bridge_database_url=store, report_dir=workdir / "reports"
        )
        period = period_containing("weekly", date(2025, 3, 3), settings.tz)
        seconds = []
        for _ in range(RUNS):
            t = time.perf_counter()
            generate(settings, period, datetime.now(UTC))
            seconds.append(time.perf_counter() - t)
        samples = (h.END - h.START).total_seconds() / SHIPPED_SCRAPE_SECONDS + 1
    finally:
        proc.stop()
    median = statistics.median(seconds)
    verdict = "within" if median < BUDGET_SECONDS else "**over**"
    row = (
        f"| Weekly report over eight days at the {SHIPPED_SCRAPE_SECONDS} s scrape interval |"
        f" {median:.1f} s median (runs {', '.join(f'{s:.1f}' for s in seconds)} s) |"
        f" < {BUDGET_SECONDS} s | {verdict} |"
        f" `python -m bench.report_render`: {int(samples):,} samples per series for ~55 series"
        " (app, exporter, histogram buckets) backfilled into a real Prometheus with promtool,"
        " alert history in the bridge's SQLite store; `generate` of ISO week 2025-W10 end to"
        " end (about 80 queries, four at a time, 6 matplotlib charts, HTML, fpdf2 PDF, JSON),"
        f" {RUNS} runs |"
    )
    return {
        "rows": [row],
        "scrape_interval_seconds": SHIPPED_SCRAPE_SECONDS,
        "days": (h.END - h.START).days,
        "samples_per_series": int(samples),
        "backfill_seconds": round(backfill_seconds, 1),
        "weekly_seconds": [round(s, 2) for s in seconds],
        "weekly_median_seconds": round(statistics.median(seconds), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=ROOT / "var" / "bench" / "report_render")
    results.add_record_flag(parser)
    args = parser.parse_args(argv)
    out = measure_report_render(args.workdir)
    results.finish("report_render", out, args, "bench.report_render", argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
