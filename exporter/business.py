"""The business figures (docs/architecture.md §11): bags, users, scans and bills today.

Series:
    tracetrack_bags          gauge  bags, PostgreSQL's live-row statistic (an estimate, no COUNT(*))
    tracetrack_users         gauge  users (exact; the table is small)
    tracetrack_scans_today   gauge  scans since local midnight (exact, index range on scans.scanned_at)
    tracetrack_bills_today   gauge  bills since local midnight (exact, index range on bills.created_at)

"Today" is the calendar day in TRACETRACK_TIMEZONE (Settings.timezone), [midnight, next
midnight). The day counts add a sealed count of the day's earlier part (exporter.daycount)
to a count of the rows since, so a scrape reads only recent index entries.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from common import metric_names as names
from common import tables
from exporter.collector import Deadline
from exporter.daycount import DaySeals
from exporter.pg import PgConnection

# COUNT(*) over 5,000,000 bags costs a sequential or index-only scan per scrape.
# n_live_tup is kept by PostgreSQL on every committed insert/delete (reset to an
# estimate by VACUUM/ANALYZE); after a statistics reset (crash recovery) it is 0, so
# fall back to the planner's reltuples (-1 = never analysed).
BUSINESS_SQL = f"""
SELECT
  (SELECT coalesce(nullif(s.n_live_tup, 0), greatest(c.reltuples, 0)::bigint)
     FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
    WHERE c.oid = '{tables.BAGS}'::regclass),
  (SELECT count(*) FROM {tables.USERS}),
  (SELECT count(*) FROM {tables.SCANS} WHERE scanned_at >= %(from)s AND scanned_at < %(end)s),
  (SELECT count(*) FROM {tables.BILLS} WHERE created_at >= %(from)s AND created_at < %(end)s)
"""


def day_bounds(now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[local midnight, next local midnight) of `now`'s calendar day in `tz`, as UTC."""
    day = now.astimezone(tz).date()
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


class BusinessCollector:
    name = "business"

    def __init__(
        self,
        conn: PgConnection,
        timezone: str,
        clock: Callable[[], datetime] = utc_now,
        seals: DaySeals | None = None,
    ) -> None:
        self.conn = conn
        self.tz = ZoneInfo(timezone)  # ZoneInfoNotFoundError for a bad name: a startup error
        self.clock = clock
        self.seals = seals  # None: count the whole day on every scrape

    def collect(self, deadline: Deadline) -> list[Metric]:
        start, end = day_bounds(self.clock(), self.tz)
        seal = self.seals.current(start) if self.seals else None
        [[(bags, users, scans, bills)]] = self.conn.query(
            deadline, [(BUSINESS_SQL, {"from": seal.boundary if seal else start, "end": end})]
        )
        if seal:
            scans += seal.counts[tables.SCANS]
            bills += seal.counts[tables.BILLS]
        if self.seals:
            self.seals.maybe_reseal(start, end)
        tz = self.tz.key
        out: list[Metric] = []
        for name, help_text, value in (
            (
                names.BAGS,
                "Bags in the database: PostgreSQL's live-row statistic for the bags "
                "table, an estimate (exact after inserts, approximate after VACUUM/ANALYZE), not COUNT(*).",
                bags,
            ),
            (names.USERS, "Users in the database (exact count).", users),
            (
                names.SCANS_TODAY,
                f"Scans since local midnight in {tz} (exact; rows inserted with an "
                "explicit earlier timestamp are counted within a minute).",
                scans,
            ),
            (
                names.BILLS_TODAY,
                f"Bills created since local midnight in {tz} (exact; rows inserted "
                "with an explicit earlier timestamp are counted within a minute).",
                bills,
            ),
        ):
            family = GaugeMetricFamily(name, help_text)
            family.add_metric([], value)
            out.append(family)
        return out

    def down_families(self) -> list[Metric]:
        return []

    def close(self) -> None:
        self.conn.close()
        if self.seals:
            self.seals.conn.close()
