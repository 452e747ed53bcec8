"""`tracetrack report daily|weekly` and `tracetrack reporter`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common.reportfiles import KINDS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="render the daily or weekly report (HTML, PDF, JSON)")
    p.add_argument("kind", choices=KINDS)
    p.add_argument(
        "--at",
        metavar="YYYY-MM-DD",
        help="a day of the period to report on (default: yesterday, or last week)",
    )
    p.add_argument("--out", type=Path, help="directory (default var/reports/<kind>/<period>/)")
    p.add_argument("--send", action="store_true", help="also email it to the 'reports' recipients")
    p.set_defaults(func=run_report)

    r = sub.add_parser("reporter", help="send the daily and weekly reports on schedule")
    r.set_defaults(func=run_reporter)


def run_report(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from pydantic import ValidationError

    from common.settings import settings_error
    from reports.generate import generate
    from reports.history import HistoryError
    from reports.period import last_complete, parse_day, period_containing
    from reports.prometheus import PrometheusError
    from reports.recipients import RecipientsError
    from reports.settings import ReportSettings

    try:
        settings = ReportSettings()
        now = datetime.now(UTC)
        period = (
            period_containing(args.kind, parse_day(args.at), settings.tz)
            if args.at
            else last_complete(args.kind, now, settings.tz)
        )
        rendered = generate(settings, period, now, args.out)
        print(f"{period.title}: {rendered.directory}")
        for name in ("report.html", "report.pdf", "report.json"):
            print(f"  {rendered.directory / name}")
        if args.send:
            from reports.mail import send_report

            sent = send_report(settings, rendered)
            print(f"emailed to {', '.join(sent) or 'nobody (no recipients configured)'}")
    except ValidationError as exc:  # a setting: one line naming each, no pydantic footer
        print(f"error: {settings_error(exc)}", file=sys.stderr)
        return 1
    except (ValueError, PrometheusError, HistoryError, RecipientsError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def run_reporter(args: argparse.Namespace) -> int:
    from reports.reporter import main

    return main()
