"""One report, start to finish: figures -> charts -> report.json, report.html,
report.pdf and the chart PNGs in the report's directory."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from common import reportfiles
from reports import charts, figures, render
from reports.history import AlertHistory
from reports.period import Period
from reports.prometheus import Prometheus
from reports.settings import ReportSettings

SHIPPED_SCRAPE_INTERVAL = 10.0  # prometheus/prometheus.yml


@dataclass
class Rendered:
    directory: Path
    report: dict[str, Any]
    html: str  # standalone: charts as data URIs
    pdf: bytes
    charts: list[tuple[str, str, bytes]]  # (file name, caption, PNG)


def _write(path: Path, data: bytes) -> None:
    """Atomically: a reader (the app's /analytics/reports) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def generate(
    settings: ReportSettings, period: Period, now: datetime, out: Path | None = None
) -> Rendered:
    prom = Prometheus(settings.prometheus_url, timeout=settings.report_query_timeout_seconds)
    history = AlertHistory(settings.bridge_store_url())
    try:
        report = figures.build(
            prom,
            history.instances,
            period,
            scrape_interval=settings.report_scrape_interval_seconds
            or prom.scrape_interval(default=SHIPPED_SCRAPE_INTERVAL),
            generated_at=now,
            db_size_limit=settings.report_db_size_limit_bytes,
        )
    finally:
        history.close()
    pngs = charts.render_all(report)
    directory = out or reportfiles.report_dir(settings.reports_dir(), period.kind, period.label)
    rendered = Rendered(
        directory, report, render.html(report, pngs), render.pdf(report, pngs), pngs
    )
    for name, _caption, png in pngs:
        _write(directory / "charts" / name, png)
    _write(directory / "report.pdf", rendered.pdf)
    _write(directory / "report.html", rendered.html.encode())
    # Last: report.json marks the report complete.
    _write(directory / "report.json", json.dumps(report, indent=2).encode())
    return rendered
