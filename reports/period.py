"""Report periods: a calendar day or an ISO week (Monday to Monday) in the report's
time zone (TRACETRACK_TIMEZONE), as half-open [start, end) intervals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from common.reportfiles import Kind


@dataclass(frozen=True)
class Period:
    kind: Kind
    first_day: date
    tz: ZoneInfo

    @property
    def days(self) -> int:
        return 1 if self.kind == "daily" else 7

    @property
    def start_dt(self) -> datetime:
        return datetime.combine(self.first_day, time(0), self.tz)

    @property
    def end_dt(self) -> datetime:
        return datetime.combine(self.first_day + timedelta(days=self.days), time(0), self.tz)

    @property
    def start(self) -> float:
        return self.start_dt.timestamp()

    @property
    def end(self) -> float:
        return self.end_dt.timestamp()

    @property
    def seconds(self) -> int:
        """Not always days * 86400: a day with a DST change has 23 or 25 hours."""
        return round(self.end - self.start)

    @property
    def label(self) -> str:
        if self.kind == "daily":
            return self.first_day.isoformat()
        year, week, _ = self.first_day.isocalendar()
        return f"{year}-W{week:02d}"

    @property
    def title(self) -> str:
        if self.kind == "daily":
            return f"Daily report for {self.first_day:%A %d %B %Y}"
        last = self.first_day + timedelta(days=6)
        return f"Weekly report for {self.label} ({self.first_day:%d %b} to {last:%d %b %Y})"

    def previous(self) -> Period:
        return Period(self.kind, self.first_day - timedelta(days=self.days), self.tz)

    def day_starts(self) -> list[datetime]:
        return [
            datetime.combine(self.first_day + timedelta(days=i), time(0), self.tz)
            for i in range(self.days)
        ]


def period_containing(kind: Kind, day: date, tz: ZoneInfo) -> Period:
    if kind == "daily":
        return Period(kind, day, tz)
    return Period(kind, day - timedelta(days=day.weekday()), tz)


def last_complete(kind: Kind, now: datetime, tz: ZoneInfo) -> Period:
    """The latest period that has ended by `now`: yesterday, or last week."""
    today = now.astimezone(tz).date()
    return period_containing(kind, today - timedelta(days=1 if kind == "daily" else 7), tz)


# Prometheus holds nothing before 1970; past 9998 a week's end is not a date any more
# (9999-12-31 gave "OverflowError: date value out of range").
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(9998, 12, 31)


def parse_day(text: str) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--at {text!r}: expected a date as YYYY-MM-DD") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"--at {text!r}: expected a date from {FIRST_DAY} to {LAST_DAY}")
    return day
