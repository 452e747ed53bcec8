"""Eight days of synthetic TraceTrack history whose truth is known, for the reports.

`write_openmetrics(path)` writes it for `promtool tsdb create-blocks-from openmetrics`;
`backfill(tmp)` makes the TSDB blocks; `fill_alert_history(store_url)` stores a known
alert history through the bridge's own store. The module-level constants are the truth
the tests compare report.json with.

Timeline (UTC, one sample every 5 minutes, START to END):
- 2025-03-02 (Sun) .. 2025-03-10 00:00: the weekly report is ISO week 2025-W10
  (Mon 03-03 .. Mon 03-10); the previous week has one day of data (03-02).
- INCIDENT_DAY 03-05: 09:00-10:00 a tenth of the bag lookups answer 500, and the app is
  down (no scrape, no requests) 10:00-10:30.
- SLOW_DAY 03-07: bag lookups slow down (p95 1.5 s instead of 24 ms) and CPU peaks at 85 %.
- Bags, disk and database size grow linearly; daily peaks of connections and users too.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from common import metric_names as m
from common import topology

STEP = 300  # seconds between samples: the test Prometheus' scrape interval
START = datetime(2025, 3, 2, tzinfo=UTC)
END = datetime(2025, 3, 10, tzinfo=UTC)
INCIDENT_DAY = datetime(2025, 3, 5, tzinfo=UTC)
SLOW_DAY = datetime(2025, 3, 7, tzinfo=UTC)
WEEK_START = datetime(2025, 3, 3, tzinfo=UTC)

APP = {"job": topology.APP_JOB, "instance": f"app:{topology.APP_PORT}"}
EXPORTER = {"job": topology.EXPORTER_JOB, "instance": f"exporter:{topology.EXPORTER_PORT}"}
BAG = "/api/bags/{qr_id}"
SEARCH = "/api/bags"
LOGIN = "/api/auth/login"

# Requests per 5 minutes.
BAG_PER_STEP = 3000.0
SEARCH_PER_STEP = 300.0
LOGIN_PER_STEP = 1.0
NORMAL_ERROR_SHARE = 0.0005
INCIDENT_ERROR_SHARE = 0.10

# Cumulative share of requests at or under each bucket (the rest are in +Inf).
BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
FAST = {0.01: 0.80, 0.025: 0.96, 0.05: 1.0}
SLOW = {0.5: 0.50, 1.0: 0.90, 2.0: 1.0}
SEARCH_DIST = {0.1: 0.50, 0.25: 0.90, 0.5: 1.0}

BAGS_AT_START = 1_000_000.0
BAGS_PER_DAY = 50_000.0
BILLS_PER_DAY = 1_000.0
DISK_AT_START = 0.50
DISK_PER_DAY = 0.01
DB_SIZE_AT_START = 10e9
DB_SIZE_PER_DAY = 0.2e9
CACHE_PER_STEP = 1000.0
CACHE_HIT_SHARE = 0.90
LOGIN_FAILURES_PER_DAY = 12.0
DEAD_SHARE = 0.30  # table "bags": 30 % dead rows (VACUUM suggestion)
LAST_VACUUM = START - timedelta(days=20)  # never vacuumed within the week


def quantile_of(dist: dict[float, float], q: float) -> float:
    """histogram_quantile's linear interpolation inside the bucket holding rank q."""
    lower_bound, lower_share = 0.0, 0.0
    for bound in BUCKETS:
        share = _cumulative(dist, bound)
        if share >= q:
            return lower_bound + (bound - lower_bound) * (q - lower_share) / (share - lower_share)
        lower_bound, lower_share = bound, share
    raise ValueError(q)


def _cumulative(dist: dict[float, float], bound: float) -> float:
    shares = [s for b, s in dist.items() if b <= bound]
    return max(shares, default=0.0)


def day_of(t: datetime) -> float:
    return (t - START).total_seconds() / 86400


def app_up(t: datetime) -> bool:
    down_from = INCIDENT_DAY + timedelta(hours=10)
    return not (down_from <= t < down_from + timedelta(minutes=30))


def error_share(t: datetime) -> float:
    incident = INCIDENT_DAY + timedelta(hours=9)
    return (
        INCIDENT_ERROR_SHARE
        if incident <= t < incident + timedelta(hours=1)
        else NORMAL_ERROR_SHARE
    )


def bag_dist(t: datetime) -> dict[float, float]:
    return SLOW if SLOW_DAY <= t < SLOW_DAY + timedelta(days=1) else FAST


def cpu(t: datetime) -> float:
    if t.hour == 12:
        return 0.85 if SLOW_DAY <= t < SLOW_DAY + timedelta(days=1) else 0.60
    return 0.30


def daily_peak(t: datetime, base: float, growth: float, quiet: float) -> float:
    """Quiet all day, a peak at 12:00-12:05 that grows each day."""
    if t.hour == 12 and t.minute == 0:
        return base + growth * int(day_of(t))
    return quiet


def connections_peak_on(day: int) -> float:
    return 100 + 5 * day


def users_peak_on(day: int) -> float:
    return 500 + 20 * day


def scans_per_step(t: datetime) -> float:
    return 50.0 if 8 <= t.hour < 20 else 5.0


def times(step: int = STEP) -> Iterator[datetime]:
    t = START
    while t <= END:
        yield t
        t += timedelta(seconds=step)


# --- OpenMetrics ----------------------------------------------------------------------


def _labels(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


class Writer:
    """Streams OpenMetrics text to a file: one family's series after another."""

    def __init__(self, out: TextIO, step: int = STEP) -> None:
        self.out = out
        self.step = step
        self.family: str | None = None

    def add(
        self,
        name: str,
        labels: dict[str, str],
        value: Callable[[datetime], float | None],
        counter: bool = False,
    ) -> None:
        """A gauge (`value(t)`) or a counter (`value(t)` = increase over the step to t,
        scaled from STEP to this writer's step); None: no sample at t (not scraped)."""
        if name != self.family:
            self.out.write(f"# TYPE {name} unknown\n")
            self.family = name
        lab = _labels(labels)
        total, scale = 0.0, self.step / STEP
        for t in times(self.step):
            v = value(t)
            if v is None:
                continue
            if counter:
                total += v * scale if t > START else 0.0
                v = total
            self.out.write(f"{name}{lab} {v:.6f} {t.timestamp():.0f}\n")

    def close(self) -> None:
        self.out.write("# EOF\n")


def _when_up(f: Callable[[datetime], float]) -> Callable[[datetime], float | None]:
    return lambda t: f(t) if app_up(t) else None


def write_history(out: TextIO, step: int = STEP) -> None:
    w = Writer(out, step)
    w.add("up", APP, lambda t: 1.0 if app_up(t) else 0.0)
    w.add("up", EXPORTER, lambda t: 1.0)
    req = m.HTTP_REQUESTS
    bag = {**APP, "method": "GET", "route": BAG}
    w.add(
        req, {**bag, "status": "200"}, _when_up(lambda t: BAG_PER_STEP * (1 - error_share(t))), True
    )
    w.add(req, {**bag, "status": "500"}, _when_up(lambda t: BAG_PER_STEP * error_share(t)), True)
    w.add(
        req,
        {**APP, "method": "GET", "route": SEARCH, "status": "200"},
        _when_up(lambda t: SEARCH_PER_STEP),
        True,
    )
    w.add(
        req,
        {**APP, "method": "POST", "route": LOGIN, "status": "200"},
        _when_up(lambda t: LOGIN_PER_STEP),
        True,
    )
    bucket = f"{m.HTTP_REQUEST_DURATION}_bucket"
    for route, per_step, dist in (
        (BAG, BAG_PER_STEP, bag_dist),
        (SEARCH, SEARCH_PER_STEP, lambda t: SEARCH_DIST),
    ):
        for le in (*BUCKETS, float("inf")):
            le_text = "+Inf" if le == float("inf") else f"{le:g}"
            share: Callable[[datetime], float] = (
                (lambda t: 1.0)
                if le == float("inf")
                else (lambda t, le=le, dist=dist: _cumulative(dist(t), le))  # type: ignore[misc]
            )
            w.add(
                bucket,
                {**APP, "method": "GET", "route": route, "le": le_text},
                _when_up(lambda t, s=share, n=per_step: n * s(t)),  # type: ignore[misc]  # mypy cannot type default-argument lambdas
                True,
            )
    w.add(m.SCANS, APP, _when_up(scans_per_step), True)
    w.add(m.BAGS_CREATED, APP, _when_up(lambda t: BAGS_PER_DAY * STEP / 86400), True)
    w.add(m.BILLS_CREATED, APP, _when_up(lambda t: BILLS_PER_DAY * STEP / 86400), True)
    w.add(
        m.CACHE_REQUESTS,
        {**APP, "result": "hit"},
        _when_up(lambda t: CACHE_PER_STEP * CACHE_HIT_SHARE),
        True,
    )
    w.add(
        m.CACHE_REQUESTS,
        {**APP, "result": "miss"},
        _when_up(lambda t: CACHE_PER_STEP * (1 - CACHE_HIT_SHARE)),
        True,
    )
    w.add(
        m.LOGIN_FAILURES,
        {**APP, "reason": "bad_password"},
        _when_up(lambda t: LOGIN_FAILURES_PER_DAY * STEP / 86400),
        True,
    )
    w.add(m.ACTIVE_USERS, APP, _when_up(lambda t: daily_peak(t, 500, 20, 100)))
    w.add(m.BAGS, EXPORTER, lambda t: BAGS_AT_START + BAGS_PER_DAY * day_of(t))
    w.add(
        m.DISK_USAGE,
        {**EXPORTER, "mountpoint": "/"},
        lambda t: DISK_AT_START + DISK_PER_DAY * day_of(t),
    )
    w.add(m.DB_SIZE, EXPORTER, lambda t: DB_SIZE_AT_START + DB_SIZE_PER_DAY * day_of(t))
    w.add(m.CPU_USAGE, EXPORTER, cpu)
    w.add(m.MEMORY_USAGE, EXPORTER, lambda t: 0.55)
    w.add(m.DB_CONNECTIONS, {**EXPORTER, "state": "active"}, lambda t: daily_peak(t, 100, 5, 20))
    w.add(m.DB_CONNECTIONS, {**EXPORTER, "state": "idle"}, lambda t: 10.0)
    w.add(m.DB_MAX_CONNECTIONS, EXPORTER, lambda t: 300.0)
    table = {**EXPORTER, "table": "bags"}
    w.add(m.DB_TABLE_LIVE_TUPLES, table, lambda t: BAGS_AT_START)
    w.add(m.DB_TABLE_DEAD_TUPLES, table, lambda t: BAGS_AT_START * DEAD_SHARE / (1 - DEAD_SHARE))
    w.add(m.DB_TABLE_LAST_VACUUM, table, lambda t: LAST_VACUUM.timestamp())
    w.close()


def backfill(workdir: Path, step: int = STEP) -> Path:
    """TSDB blocks of the whole history in workdir/data (Prometheus' --storage.tsdb.path),
    one sample every `step` seconds."""
    workdir.mkdir(parents=True, exist_ok=True)
    source = workdir / "history.om"
    with open(source, "w") as out:
        write_history(out, step)
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            "promtool",
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "--max-block-duration=240h",
            "--quiet",
            str(source),
            str(data),
        ],
        capture_output=True,
        text=True,
        timeout=3600,  # the benchmark backfills eight days at the 10 s scrape interval
    )
    assert result.returncode == 0, result.stdout + result.stderr
    source.unlink()
    return data


# --- the alert history -------------------------------------------------------------------


@dataclass(frozen=True)
class KnownAlert:
    name: str
    severity: str
    starts: datetime
    ends: datetime | None
    instance: str = "app:8000"


def known_alerts() -> list[KnownAlert]:
    inc, slow = INCIDENT_DAY, SLOW_DAY
    h = timedelta(hours=1)
    mins = timedelta(minutes=1)
    alerts = [
        KnownAlert(
            "TraceTrackErrorRateHigh", "critical", inc + 9 * h + 10 * mins, inc + 10 * h + 40 * mins
        ),
        KnownAlert(
            "TraceTrackTargetDown", "critical", inc + 10 * h + 1 * mins, inc + 10 * h + 31 * mins
        ),
        KnownAlert("TraceTrackTableNotVacuumed", "info", WEEK_START + 6 * h, None, "exporter:9817"),
    ]
    # CPU flaps around 12:00 on the slow day: four short firings, each over in minutes.
    for start_minute, length in ((0, 3), (20, 3), (40, 3), (60, 4)):
        start = slow + 12 * h + start_minute * mins
        alerts.append(
            KnownAlert(
                "TraceTrackCPUUsageHigh", "warning", start, start + length * mins, "exporter:9817"
            )
        )
    return alerts


@dataclass(frozen=True)
class KnownAck:
    """On-call acknowledging an alert's group on its notification page at `at`."""

    alert: str
    at: datetime
    who: str = "ana"


def known_acks() -> list[KnownAck]:
    inc, slow = INCIDENT_DAY, SLOW_DAY
    h, mins = timedelta(hours=1), timedelta(minutes=1)
    return [
        # 4 and 2 minutes after each incident alert started: median 3 min on that day.
        KnownAck("TraceTrackErrorRateHigh", inc + 9 * h + 14 * mins),
        KnownAck("TraceTrackTargetDown", inc + 10 * h + 3 * mins),
        # The first CPU flap (12:00-12:03) after 2 minutes; the second acknowledgement
        # comes after that flap resolved and before the next one: it acknowledges none.
        KnownAck("TraceTrackCPUUsageHigh", slow + 12 * h + 2 * mins, "ben"),
        KnownAck("TraceTrackCPUUsageHigh", slow + 12 * h + 10 * mins, "ben"),
    ]


# Seconds from start to acknowledgement, as the reports should find them, per day.
ACK_SECONDS = {"incident": [240.0, 120.0], "slow": [120.0]}


def _payload(alert: KnownAlert, status: str) -> dict[str, Any]:
    labels = {"alertname": alert.name, "severity": alert.severity, "instance": alert.instance}
    ends = alert.ends if status == "resolved" and alert.ends else datetime(1, 1, 1, tzinfo=UTC)
    item = {
        "status": status,
        "labels": labels,
        "annotations": {"summary": alert.name},
        "startsAt": alert.starts.isoformat().replace("+00:00", "Z"),
        "endsAt": ends.isoformat().replace("+00:00", "Z"),
        "fingerprint": f"{abs(hash((alert.name, alert.instance))):016x}"[:16],
    }
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{alert.name}"}}',
        "status": status,
        "receiver": f"bridge-{alert.severity}",
        "groupLabels": {"alertname": alert.name},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [item],
    }


def fill_alert_history(store_url: str) -> None:
    """Store the known alerts' firing and resolved notifications as the bridge does,
    each with its notification page, and the known acknowledgements made on those pages
    (alert_bridge.pages, the code behind the page's acknowledge button)."""
    from alert_bridge import pages
    from alert_bridge.payload import parse_payload
    from alert_bridge.store import Store

    store = Store(store_url)
    store.create_schema()
    first_page: dict[str, str] = {}  # alert name -> its first firing notification
    try:
        for alert in known_alerts():
            events = [("firing", alert.starts + timedelta(seconds=30))]
            if alert.ends:
                events.append(("resolved", alert.ends + timedelta(seconds=30)))
            for status, received in events:
                body = json.dumps(_payload(alert, status))
                payload = parse_payload(body.encode())
                key = payload.notification_key()
                with store.tx() as conn:
                    store.add_notification(
                        conn,
                        key=key,
                        kind="alert",
                        severity=alert.severity,
                        status=status,
                        title=payload.title,
                        group_key=payload.groupKey,
                        body=body,
                        recipients=[],
                        now=received.timestamp(),
                    )
                    pages.ensure_page(
                        store, conn, key, payload.groupKey, received.timestamp(), 24 * 3600
                    )
                if status == "firing":
                    first_page.setdefault(alert.name, key)
        for ack in known_acks():
            token = pages.token_for(store, first_page[ack.alert])
            page = pages.page_by_token(store, token or "")
            assert page is not None, ack
            pages.record_ack(store, page, ack.who, ack.at.timestamp())
    finally:
        store.close()


# --- a Prometheus serving it -----------------------------------------------------------


def start_prometheus(workdir: Path, step: int = STEP) -> tuple[Any, str]:
    """A real Prometheus over the backfilled blocks, configured with the history's
    scrape interval (the reports size their range windows from it). Returns (process,
    URL); the caller stops the process."""
    from tooling.procs import free_port, http_ok, prometheus_process

    data = backfill(workdir, step)
    config = workdir / "prometheus.yml"
    config.write_text(f"global:\n  scrape_interval: {step}s\n  evaluation_interval: {step}s\n")
    port = free_port()
    # Retention counts back from the newest block; the history is in the past, keep it all.
    proc = prometheus_process(config, data, port, ["--storage.tsdb.retention.time=100y"]).start()
    url = f"http://127.0.0.1:{port}"
    proc.wait_ready(http_ok(f"{url}/-/ready"), timeout=60)  # stops it if never ready
    return proc, url


# --- the truth ------------------------------------------------------------------------


def steps(start: datetime, end: datetime) -> list[datetime]:
    """Sample times in (start, end]: a counter's increase over the period is the sum of
    the per-step increments at these times."""
    return [t for t in times() if start < t <= end]


def total_when_up(per_step: Callable[[datetime], float], start: datetime, end: datetime) -> float:
    return sum(per_step(t) for t in steps(start, end) if app_up(t))


def availability(start: datetime, end: datetime) -> float:
    """(1 - 5xx share) x (share of `up` samples in [start, end] that are 1)."""
    errors = total_when_up(lambda t: BAG_PER_STEP * error_share(t), start, end)
    requests = total_when_up(lambda t: BAG_PER_STEP + SEARCH_PER_STEP + LOGIN_PER_STEP, start, end)
    ups = [app_up(t) for t in times() if start <= t <= end]
    return (1 - errors / requests) * (sum(ups) / len(ups))
