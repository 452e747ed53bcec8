"""Where stored reports live: `<reports dir>/<kind>/<period>/report.{html,pdf,json}`.

Written by `tracetrack report` / `tracetrack reporter`, read by the app's
/analytics/reports. report.json is written last, so its presence marks a complete
report.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal, get_args

# The report kinds, once: `tracetrack report KIND`, the reporter's schedule, the
# recipients' lists and the stored reports' directories.
Kind = Literal["daily", "weekly"]
KINDS: tuple[Kind, ...] = get_args(Kind)
FILES = {
    "report.html": "text/html",
    "report.pdf": "application/pdf",
    "report.json": "application/json",
}
PERIOD = {"daily": re.compile(r"^\d{4}-\d{2}-\d{2}$"), "weekly": re.compile(r"^\d{4}-W\d{2}$")}


def report_dir(root: Path, kind: str, period: str) -> Path:
    """The directory of one report; ValueError for a kind or period that is not one
    (never a path outside `root`)."""
    if kind not in KINDS:
        raise ValueError(f"unknown report kind {kind!r}; expected daily or weekly")
    if not PERIOD[kind].match(period):
        shape = "YYYY-MM-DD" if kind == "daily" else "YYYY-Www"
        raise ValueError(f"{kind} report periods look like {shape}, not {period!r}")
    return root / kind / period


def list_reports(root: Path) -> list[dict[str, Any]]:
    """Complete stored reports (weekly, then daily; newest first) with their headlines."""
    found = []
    for kind in KINDS:
        for path in (root / kind).glob("*/report.json"):
            period = path.parent.name
            if not PERIOD[kind].match(period):
                continue
            try:
                report = json.loads(path.read_text())
                availability = report["slo"]["availability"]["value"]
                title = report["title"]
                generated = report["generated_at"]
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a damaged file is skipped, not a 500
            found.append(
                {
                    "kind": kind,
                    "period": period,
                    "title": title,
                    "generated_at": generated,
                    "availability": availability,
                    "files": {name: f"/analytics/reports/{kind}/{period}/{name}" for name in FILES},
                }
            )
    return sorted(found, key=lambda r: (r["kind"], r["period"]), reverse=True)
