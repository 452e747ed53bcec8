"""Grafana dashboards as code (grafana-foundation-sdk, Grafana 11.6 build).

    python -m grafana.build            # rewrite grafana/dashboards/*.json
    python -m grafana.build --check    # exit 1 if the committed JSON is stale

The committed JSON is what Grafana provisions (grafana/provisioning/dashboards/);
this module is the source. Threshold lines and colours come from
common/thresholds.py, metric names from common/metric_names.py. No service
imports this module: it is a build step, and the SDK is a dev dependency.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard, prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from common import metric_names as m
from common import promql, slo
from common.alerting import SEVERITIES, WATCHDOG
from common.thresholds import BY_KEY, SECURITY_BY_KEY, SecurityThreshold, Threshold
from tooling.generated import write_or_check
from tooling.security_rules import SECURITY_PANELS

DASHBOARD_DIR = Path(__file__).resolve().parent / "dashboards"

# Fixed UIDs: grafana/provisioning/datasources/datasources.yml declares the same
# (tests/test_dashboards.py checks), so panels resolve without a lookup by name.
PROMETHEUS_UID = "tracetrack-prometheus"
ALERTMANAGER_UID = "tracetrack-alertmanager"
PROMETHEUS = dm.DataSourceRef(type_val="prometheus", uid=PROMETHEUS_UID)
TAG = "tracetrack"

OK, WARN, CRIT, INFO = "green", "orange", "red", "blue"
SEVERITY_COLOURS = dict(zip(SEVERITIES, (CRIT, WARN, INFO), strict=True))

# Every panel query filters on the dashboard's instance variable ("All" -> ".*").
INST = 'instance=~"$instance"'
RATE = "$__rate_interval"


# --- PromQL: common/promql.py builds it; recorded series where the rules record one ------


def avg_response_time() -> str:
    return promql.latency_mean(RATE, INST, by=())


def p95_response_time(by: str = "") -> str:
    if by:  # the recordings are per instance only
        return promql.latency_quantile(0.95, RATE, INST, by=(by,))
    return promql.recorded_latency_quantile(0.95, INST)


def requests_per_minute() -> str:
    return f"{promql.recorded(promql.REQUESTS_RATE, INST)} * 60"


def error_rate() -> str:
    return promql.recorded_ratio(promql.SERVER_ERRORS_RATE, promql.REQUESTS_RATE, INST)


def cache_hit_rate() -> str:
    return promql.recorded_ratio(promql.CACHE_HITS_RATE, promql.CACHE_LOOKUPS_RATE, INST)


def per_minute(counter: str, by: str = "") -> str:
    return promql.per_minute(
        counter, RATE, INST, by=[b.strip() for b in by.split(",") if b.strip()]
    )


def firing(severity: str) -> str:
    # The Watchdog always fires (the bridge's heartbeat): counting it would keep the
    # info tile lit forever.
    return (
        f'count(ALERTS{{alertstate="firing", severity="{severity}", alertname!="{WATCHDOG}"}})'
        " or vector(0)"
    )


# --- panel construction -----------------------------------------------------------------


def steps_for(t: Threshold | SecurityThreshold) -> list[dm.Threshold]:
    """Grafana threshold steps from a row of the thresholds table, bad side coloured."""
    if t.direction == "above":
        return [
            dm.Threshold(value=None, color=OK),
            dm.Threshold(value=t.warning, color=WARN),
            dm.Threshold(value=t.critical, color=CRIT),
        ]
    return [
        dm.Threshold(value=None, color=CRIT),
        dm.Threshold(value=t.critical, color=WARN),
        dm.Threshold(value=t.warning, color=OK),
    ]


def thresholds(t: Threshold | SecurityThreshold | None) -> dashboard.ThresholdsConfig:
    steps = steps_for(t) if t else [dm.Threshold(value=None, color=OK)]
    return dashboard.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(steps)


def query(
    expr: str, legend: str = "", ref: str = "A", instant: bool = False, table_format: bool = False
) -> prometheus.Dataquery:
    q = prometheus.Dataquery().datasource(PROMETHEUS).expr(expr).ref_id(ref)
    if legend:
        q = q.legend_format(legend)
    if instant:
        q = q.instant()
    if table_format:
        q = q.format(PromQueryFormat.TABLE)
    return q


@dataclass
class Layout:
    """Left-to-right, top-to-bottom placement on Grafana's 24-column grid."""

    x: int = 0
    y: int = 0
    row_h: int = 0

    def place(self, w: int, h: int) -> dm.GridPos:
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        pos = dm.GridPos(h=h, w=w, x=self.x, y=self.y)
        self.x += w
        self.row_h = max(self.row_h, h)
        return pos


@dataclass
class Board:
    uid: str
    title: str
    description: str
    instance_source: str  # the PromQL whose instances fill the variable
    layout: Layout = field(default_factory=Layout)
    panels: list[Any] = field(default_factory=list)

    def stat(
        self,
        title: str,
        description: str,
        expr: str,
        unit: str,
        t: Threshold | SecurityThreshold | None = None,
        legend: str = "",
        w: int = 6,
        h: int = 5,
        colour: str | None = None,
        no_value: str | None = None,
        text_mode: cm.BigValueTextMode = cm.BigValueTextMode.AUTO,
    ) -> None:
        p = (
            stat.Panel()
            .title(title)
            .description(description)
            .datasource(PROMETHEUS)
            .unit(unit)
            .with_target(query(expr, legend))
            .color_mode(cm.BigValueColorMode.BACKGROUND)
            .graph_mode(cm.BigValueGraphMode.AREA)
            .text_mode(text_mode)
            .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
            .grid_pos(self.layout.place(w, h))
        )
        if colour:
            p = p.thresholds(
                dashboard.ThresholdsConfig()
                .mode(dm.ThresholdsMode.ABSOLUTE)
                .steps([dm.Threshold(value=None, color=OK), dm.Threshold(value=1, color=colour)])
            )
        else:
            p = p.thresholds(thresholds(t))
        if no_value:
            p = p.no_value(no_value)
        self.panels.append(p)

    def series(
        self,
        title: str,
        description: str,
        targets: Sequence[tuple[str, str]],
        unit: str,
        t: Threshold | None = None,
        w: int = 12,
        h: int = 8,
        min_: float | None = 0,
        max_: float | None = None,
    ) -> None:
        p = (
            timeseries.Panel()
            .title(title)
            .description(description)
            .datasource(PROMETHEUS)
            .unit(unit)
            .thresholds(thresholds(t))
            .fill_opacity(10)
            .line_width(1)
            .legend(
                cb.VizLegendOptions()
                .show_legend(True)
                .display_mode(cm.LegendDisplayMode.LIST)
                .placement(cm.LegendPlacement.BOTTOM)
            )
            .grid_pos(self.layout.place(w, h))
        )
        if t is not None:
            p = p.thresholds_style(
                cb.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.LINE_AND_AREA)
            )
        if min_ is not None:
            p = p.min(min_)
        if max_ is not None:
            p = p.max(max_)
        for i, (expr, legend) in enumerate(targets):
            p = p.with_target(query(expr, legend, ref=chr(ord("A") + i)))
        self.panels.append(p)

    def add(self, panel: Any, w: int, h: int) -> None:
        self.panels.append(panel.grid_pos(self.layout.place(w, h)))

    def build(self) -> dict[str, Any]:
        instance = (
            dashboard.QueryVariable("instance")
            .label("Instance")
            .description("Scrape target(s) the panels show; All for every one.")
            .datasource(PROMETHEUS)
            .query(f"label_values({self.instance_source}, instance)")
            .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(dm.VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
            .current(dm.VariableOption(selected=True, text="All", value="$__all"))
        )
        d = (
            dashboard.Dashboard(self.title)
            .uid(self.uid)
            .description(self.description)
            .tags([TAG])
            .editable()
            .refresh("30s")
            .time("now-1h", "now")
            .timezone("browser")
            .with_variable(instance)
            .link(
                dashboard.DashboardLink("TraceTrack")
                .type(dm.DashboardLinkType.DASHBOARDS)
                .tags([TAG])
                .as_dropdown(True)
                .include_vars(True)
                .keep_time(True)
            )
        )
        for p in self.panels:
            d = d.with_panel(p)
        built = d.build()
        # Stable, human-diffable JSON: panel ids in order of appearance.
        data: dict[str, Any] = json.loads(JSONEncoder(sort_keys=True).encode(built))
        for i, panel in enumerate(data["panels"], start=1):
            panel["id"] = i
        return data


# --- the four dashboards -------------------------------------------------------------------


def system() -> Board:
    b = Board(
        "tracetrack-system",
        "TraceTrack / System",
        "Host and database health as the exporter sees it.",
        m.CPU_USAGE,
    )
    cpu, mem, dbc = BY_KEY["cpu_usage"], BY_KEY["memory_usage"], BY_KEY["db_connections"]
    db_total = promql.recorded(promql.DB_CONNECTIONS_SUM, INST)
    b.stat(
        "CPU usage",
        f"Host CPU busy ratio; warning above {cpu.warning:.0%}, critical above {cpu.critical:.0%}.",
        f"max({m.CPU_USAGE}{{{INST}}})",
        "percentunit",
        cpu,
    )
    b.stat(
        "Memory usage",
        f"Host memory in use; warning above {mem.warning:.0%}, critical above {mem.critical:.0%}.",
        f"max({m.MEMORY_USAGE}{{{INST}}})",
        "percentunit",
        mem,
    )
    b.stat(
        "Fullest disk",
        "The highest usage among the exporter's mountpoints.",
        f"max({m.DISK_USAGE}{{{INST}}})",
        "percentunit",
    )
    b.stat(
        "Database connections",
        f"PostgreSQL connections (pg_stat_activity, all states); "
        f"warning above {dbc.warning:g}, critical above {dbc.critical:g}.",
        db_total,
        "short",
        dbc,
    )
    b.series(
        "CPU usage",
        "Host CPU busy ratio over time, with the alert thresholds.",
        [(f"{m.CPU_USAGE}{{{INST}}}", "{{instance}}")],
        "percentunit",
        cpu,
        max_=1,
    )
    b.series(
        "Memory usage",
        "Host memory in use over time, with the alert thresholds.",
        [(f"{m.MEMORY_USAGE}{{{INST}}}", "{{instance}}")],
        "percentunit",
        mem,
        max_=1,
    )
    b.series(
        "Disk usage",
        "Used fraction of each mountpoint the exporter watches.",
        [(f"{m.DISK_USAGE}{{{INST}}}", "{{mountpoint}}")],
        "percentunit",
        max_=1,
    )
    b.series(
        "Database connections",
        "Total PostgreSQL connections against max_connections, with the alert thresholds.",
        [(db_total, "connections"), (f"max({m.DB_MAX_CONNECTIONS}{{{INST}}})", "max_connections")],
        "short",
        dbc,
    )
    b.series(
        "Database connections by state",
        "pg_stat_activity by state (active, idle, idle in transaction ...).",
        [(f"sum by (state) ({m.DB_CONNECTIONS}{{{INST}}})", "{{state}}")],
        "short",
    )
    b.series(
        "App connection pool",
        "The app's SQLAlchemy pool, all workers: checked out vs idle.",
        [(f"sum by (state) ({m.DB_POOL_CONNECTIONS}{{{INST}}})", "{{state}}")],
        "short",
    )
    b.series(
        "Exporter collectors up",
        "1 when a collector's backend answered on the last "
        "scrape; 0 means that part of the exporter's data is missing.",
        [(f"{m.COLLECTOR_UP}{{{INST}}}", "{{collector}}")],
        "short",
        max_=1,
    )
    b.series(
        "Exporter collector duration",
        "Seconds each collector took on the last scrape.",
        [(f"{m.COLLECTOR_DURATION}{{{INST}}}", "{{collector}}")],
        "s",
    )
    return b


def performance() -> Board:
    b = Board(
        "tracetrack-performance",
        "TraceTrack / Performance",
        "Latency, throughput, errors and cache of the app, from its /metrics.",
        m.HTTP_REQUESTS,
    )
    rt, err, hit = BY_KEY["response_time"], BY_KEY["error_rate"], BY_KEY["cache_hit_rate"]
    b.stat(
        "Average response time",
        "Mean request duration over the rate window.",
        avg_response_time(),
        "s",
        rt,
    )
    b.stat(
        "p95 response time",
        f"95th percentile request duration (the alert's measure); "
        f"warning above {rt.warning:g} s, critical above {rt.critical:g} s.",
        p95_response_time(),
        "s",
        rt,
    )
    b.stat(
        "Requests per minute",
        "Requests of every route and status, per minute.",
        requests_per_minute(),
        "suffix: req/min",
    )
    b.stat(
        "Error rate",
        f"Share of responses with a 5xx status; warning above "
        f"{err.warning:.0%}, critical above {err.critical:.0%}.",
        error_rate(),
        "percentunit",
        err,
    )
    b.series(
        "Response time",
        "Mean and 95th percentile request duration, with the alert thresholds.",
        [(avg_response_time(), "average"), (p95_response_time(), "p95")],
        "s",
        rt,
    )
    b.series(
        "p95 response time by route",
        "95th percentile per route template.",
        [(p95_response_time("route"), "{{route}}")],
        "s",
    )
    b.series(
        "Requests per minute by status",
        "Throughput split by HTTP status code.",
        [(per_minute(m.HTTP_REQUESTS, "status"), "{{status}}")],
        "suffix: req/min",
    )
    b.series(
        "Error rate",
        "Share of 5xx responses, with the alert thresholds.",
        [(error_rate(), "5xx ratio")],
        "percentunit",
        err,
    )
    b.series(
        "Cache hit rate",
        f"Cache hits / lookups; warning below {hit.warning:.0%}, "
        f"critical below {hit.critical:.0%}.",
        [(cache_hit_rate(), "hit rate")],
        "percentunit",
        hit,
        max_=1,
    )
    b.series(
        "Requests in progress",
        "Requests being handled right now, all workers.",
        [(f"sum({m.HTTP_REQUESTS_IN_PROGRESS}{{{INST}}})", "in progress")],
        "short",
    )
    b.stat(
        "Cache hit rate",
        f"Cache hits / lookups over the last 5 minutes (the alert's measure); warning below "
        f"{hit.warning:.0%}, critical below {hit.critical:.0%}.",
        cache_hit_rate(),
        "percentunit",
        hit,
        w=12,
    )
    b.stat(
        "Cache backend",
        "The cache backend in use: redis, or memory after a Redis failover.",
        f"max by (backend) ({m.CACHE_BACKEND}{{{INST}}}) == 1",
        "short",
        legend="{{backend}}",
        w=12,
        text_mode=cm.BigValueTextMode.NAME,
    )
    slo_panels(b)
    return b


def _steps(*steps: tuple[float | None, str]) -> dashboard.ThresholdsConfig:
    return (
        dashboard.ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps([dm.Threshold(value=v, color=c) for v, c in steps])
    )


def slo_panels(b: Board) -> None:
    """The availability SLO of common/slo.py: attainment, budget left and burn rates."""
    month = slo.BUDGET_WINDOW
    ratio = slo.error_ratio(month, INST)
    objective = slo.objective_percent()
    b.stat(
        f"Availability ({slo.WINDOW_DAYS} days)",
        f"Share of good answers (not 5xx, app up) over {slo.WINDOW_DAYS} days; the SLO is"
        f" {objective}.",
        f"1 - ({ratio})",
        "percentunit",
        w=8,
    )
    b.panels[-1] = b.panels[-1].thresholds(_steps((None, CRIT), (slo.OBJECTIVE, OK))).decimals(3)
    b.stat(
        "Error budget remaining",
        f"What is left of the {slo.WINDOW_DAYS}-day error budget ({slo.BUDGET:.1%} of answers):"
        " 100 % untouched, 0 spent, below 0 overspent.",
        slo.budget_remaining(ratio),
        "percentunit",
        w=8,
    )
    b.panels[-1] = b.panels[-1].thresholds(_steps((None, CRIT), (0, OK)))
    b.stat(
        "Error budget burn rate (1h)",
        "How fast the budget burns over the last hour: 1 spends it in exactly"
        f" {slo.WINDOW_DAYS} days; the page fires above"
        f" {slo.BURN_RATE_ALERTS[0].factor:g} (with the 5m window too).",
        slo.burn_rate(slo.error_ratio("1h", INST)),
        "short",
        w=8,
    )
    b.panels[-1] = b.panels[-1].thresholds(
        _steps(
            (None, OK),
            *(
                (a.factor, CRIT if a.severity == "critical" else WARN)
                for a in sorted(slo.BURN_RATE_ALERTS, key=lambda a: a.factor)
            ),
        )
    )
    b.series(
        "Error budget burn rate",
        "Burn rate over each alert's long window; the lines are the factors of the"
        " multi-window burn-rate alerts (TraceTrackErrorBudgetBurn).",
        [(slo.burn_rate(slo.error_ratio(a.long, INST)), a.long) for a in slo.BURN_RATE_ALERTS],
        "short",
        w=24,
    )
    b.panels[-1] = (
        b.panels[-1]
        .thresholds(
            _steps(
                (None, OK),
                *(
                    (a.factor, CRIT if a.severity == "critical" else WARN)
                    for a in sorted(slo.BURN_RATE_ALERTS, key=lambda a: a.factor)
                ),
            )
        )
        .thresholds_style(cb.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.LINE))
    )


def business() -> Board:
    b = Board(
        "tracetrack-business",
        "TraceTrack / Business",
        "Bags, users, scans and bills: the business figures.",
        "up",
    )
    users = BY_KEY["concurrent_users"]
    b.stat(
        "Total bags",
        "Bags in the database (the exporter's HELP says whether exact or estimated).",
        f"max({m.BAGS}{{{INST}}})",
        "short",
    )
    b.stat(
        "Active users",
        f"Distinct users with a request in the last 5 minutes; warning "
        f"above {users.warning:g}, critical above {users.critical:g}.",
        f"sum({m.ACTIVE_USERS}{{{INST}}})",
        "short",
        users,
    )
    b.stat(
        "Scans today",
        "Scans since local midnight (TRACETRACK_TIMEZONE).",
        f"max({m.SCANS_TODAY}{{{INST}}})",
        "short",
    )
    b.stat(
        "Bills created today",
        "Bills since local midnight (TRACETRACK_TIMEZONE).",
        f"max({m.BILLS_TODAY}{{{INST}}})",
        "short",
    )
    b.series(
        "Active users",
        "Distinct users with a request in the last 5 minutes, with the concurrent-user thresholds.",
        [(f"sum({m.ACTIVE_USERS}{{{INST}}})", "active users")],
        "short",
        users,
    )
    b.series(
        "Activity per minute",
        "Scans, bags and bills recorded by the app, per minute.",
        [
            (per_minute(m.SCANS), "scans"),
            (per_minute(m.BAGS_CREATED), "bags created"),
            (per_minute(m.BILLS_CREATED), "bills created"),
        ],
        "short",
    )
    b.series(
        "Bags", "Total bags over time.", [(f"max({m.BAGS}{{{INST}}})", "bags")], "short", min_=None
    )
    b.series(
        "Registered users",
        "Users in the database.",
        [(f"max({m.USERS}{{{INST}}})", "users")],
        "short",
    )
    return b


def severity_cells() -> list[dm.DynamicConfigValue]:
    """A table column of severities, each cell coloured as SEVERITY_COLOURS says."""
    return [
        dm.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"}),
        dm.DynamicConfigValue(
            id_val="mappings",
            value=[
                {
                    "type": "value",
                    "options": {
                        s: {"color": c, "index": i, "text": s}
                        for i, (s, c) in enumerate(SEVERITY_COLOURS.items())
                    },
                }
            ],
        ),
    ]


def alerts() -> Board:
    b = Board(
        "tracetrack-alerts",
        "TraceTrack / Alerts",
        "Alerts firing in Prometheus and the notifications the alert bridge sent.",
        "up",
    )
    for sev in SEVERITIES:
        b.stat(
            f"Firing {sev}",
            f"Alerts of severity {sev} firing now, the Watchdog heartbeat "
            f"excepted ({sev} colour when any).",
            firing(sev),
            "short",
            colour=SEVERITY_COLOURS[sev],
            w=8,
            h=4,
        )
    active = (
        table.Panel()
        .title("Active alerts")
        .description(
            "Every alert firing in Prometheus now, coloured by severity. The "
            "Watchdog (info) always fires: it is the alerting pipeline's "
            "heartbeat. Silences and routing live in Alertmanager."
        )
        .datasource(PROMETHEUS)
        .unit("short")
        .no_value("No active alerts")
        .with_target(query('ALERTS{alertstate="firing"}', instant=True, table_format=True))
        .with_transformation(
            dm.DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": {
                        "Time": True,
                        "Value": True,
                        "__name__": True,
                        "alertstate": True,
                    },
                    "indexByName": {"severity": 0, "alertname": 1, "instance": 2, "job": 3},
                },
            )
        )
        .override_by_name("severity", severity_cells())
    )
    b.add(active, w=24, h=8)
    recent = (
        table.Panel()
        .title("Recent notifications")
        .description(
            "Notifications the alert bridge handled over the dashboard's time "
            "range, by channel, severity and outcome (sent, logged, retry, "
            "failed, duplicate)."
        )
        .datasource(PROMETHEUS)
        .unit("short")
        .no_value("No notifications in this range")
        .with_target(
            query(
                f"sum by (channel, severity, outcome) "
                f"(increase({m.NOTIFICATIONS}{{{INST}}}[$__range])) > 0",
                instant=True,
                table_format=True,
            )
        )
        .with_transformation(
            dm.DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": {"Time": True},
                    "renameByName": {"Value": "notifications"},
                },
            )
        )
        .override_by_name("severity", severity_cells())
    )
    b.add(recent, w=12, h=8)
    b.series(
        "Notifications per minute",
        "Deliveries by channel and outcome, per minute.",
        [(per_minute(m.NOTIFICATIONS, "channel, outcome"), "{{channel}} {{outcome}}")],
        "short",
    )
    b.series(
        "Notification queue depth",
        "Deliveries pending or in flight in the bridge's "
        "outbox; a growing queue means a channel is failing.",
        [(f"sum({m.NOTIFICATION_QUEUE_DEPTH}{{{INST}}})", "queued")],
        "short",
    )
    b.series(
        "Notification delivery p95",
        "95th percentile from acceptance to delivery, per channel, retries included.",
        [
            (
                f"histogram_quantile(0.95, sum by (le, channel) "
                f"(rate({m.NOTIFICATION_DELIVERY}_bucket{{{INST}}}[{RATE}])))",
                "{{channel}}",
            )
        ],
        "s",
    )
    return b


def security() -> Board:
    """Security monitoring (app/guard, docs/architecture.md §11): each stat is the number its
    alert compares (common/thresholds.py SECURITY), coloured at the alert's limits."""
    b = Board(
        "tracetrack-security",
        "TraceTrack / Security",
        "Failed logins, lockouts, rate limits, suspicious scans, injection attempts and IP"
        " blocks. Events behind the numbers: `tracetrack security events --since 1h` or"
        " /analytics/api/security; runbook: docs/runbook.md#security-alerts.",
        m.RATE_LIMITED,
    )
    for key in SECURITY_PANELS:
        t = SECURITY_BY_KEY[key]
        expr = promql.security_measurement(t.measure, t.metric, t.window, INST, t.by)
        if t.by:
            expr = promql.worst(expr)
        worst = f", the worst {t.by[0].replace('_', ' ')}" if t.by else ""
        b.stat(
            SECURITY_PANELS[key],
            f"{t.title}{worst}: what {t.alert} compares; warning {t.human('warning')},"
            f" critical {t.human('critical')}.",
            expr,
            "short",
            t,
            w=4,
        )
    b.stat(
        "Blocked addresses",
        "Active IP blocks (tracetrack security list), as the app's workers last read them.",
        f"max({m.BLOCKED_CLIENTS}{{{INST}}})",
        "short",
        w=4,
    )
    b.series(
        "Failed logins per minute by reason",
        "bad_password, unknown_user (names that do not exist: a list being tried) and"
        " locked_out (refused unchecked during a lockout).",
        [(per_minute(m.LOGIN_FAILURES, "reason"), "{{reason}}")],
        "short",
    )
    b.series(
        "Lockouts per minute by scope",
        "Lockouts started: of one account, or of one client IP across accounts.",
        [(per_minute(m.ACCOUNT_LOCKOUTS, "scope"), "{{scope}}")],
        "short",
    )
    b.series(
        "Rate-limited requests per minute by route class",
        "429 answers of the rate limits (login, writes, reads).",
        [(per_minute(m.RATE_LIMITED, "route_class"), "{{route_class}}")],
        "short",
    )
    b.series(
        "Blocked requests per minute",
        "403 answers to blocked addresses (before authentication and body parsing).",
        [(per_minute(m.BLOCKED_REQUESTS), "blocked requests")],
        "short",
    )
    b.series(
        "Suspicious scans per minute by kind",
        "impossible_travel, scan_burst, unknown_qr_probing, billed_bag: counted, never refused.",
        [(per_minute(m.SUSPICIOUS_SCANS, "kind"), "{{kind}}")],
        "short",
    )
    b.series(
        "Injection attempts per minute by kind",
        "Rejected input carrying sql, script or path_traversal signatures.",
        [(per_minute(m.INJECTION_ATTEMPTS, "kind"), "{{kind}}")],
        "short",
    )
    return b


BOARDS = (system, performance, business, alerts, security)


def render() -> dict[str, str]:
    """File name -> JSON text for every dashboard."""
    out = {}
    for make in BOARDS:
        data = make().build()
        out[f"{data['uid'].removeprefix('tracetrack-')}.json"] = (
            json.dumps(data, indent=2, sort_keys=True) + "\n"
        )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m grafana.build",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--check", action="store_true", help="compare with the committed JSON instead of writing it"
    )
    args = parser.parse_args(argv)
    return write_or_check(
        {DASHBOARD_DIR / name: text for name, text in render().items()},
        args.check,
        "python -m grafana.build",
    )


if __name__ == "__main__":
    raise SystemExit(main())
