"""Every figure of the daily and weekly reports, computed from Prometheus and the
alert history. The result is the report's JSON: a figure without data is None
("no data" in the report), never a made-up 0.

A figure is `{"label", "value", "unit"}` (unit: ratio | seconds | count | per_minute |
per_day | bytes | days), with the threshold status where the thresholds table
(common/thresholds.py) has a row for it.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any

from common import metric_names as m
from common import slo
from common.alerting import SEVERITIES
from common.thresholds import BY_KEY, LEVELS, MAINTENANCE, worst_level
from common.topology import APP_JOB
from reports import queries as q
from reports.history import AlertInstance
from reports.period import Period
from reports.prometheus import Point, Prometheus

# An alert that resolves by itself within this long is a tuning candidate.
SELF_RESOLVING_SECONDS = 5 * 60
# Fired again within this long of resolving counts as a flap; this many flaps make it flapping.
FLAP_GAP_SECONDS = 60 * 60
FLAPPING_MIN_REFIRES = 2
# The capacity target (docs/architecture.md §1: 5 million bags).
BAGS_TARGET = 5_000_000
# A route is worth a look when its p95 exceeds this share of the warning threshold.
SLOW_ROUTE_SHARE = 0.5
# Prometheus queries in flight at once while building one report.
QUERY_CONCURRENCY = 4

Figure = dict[str, Any]


def figure(label: str, value: float | None, unit: str, threshold: str | None = None) -> Figure:
    out: Figure = {"label": label, "value": value, "unit": unit}
    if threshold is not None:
        t = BY_KEY[threshold]
        status = None if value is None else worst_level(t, value) or "ok"
        out.update(status=status, warning=t.warning, critical=t.critical)
    return out


class Context:
    """What every figure needs: Prometheus, the period and its windows."""

    def __init__(self, prom: Prometheus, period: Period, scrape_interval: float) -> None:
        self.prom = prom
        self.period = period
        self.at = period.end
        self.window = q.dur(period.seconds)
        self.scrape = q.dur(max(scrape_interval, 1))
        # Charts: a point per 15 minutes (day) or per hour (week).
        self.step = 900.0 if period.kind == "daily" else 3600.0
        self.rw = q.dur(max(self.step, 4 * scrape_interval))
        # How long Prometheus watched the app in this period (its `up` samples, down or
        # not): averages are over this, so a period with partial data compares fairly.
        samples = self.scalar(f'sum(count_over_time(up{{job="{APP_JOB}"}}[{self.window}]))')
        self.covered_seconds = (
            None if samples is None else min(samples * scrape_interval, period.seconds)
        )

    def per_day(self, total: float | None) -> float | None:
        if total is None or not self.covered_seconds:
            return None
        return total / (self.covered_seconds / 86400)

    def scalar(self, expr: str) -> float | None:
        return self.prom.scalar(expr, self.at)

    def by(self, expr: str, label: str) -> dict[str, float | None]:
        return self.prom.by_label(expr, label, self.at)

    def series(self, expr: str) -> list[Point]:
        # The first point is the first step after the start: its rate window lies inside.
        return self.prom.series(expr, self.period.start + self.step, self.at, self.step)


# --- sections ------------------------------------------------------------------------


def slo_section(c: Context) -> dict[str, Any]:
    availability = c.scalar(q.availability(c.window))
    spent = None
    if availability is not None:
        # This period's share of the 30-day budget.
        spent = (1 - availability) * c.period.seconds / (slo.BUDGET * slo.WINDOW_DAYS * 86400)
    return {
        "objective": slo.OBJECTIVE,
        "window_days": slo.WINDOW_DAYS,
        "availability": figure("Availability", availability, "ratio"),
        "budget_spent_in_period": figure("Error budget spent in the period", spent, "ratio"),
        "budget_remaining": figure(
            f"Error budget left ({slo.WINDOW_DAYS} days)", c.scalar(q.budget_remaining()), "ratio"
        ),
        "met": None if availability is None else availability >= slo.OBJECTIVE,
    }


def system_section(c: Context) -> dict[str, Any]:
    disks = c.by(q.gauge_peak(m.DISK_USAGE, c.window, "mountpoint"), "mountpoint")
    connections = q.peak(f"sum({m.DB_CONNECTIONS})", c.window, c.scrape)
    return {
        "cpu_peak": figure(
            "CPU peak", c.scalar(q.gauge_peak(m.CPU_USAGE, c.window)), "ratio", "cpu_usage"
        ),
        "memory_peak": figure(
            "Memory peak", c.scalar(q.gauge_peak(m.MEMORY_USAGE, c.window)), "ratio", "memory_usage"
        ),
        "disk_peak": figure(
            "Disk usage peak",
            max((v for v in disks.values() if v is not None), default=None),
            "ratio",
        ),
        "disk_peak_by_mountpoint": disks,
        "db_connections_peak": figure(
            "Database connections peak", c.scalar(connections), "count", "db_connections"
        ),
    }


def quantile_from_buckets(quant: float, buckets: dict[float, float]) -> float | None:
    """Prometheus' histogram_quantile over cumulative bucket counts {le: count}: linear
    interpolation inside the bucket holding the rank; the highest finite bound when the
    rank is in +Inf; None without observations. One query of the buckets by route then
    gives every percentile of every route and of the whole app."""
    bounds = sorted(buckets)
    if not bounds or bounds[-1] != float("inf"):
        return None
    counts, running = [], 0.0
    for le in bounds:  # counts read at slightly different times can dip: keep them monotonic
        running = max(running, buckets[le])
        counts.append(running)
    total = counts[-1]
    if total <= 0:
        return None
    rank = quant * total
    for i, (le, count) in enumerate(zip(bounds, counts, strict=True)):
        if count >= rank:
            if le == float("inf"):
                return bounds[-2] if len(bounds) > 1 else None
            start, below = (bounds[i - 1], counts[i - 1]) if i else (0.0, 0.0)
            if i == 0 and le <= 0:
                return le
            return start + (le - start) * (rank - below) / (count - below)
    return None


QUANTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))


def performance_section(c: Context) -> dict[str, Any]:
    w = c.window
    total = c.scalar(q.increase(m.HTTP_REQUESTS, w))
    buckets: dict[str, dict[float, float]] = defaultdict(dict)
    overall: dict[float, float] = defaultdict(float)
    for labels, count in c.prom.vector(q.buckets(w, "route"), c.at):
        if count is None:
            continue
        le = float(labels["le"])
        buckets[labels.get("route", "")][le] = count
        overall[le] += count
    per_route: dict[str, dict[str, float | None]] = {
        route: {name: quantile_from_buckets(quant, b) for name, quant in QUANTILES}
        for route, b in buckets.items()
    }
    for route, value in c.by(q.increase(m.HTTP_REQUESTS, w, by="route"), "route").items():
        if route in per_route:
            per_route[route]["requests"] = value
    whole = {name: quantile_from_buckets(quant, overall) for name, quant in QUANTILES}
    rpm_peak = q.peak(q.requests_per_minute(c.rw), w, c.rw)
    return {
        "p50": figure("p50 response time", whole["p50"], "seconds"),
        "p95": figure("p95 response time", whole["p95"], "seconds", "response_time"),
        "p99": figure("p99 response time", whole["p99"], "seconds"),
        "requests": figure("Requests", total, "count"),
        "requests_per_minute": figure(
            "Requests per minute (average)",
            None if (per_day := c.per_day(total)) is None else per_day / 1440,
            "per_minute",
        ),
        "requests_per_minute_peak": figure(
            "Requests per minute (peak)", c.scalar(rpm_peak), "per_minute"
        ),
        "error_rate": figure("Error rate (5xx)", c.scalar(q.error_ratio(w)), "ratio", "error_rate"),
        "cache_hit_rate": figure(
            "Cache hit rate", c.scalar(q.cache_hit_ratio(w)), "ratio", "cache_hit_rate"
        ),
        "by_route": dict(sorted(per_route.items(), key=lambda kv: -(kv[1].get("p95") or 0))),
    }


def users_section(c: Context) -> dict[str, Any]:
    peak = q.peak(f"sum({m.ACTIVE_USERS})", c.window, c.scrape)
    return {
        "active_users_peak": figure(
            "Active users peak", c.scalar(peak), "count", "concurrent_users"
        ),
        "logins": figure("Logins", c.scalar(q.logins(c.window)), "count"),
        "failed_logins": figure(
            "Failed logins", c.scalar(q.increase(m.LOGIN_FAILURES, c.window)), "count"
        ),
    }


def business_section(c: Context) -> dict[str, Any]:
    w = c.window
    scans = c.scalar(q.increase(m.SCANS, w))
    bags = c.scalar(q.increase(m.BAGS_CREATED, w))
    bills = c.scalar(q.increase(m.BILLS_CREATED, w))
    per_hour = c.prom.series(f"sum(increase({m.SCANS}[1h]))", c.period.start + 3600, c.at, 3600)
    peak_hour = max(per_hour, key=lambda p: p[1], default=None)
    return {
        "scans": figure("Scans", scans, "count"),
        "bags_created": figure("Bags created", bags, "count"),
        "bills_created": figure("Bills created", bills, "count"),
        "scans_per_day": figure("Scans per day", c.per_day(scans), "per_day"),
        "bags_created_per_day": figure("Bags created per day", c.per_day(bags), "per_day"),
        "bills_created_per_day": figure("Bills created per day", c.per_day(bills), "per_day"),
        "total_bags": figure("Bags in total", c.scalar(f"max({m.BAGS})"), "count"),
        "scans_per_hour_peak": figure(
            "Scans in the busiest hour", None if peak_hour is None else peak_hour[1], "count"
        ),
        "scans_per_hour_peak_at": None
        if peak_hour is None
        else _local(peak_hour[0] - 3600, c.period).isoformat(timespec="minutes"),
        "scans_per_hour": [
            [_local(t - 3600, c.period).isoformat(timespec="minutes"), v] for t, v in per_hour
        ],
    }


def alerts_section(instances: list[AlertInstance] | None, period: Period) -> dict[str, Any]:
    if instances is None:
        return {"available": False, "note": "no data: the alert bridge's store has no history yet"}
    end = period.end
    counts = Counter(i.severity for i in instances)
    resolved = [i.duration(end) for i in instances if i.ends_at is not None]
    acked = [i.acknowledged_at - i.starts_at for i in instances if i.acknowledged_at is not None]
    longest = max(instances, key=lambda i: i.duration(end), default=None)
    by_name = Counter(i.name for i in instances)
    return {
        "available": True,
        "fired": figure("Alerts fired", len(instances), "count"),
        "fired_by_severity": {s: counts.get(s, 0) for s in SEVERITIES},
        "by_name": dict(by_name.most_common()),
        "longest": None
        if longest is None
        else {
            "alert": longest.name,
            "severity": longest.severity,
            "started": _local(longest.starts_at, period).isoformat(timespec="minutes"),
            "seconds": longest.duration(end),
            "resolved": longest.ends_at is not None,
        },
        "still_firing": sum(1 for i in instances if i.ends_at is None),
        "time_to_resolve_median": figure(
            "Time to resolve (median)", statistics.median(resolved) if resolved else None, "seconds"
        ),
        "time_to_resolve_max": figure(
            "Time to resolve (longest)", max(resolved) if resolved else None, "seconds"
        ),
        # From the acknowledgements on-call makes on the bridge's notification pages;
        # without any, the times are "no data", not zero.
        "acknowledged": figure("Alerts acknowledged", len(acked), "count"),
        "time_to_acknowledge_median": figure(
            "Time to acknowledge (median)", statistics.median(acked) if acked else None, "seconds"
        ),
        "time_to_acknowledge_max": figure(
            "Time to acknowledge (longest)", max(acked) if acked else None, "seconds"
        ),
    }


def alert_patterns(instances: list[AlertInstance] | None, period: Period) -> dict[str, Any]:
    if instances is None:
        return {"available": False, "note": "no data: the alert bridge's store has no history yet"}
    by_name = Counter(i.name for i in instances)
    quick = Counter(
        i.name
        for i in instances
        if i.ends_at is not None and i.ends_at - i.starts_at <= SELF_RESOLVING_SECONDS
    )
    refires: Counter[str] = Counter()
    by_fingerprint: dict[str, list[AlertInstance]] = defaultdict(list)
    for i in instances:
        by_fingerprint[i.fingerprint].append(i)
    for runs in by_fingerprint.values():
        for before, after in zip(runs, runs[1:], strict=False):
            if before.ends_at is not None and after.starts_at - before.ends_at <= FLAP_GAP_SECONDS:
                refires[before.name] += 1
    hours = Counter(_local(i.starts_at, period).hour for i in instances)
    return {
        "available": True,
        "noisiest": [{"alert": n, "fired": c} for n, c in by_name.most_common(5)],
        "flapping": [
            {"alert": n, "refired_within_an_hour": c}
            for n, c in refires.most_common()
            if c >= FLAPPING_MIN_REFIRES
        ],
        "self_resolving": [
            {"alert": n, "resolved_within_minutes": c, "of": by_name[n]}
            for n, c in quick.most_common()
        ],
        "self_resolving_minutes": SELF_RESOLVING_SECONDS // 60,
        "by_hour_of_day": [hours.get(h, 0) for h in range(24)],
    }


# --- weekly: trends, capacity, suggestions --------------------------------------------


TREND_FIGURES: tuple[tuple[str, str, str], ...] = (
    # (section, key, which direction is better)
    ("slo", "availability", "up"),
    ("performance", "p95", "down"),
    ("performance", "error_rate", "down"),
    ("performance", "requests_per_minute", "neutral"),
    ("performance", "cache_hit_rate", "up"),
    ("system", "cpu_peak", "down"),
    ("system", "memory_peak", "down"),
    ("system", "db_connections_peak", "down"),
    ("users", "active_users_peak", "neutral"),
    # Per day over the time with data: last week may have only a day of history.
    ("business", "scans_per_day", "neutral"),
    ("business", "bags_created_per_day", "neutral"),
    ("business", "bills_created_per_day", "neutral"),
)


def trends(
    this: dict[str, Any], last: dict[str, Any], last_alerts: int | None
) -> list[dict[str, Any]]:
    rows = []
    for section, key, better in TREND_FIGURES:
        now, before = this[section][key]["value"], last[section][key]["value"]
        rows.append(
            _trend_row(this[section][key]["label"], this[section][key]["unit"], now, before, better)
        )
    fired = this["alerts"].get("fired", {}).get("value")
    rows.append(_trend_row("Alerts fired", "count", fired, last_alerts, "down"))
    return rows


def _trend_row(
    label: str, unit: str, now: float | None, before: float | None, better: str
) -> dict[str, Any]:
    change = None
    if now is not None and before not in (None, 0):
        change = (now - before) / abs(before)
    verdict = None
    if now is not None and before is not None and better != "neutral" and now != before:
        verdict = "better" if (now > before) == (better == "up") else "worse"
    return {
        "label": label,
        "unit": unit,
        "this_week": now,
        "last_week": before,
        "change": change,
        "verdict": verdict,
    }


def _slope_per_day(points: list[Point]) -> float | None:
    if len(points) < 2 or points[-1][0] - points[0][0] < 3600:
        return None
    xs = [t / 86400 for t, _ in points]
    ys = [v for _, v in points]
    if len(set(ys)) == 1:
        return 0.0
    return statistics.linear_regression(xs, ys).slope


def _projection(label: str, points: list[Point], limit: float | None, unit: str) -> dict[str, Any]:
    """Days until `limit` at the growth of a least-squares line through the week."""
    current = points[-1][1] if points else None
    slope = _slope_per_day(points)
    days = None
    if current is not None and slope is not None and limit is not None:
        if current >= limit:
            days = 0.0
        elif slope > 0:
            days = (limit - current) / slope
    return {
        "label": label,
        "unit": unit,
        "current": current,
        "growth_per_day": slope,
        "limit": limit,
        "days_until_limit": days,
        "note": None if points else "no data",
    }


def capacity(c: Context, db_size_limit: float | None) -> list[dict[str, Any]]:
    """Days until each limit at the week's growth. Levels (disk, database size, bags)
    are fitted hourly; connections and users by their daily peaks."""
    start, end = c.period.start, c.at
    hourly = 3600.0

    def level(expr: str) -> list[Point]:
        return c.prom.series(expr, start + hourly, end, hourly)

    def daily_peaks(expr: str) -> list[Point]:
        return c.prom.series(q.peak(expr, "1d", c.scrape), start + 86400, end, 86400)

    rows = []
    for metric, points in c.prom.matrix(
        f"max by (mountpoint) ({m.DISK_USAGE})", start + hourly, end, hourly
    ):
        rows.append(_projection(f"Disk {metric.get('mountpoint', '')} full", points, 1.0, "ratio"))
    if not rows:
        rows.append(_projection("Disk full", [], 1.0, "ratio"))
    db = _projection("Database size", level(f"max({m.DB_SIZE})"), db_size_limit, "bytes")
    if db_size_limit is None and db["current"] is not None:
        db["note"] = "growth only: no limit set (REPORT_DB_SIZE_LIMIT_BYTES)"
    rows.append(db)
    conn = BY_KEY["db_connections"]
    peaks = daily_peaks(f"sum({m.DB_CONNECTIONS})")
    rows.append(
        _projection(
            f"Database connections (peak) at {conn.critical:g}", peaks, conn.critical, "count"
        )
    )
    users = BY_KEY["concurrent_users"]
    user_peaks = daily_peaks(f"sum({m.ACTIVE_USERS})")
    for limit in map(users.limit, LEVELS):
        rows.append(
            _projection(f"Concurrent users (peak) at {limit:g}", user_peaks, limit, "count")
        )
    rows.append(
        _projection(f"Bags at {BAGS_TARGET:,}", level(f"max({m.BAGS})"), BAGS_TARGET, "count")
    )
    return rows


def suggestions(c: Context, performance: dict[str, Any]) -> list[dict[str, str]]:
    """Advice derived from the week's numbers; each names the number behind it."""
    out: list[dict[str, str]] = []
    rt = BY_KEY["response_time"]
    for route, values in performance["by_route"].items():
        p95 = values.get("p95")
        if p95 is not None and p95 > SLOW_ROUTE_SHARE * rt.warning:
            out.append(
                {
                    "topic": "Slow route",
                    "because": f"{route}: p95 {p95:.2f} s over the week"
                    f" (warning threshold {rt.warning:g} s)",
                    "suggestion": "Profile this route's queries (EXPLAIN ANALYZE), add an index or"
                    " cache its result.",
                }
            )
    hit = performance["cache_hit_rate"]["value"]
    cache = BY_KEY["cache_hit_rate"]
    if hit is not None and hit < cache.warning + 0.1:
        out.append(
            {
                "topic": "Cache",
                "because": f"cache hit rate {hit * 100:.1f} % over the week"
                f" (warning below {cache.warning * 100:g} %)",
                "suggestion": "Raise the cache TTL or size, warm the hottest bags on start, and"
                " check the app is not on its in-process fallback.",
            }
        )
    errors = performance["error_rate"]["value"]
    if errors is not None and errors > slo.BUDGET:
        out.append(
            {
                "topic": "Errors",
                "because": f"{errors * 100:.3f} % of answers were 5xx"
                f" (the {slo.objective_percent()} SLO allows {slo.BUDGET * 100:.1f} %)",
                "suggestion": "Fix the routes answering 5xx first: they spend the error budget.",
            }
        )
    mt = MAINTENANCE
    dead = c.by(
        f"{m.DB_TABLE_DEAD_TUPLES} / ({m.DB_TABLE_DEAD_TUPLES} + {m.DB_TABLE_LIVE_TUPLES})"
        f" > {mt.dead_ratio} and {m.DB_TABLE_DEAD_TUPLES} >= {mt.min_dead_rows}",
        "table",
    )
    for table, share in sorted(dead.items()):
        out.append(
            {
                "topic": "Dead rows",
                "because": f"table {table}: {share * 100:.0f} % dead rows"  # type: ignore[operator]
                f" (over {mt.dead_ratio * 100:g} %)",
                "suggestion": f"Run VACUUM ANALYZE {table}; check for long transactions blocking"
                " autovacuum.",
            }
        )
    stale = c.by(
        f"(time() - {m.DB_TABLE_LAST_VACUUM}) / 86400 > {mt.max_age_days}"
        f" and on (job, instance, table) {m.DB_TABLE_LIVE_TUPLES} >= {mt.min_live_rows}",
        "table",
    )
    for table, age in sorted(stale.items()):
        never = age is not None and age > 10_000
        out.append(
            {
                "topic": "Missing vacuum",
                "because": f"table {table}: "
                + ("never vacuumed" if never else f"last vacuumed {age:.0f} days ago")
                + f" (weekly advice: within {mt.max_age_days} days)",
                "suggestion": f"Run VACUUM ANALYZE {table} during regular maintenance.",
            }
        )
    return out


# --- the reports -------------------------------------------------------------------


def _days(period: Period) -> list[tuple[float, float]]:
    """(start, end) of each day of the period; a DST day is 23 or 25 hours."""
    bounds = [d.timestamp() for d in period.day_starts()] + [period.end]
    return list(zip(bounds, bounds[1:], strict=False))


def _local(ts: float, period: Period) -> datetime:
    return datetime.fromtimestamp(ts, period.tz)


def charts_data(c: Context) -> dict[str, list[list[float]]]:
    """The series the charts draw, in the JSON too (seconds since epoch, value)."""
    series: dict[str, str] = {
        "requests_per_minute": q.requests_per_minute(c.rw),
        "error_rate": q.error_ratio(c.rw),
        "p50": q.quantile(0.5, c.rw),
        "p95": q.quantile(0.95, c.rw),
        "p99": q.quantile(0.99, c.rw),
        "cpu": f"max({m.CPU_USAGE})",
        "memory": f"max({m.MEMORY_USAGE})",
        "active_users": f"sum({m.ACTIVE_USERS})",
    }
    if c.period.kind == "weekly":
        series.update({"disk": f"max({m.DISK_USAGE})", "bags": f"max({m.BAGS})"})
    return {name: [[t, v] for t, v in c.series(expr)] for name, expr in series.items()}


def summary(
    c: Context, instances: list[AlertInstance] | None, pool: ThreadPoolExecutor
) -> dict[str, Any]:
    sections: dict[str, Callable[[], dict[str, Any]]] = {
        "slo": lambda: slo_section(c),
        "system": lambda: system_section(c),
        "performance": lambda: performance_section(c),
        "users": lambda: users_section(c),
        "business": lambda: business_section(c),
    }
    futures = {name: pool.submit(f) for name, f in sections.items()}
    out = {name: f.result() for name, f in futures.items()}
    out["alerts"] = alerts_section(instances, c.period)
    return {k: out[k] for k in ("slo", "system", "performance", "alerts", "users", "business")}


HistoryReader = Callable[[float, float], "list[AlertInstance] | None"]


def build(
    prom: Prometheus,
    history: HistoryReader,
    period: Period,
    *,
    scrape_interval: float,
    generated_at: datetime,
    db_size_limit: float | None = None,
) -> dict[str, Any]:
    # Queries run a few at a time: each reads a week of samples on one core of Prometheus.
    with (
        ThreadPoolExecutor(max_workers=QUERY_CONCURRENCY) as pool,
        ThreadPoolExecutor(max_workers=2) as outer,
    ):
        return _build(
            prom, history, period, scrape_interval, generated_at, db_size_limit, pool, outer
        )


def _build(
    prom: Prometheus,
    history: HistoryReader,
    period: Period,
    scrape_interval: float,
    generated_at: datetime,
    db_size_limit: float | None,
    pool: ThreadPoolExecutor,
    outer: ThreadPoolExecutor,
) -> dict[str, Any]:
    c = Context(prom, period, scrape_interval)
    instances = history(period.start, period.end)
    series = pool.submit(charts_data, c)
    weekly: dict[str, Future[Any]] = {}
    last_period = period.previous()
    if period.kind == "weekly":
        last_c = Context(prom, last_period, scrape_interval)
        last_instances = history(last_period.start, last_period.end)
        # `outer`: a summary waits on its sections in `pool`; never block pool on pool.
        weekly["last"] = outer.submit(summary, last_c, last_instances, pool)
        weekly["capacity"] = pool.submit(capacity, c, db_size_limit)
        weekly["availability_by_day"] = pool.submit(
            lambda: [
                [
                    _local(start, period).date().isoformat(),
                    prom.scalar(q.availability(q.dur(end - start)), end),
                ]
                for start, end in _days(period)
            ]
        )
        weekly["p95_by_day"] = pool.submit(
            lambda: {
                label: [
                    prom.scalar(q.quantile(0.95, q.dur(end - start)), end)
                    for start, end in _days(p)
                ]
                for label, p in (("this_week", period), ("last_week", last_period))
            }
        )
    report: dict[str, Any] = {
        "kind": period.kind,
        "period": period.label,
        "title": period.title,
        "timezone": str(period.tz),
        "start": period.start_dt.isoformat(),
        "end": period.end_dt.isoformat(),
        "generated_at": generated_at.isoformat(timespec="seconds"),
        "scrape_interval_seconds": scrape_interval,
        **summary(c, instances, pool),
    }
    report["series"] = series.result()
    if period.kind == "weekly":
        last = weekly["last"].result()
        last_fired = last["alerts"].get("fired", {}).get("value")
        report["trends"] = trends(report, last, last_fired)
        report["capacity"] = weekly["capacity"].result()
        report["suggestions"] = suggestions(c, report["performance"])
        report["availability_by_day"] = weekly["availability_by_day"].result()
        report["p95_by_day"] = weekly["p95_by_day"].result()
    report["alert_patterns"] = alert_patterns(instances, period)
    return report
