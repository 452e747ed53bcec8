"""`tracetrack reporter`: sends the daily report at REPORT_HOUR (08:00) and the weekly
one on Mondays at REPORT_HOUR, in TRACETRACK_TIMEZONE, exactly once per period.

What was sent is recorded in `<reports dir>/sent.json` after each send, so a restart
does not send again, and a reporter that was down over 08:00 sends that day's report
once when it is back (only the latest missed period of each kind: a week of downtime
does not flood inboxes with seven dailies). On its very first start the reporter
sends nothing for periods that were already due: it starts with the next one.
A failed render or send is retried at the next poll.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from common.reportfiles import KINDS, Kind
from common.settings import settings_error
from reports.period import Period, last_complete
from reports.recipients import RecipientsError, load_recipients
from reports.settings import ReportSettings

log = logging.getLogger("reports.reporter")

HEARTBEAT = "reporter.heartbeat"
Clock = Callable[[], datetime]
Deliver = Callable[[ReportSettings, Period, datetime], list[str]]


def due_period(kind: Kind, now: datetime, settings: ReportSettings) -> Period:
    """The latest period whose send time (its end + REPORT_HOUR) has passed."""
    return last_complete(kind, now - timedelta(hours=settings.report_hour), settings.tz)


def render_and_send(settings: ReportSettings, period: Period, now: datetime) -> list[str]:
    from reports.generate import generate
    from reports.mail import send_report

    return send_report(settings, generate(settings, period, now))


class Reporter:
    def __init__(
        self,
        settings: ReportSettings,
        clock: Clock = lambda: datetime.now(UTC),
        deliver: Deliver = render_and_send,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.deliver = deliver
        self.state_file = settings.reports_dir() / "sent.json"

    def _state(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return None

    def _save(self, state: dict[str, Any]) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump(state, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.state_file)

    def run_once(self) -> list[tuple[str, str]]:
        """Send what is due; returns the (kind, period) sent this time."""
        now = self.clock()
        state = self._state()
        if state is None:
            baseline = {k: due_period(k, now, self.settings).label for k in KINDS}
            self._save({k: {"period": p, "sent_at": None, "to": []} for k, p in baseline.items()})
            log.info(
                "first start: next reports after %s",
                ", ".join(f"{k} {p}" for k, p in baseline.items()),
            )
            return []
        sent: list[tuple[str, str]] = []
        for kind in KINDS:
            period = due_period(kind, now, self.settings)
            last = (state.get(kind) or {}).get("period")
            if last is not None and last >= period.label:
                continue
            try:
                to = self.deliver(self.settings, period, now)
            except Exception as exc:  # noqa: BLE001 - retried at the next poll
                log.error(
                    "%s report %s not sent, will retry: %s: %s",
                    kind,
                    period.label,
                    type(exc).__name__,
                    exc,
                )
                continue
            state[kind] = {
                "period": period.label,
                "sent_at": now.isoformat(timespec="seconds"),
                "to": to,
            }
            self._save(state)
            log.info(
                "%s report %s sent to %s",
                kind,
                period.label,
                ", ".join(to) or "nobody (stored only)",
            )
            sent.append((kind, period.label))
        return sent

    def run(self, stop: threading.Event) -> None:
        heartbeat = self.settings.reports_dir() / HEARTBEAT
        while not stop.is_set():
            self.run_once()
            # The container's healthcheck: a reporter whose loop is stuck goes stale.
            heartbeat.parent.mkdir(parents=True, exist_ok=True)
            heartbeat.touch()
            stop.wait(self.settings.reporter_poll_seconds)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        settings = ReportSettings()
    except ValidationError as exc:
        log.error("%s", settings_error(exc))
        return 1
    try:  # a mistake in the mailing lists is named now, not when 08:00 comes
        load_recipients(settings.alert_config_file)
    except RecipientsError as exc:
        if settings.alert_config_file.is_file():
            log.error("%s", exc)
            return 1
        log.warning("%s: reports are written but not mailed", exc)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    log.info(
        "reporter: daily at %02d:00, weekly on Mondays at %02d:00 (%s); reports in %s",
        settings.report_hour,
        settings.report_hour,
        settings.timezone,
        settings.reports_dir(),
    )
    Reporter(settings).run(stop)
    log.info("reporter stopped")
    return 0
