"""Generates `prometheus/rules.yml` from the thresholds table (common/thresholds.py).

    python -m tooling.rules_gen > prometheus/rules.yml

The output is committed; tests regenerate it and fail when it differs, so the
numbers in the rules can only come from `common.thresholds`. Each threshold row
becomes one alert name with a `warning` and a `critical` rule; the recording rules
each alert needs sit in the same group, before it, so the alert sees this
evaluation's value (no extra evaluation interval of delay; see docs/runbook.md).
The table-maintenance `info` alerts (the weekly VACUUM ANALYZE of docs/architecture.md §11)
take their numbers from `common.thresholds.MAINTENANCE`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import yaml

from common import metric_names as m
from common import promql
from common.alerting import WATCHDOG
from common.thresholds import BY_KEY, LEVELS, MAINTENANCE, Level, Threshold
from common.topology import APP_JOB, BRIDGE_JOB
from tooling import cause_rules, security_rules, slo_rules
from tooling.rule_annotations import VALUE_TEMPLATE, alert_annotations

# `for:` per severity. Critical stays short so a breach reaches the bridge
# within 70 s (10 s scrape + 10 s evaluation + 30 s + 10 s group_wait).
FOR = {"warning": "5m", "critical": "30s"}

# Below this many requests (or cache lookups) per second, averaged over the
# 5-minute window, a ratio or a percentile is noise: one failed request of three is
# not an outage, and the p95 of three requests is the slowest of them.
MIN_REQUEST_RATE = 0.5
MIN_CACHE_LOOKUP_RATE = 0.5

# Routed by Alertmanager to its own receivers, bypassing the bridge (alertmanager.yml).
BRIDGE_DOWN = "TraceTrackAlertBridgeDown"

# The recorded series every threshold alert reads: common/promql.py builds them once,
# for the rules, /analytics and the dashboards alike.
REQUESTS_RATE = promql.REQUESTS_RATE
ERRORS_RATIO = promql.ERRORS_RATIO
LATENCY_P95 = promql.LATENCY_P95
CACHE_LOOKUPS_RATE = promql.CACHE_LOOKUPS_RATE
CACHE_HITS_RATIO = promql.CACHE_HITS_RATIO
DB_CONNECTIONS_SUM = promql.DB_CONNECTIONS_SUM


@dataclass(frozen=True)
class RowAlert:
    """How one row of the thresholds table is measured and described."""

    key: str
    alert: str
    series: str  # what is compared with the threshold
    guard: str | None  # "and on (job, instance) <guard>" keeps idle apps quiet
    description: str  # `{value}` = the humanized current value
    dashboard: tuple[str, str]  # (dashboard uid, panel title) that shows the series


ROW_ALERTS: tuple[RowAlert, ...] = (
    RowAlert(
        # Guarded too: on a nearly idle app the p95 of a handful of requests is the
        # slowest one, and one slow request is nobody's emergency.
        "response_time",
        "TraceTrackResponseTimeHigh",
        LATENCY_P95,
        f"{REQUESTS_RATE} >= {MIN_REQUEST_RATE:g}",
        "The 95th percentile of HTTP request duration over the last 5 minutes is {value}"
        " on {{ $labels.instance }}"
        f" (checked only above {MIN_REQUEST_RATE:g} requests/s).",
        ("tracetrack-performance", "Response time"),
    ),
    RowAlert(
        "error_rate",
        "TraceTrackErrorRateHigh",
        ERRORS_RATIO,
        f"{REQUESTS_RATE} >= {MIN_REQUEST_RATE:g}",
        "{value} of HTTP requests over the last 5 minutes answered 5xx on {{ $labels.instance }}"
        f" (checked only above {MIN_REQUEST_RATE:g} requests/s).",
        ("tracetrack-performance", "Error rate"),
    ),
    RowAlert(
        "cpu_usage",
        "TraceTrackCPUUsageHigh",
        m.CPU_USAGE,
        None,
        "CPU usage is {value} on {{ $labels.instance }}.",
        ("tracetrack-system", "CPU usage"),
    ),
    RowAlert(
        "memory_usage",
        "TraceTrackMemoryUsageHigh",
        m.MEMORY_USAGE,
        None,
        "Memory usage is {value} on {{ $labels.instance }}.",
        ("tracetrack-system", "Memory usage"),
    ),
    RowAlert(
        "concurrent_users",
        "TraceTrackConcurrentUsersHigh",
        m.ACTIVE_USERS,
        None,
        "{value} distinct users made a request in the last 5 minutes on {{ $labels.instance }}.",
        ("tracetrack-business", "Active users"),
    ),
    RowAlert(
        "db_connections",
        "TraceTrackDatabaseConnectionsHigh",
        DB_CONNECTIONS_SUM,
        None,
        "PostgreSQL has {value} connections (all states) as seen by {{ $labels.instance }}.",
        ("tracetrack-system", "Database connections"),
    ),
    RowAlert(
        "cache_hit_rate",
        "TraceTrackCacheHitRateLow",
        CACHE_HITS_RATIO,
        f"{CACHE_LOOKUPS_RATE} >= {MIN_CACHE_LOOKUP_RATE:g}",
        "{value} of cache lookups over the last 5 minutes were hits on {{ $labels.instance }}"
        f" (checked only above {MIN_CACHE_LOOKUP_RATE:g} lookups/s).",
        ("tracetrack-performance", "Cache hit rate"),
    ),
)
ROW_ALERT_BY_KEY = {r.key: r for r in ROW_ALERTS}
# Rows whose 5-minute windows outlive a cause alert that explains them
# (tooling/cause_rules.py): silent while, and 5 minutes after, the cause fired.
EXPLAINED_ROWS: dict[str, tuple[str, ...]] = {
    "error_rate": cause_rules.APP_DOWN_CAUSES,
    "response_time": cause_rules.APP_DOWN_CAUSES,
    "cache_hit_rate": cause_rules.CACHE_CAUSES,
}


def promql_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def format_limit(threshold: Threshold, level: Level) -> str:
    """The threshold as people read it in docs/architecture.md §5: `> 2 s`, `< 70 %`, `> 1500`."""
    value, op = threshold.limit(level), threshold.comparison
    if threshold.unit == "seconds":
        return f"{op} {value:g} s"
    if threshold.unit == "ratio":
        return f"{op} {value * 100:g} %"
    return f"{op} {value:g}"


def _row_rule(row: RowAlert, level: Level) -> dict[str, Any]:
    threshold = BY_KEY[row.key]
    limit, op = threshold.limit(level), threshold.comparison
    expr = f"{row.series} {op} {promql_number(limit)}"
    if row.guard:
        expr += f"\nand on (job, instance)\n{row.guard}"
    if row.key in EXPLAINED_ROWS:
        expr += "\n" + cause_rules.unless_recently(EXPLAINED_ROWS[row.key], "5m")
    human = format_limit(threshold, level)
    word = "above" if threshold.direction == "above" else "below"
    return {
        "alert": row.alert,
        "expr": expr,
        "for": FOR[level],
        "labels": {"severity": level},
        "annotations": alert_annotations(
            row.alert,
            summary=f"{threshold.title} {word} the {level} threshold ({human})"
            " on {{ $labels.instance }}",
            description=row.description.replace("{value}", VALUE_TEMPLATE[threshold.unit])
            + f" The {level} threshold is {human}.",
            value=VALUE_TEMPLATE[threshold.unit],
            threshold=human,
            dashboard=row.dashboard,
        ),
    }


def _alert(
    name: str,
    expr: str,
    for_: str | None,
    severity: str,
    summary: str,
    description: str,
    *,
    value: str | None,
    threshold: str | None,
    dashboard: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """One alerting rule; its annotations come from `tooling.rule_annotations`."""
    rule: dict[str, Any] = {"alert": name, "expr": expr}
    if for_:
        rule["for"] = for_
    rule["labels"] = {"severity": severity}
    rule["annotations"] = alert_annotations(
        name,
        summary=summary,
        description=description,
        value=value,
        threshold=threshold,
        dashboard=dashboard,
    )
    return rule


def threshold_group() -> dict[str, Any]:
    rules: list[dict[str, Any]] = [{"record": r.name, "expr": r.expr} for r in promql.RECORDINGS]
    for row in ROW_ALERTS:
        for level in LEVELS:
            rules.append(_row_rule(row, level))
    return {"name": "tracetrack-thresholds", "rules": rules}


def availability_group() -> dict[str, Any]:
    down = "up is {{ $value }}: {{ $labels.job }} target {{ $labels.instance }} has not answered Prometheus' scrapes"
    return {
        "name": "tracetrack-availability",
        "rules": [
            _alert(
                "TraceTrackTargetDown",
                f'up{{job="{APP_JOB}"}} == 0',
                "30s",
                "critical",
                "The TraceTrack app {{ $labels.instance }} is down",
                down + " for 30 seconds: users cannot reach it.",
                value="up {{ $value }}",
                threshold="up == 0 for 30s",
                dashboard=("tracetrack-performance", "Requests per minute by status"),
            ),
            _alert(
                "TraceTrackTargetDown",
                f'up{{job!="{APP_JOB}"}} == 0\n'
                # A dead bridge is TraceTrackAlertBridgeDown's page, which mutes this one;
                # the two resolve together, in either order.
                + cause_rules.unless_recently((BRIDGE_DOWN,), "2m", on="job"),
                "1m",
                "warning",
                "Scrape target {{ $labels.job }} {{ $labels.instance }} is down",
                down + " for 1 minute; its metrics and the alerts built on them are blind.",
                value="up {{ $value }}",
                threshold="up == 0 for 1m",
                dashboard=("tracetrack-alerts", "Active alerts"),
            ),
            _alert(
                BRIDGE_DOWN,
                # Every replica: one bridge of a pair down is a TargetDown warning.
                f'sum by (job) (up{{job="{BRIDGE_JOB}"}}) == 0',
                "1m",
                "critical",
                "Every alert bridge is down: no notification is being sent",
                "No alert bridge of job {{ $labels.job }} has answered Prometheus' scrapes for"
                " 1 minute ({{ $value }} up): alerts are not reaching anyone by SMS, email or"
                " webhook. Alertmanager sends this one through its own email and Slack/Discord"
                " receivers (generated from alert_config.py), not through the bridge.",
                value="{{ $value }} bridges up",
                threshold="0 bridges answering for 1m",
                dashboard=("tracetrack-alerts", "Notification queue depth"),
            ),
            _alert(
                "TraceTrackExporterCollectorDown",
                f"{m.COLLECTOR_UP} == 0",
                "2m",
                "warning",
                "Exporter collector {{ $labels.collector }} is failing on {{ $labels.instance }}",
                "The exporter's {{ $labels.collector }} collector has reported up {{ $value }} for 2 minutes;"
                " the metrics it publishes (and their alerts) are missing.",
                value="up {{ $value }}",
                threshold="up == 0 for 2m",
                dashboard=("tracetrack-system", "Exporter collectors up"),
            ),
            _alert(
                "TraceTrackCacheFellBackToMemory",
                f'{m.CACHE_BACKEND}{{backend="memory"}} == 1\n'
                f'and on (job, instance)\n{m.CACHE_BACKEND}{{backend="redis"}}\n'
                # Redis being down is TraceTrackRedisDown's page; the app's way back to
                # it may lag its return by a moment.
                + cause_rules.unless_recently(cause_rules.CACHE_CAUSES, "2m"),
                "1m",
                "warning",
                "The app {{ $labels.instance }} fell back from Redis to its in-process cache",
                "Redis is configured but the app {{ $labels.instance }} has served from its in-process"
                ' cache (tracetrack_cache_backend{backend="memory"} = {{ $value }}) for 1 minute:'
                " caches are per worker, hit rate and memory suffer.",
                value='backend="memory" {{ $value }}',
                threshold='backend="memory" == 1 for 1m while Redis is configured',
                dashboard=("tracetrack-performance", "Cache backend"),
            ),
        ],
    }


def delivery_group() -> dict[str, Any]:
    return {
        "name": "tracetrack-alert-delivery",
        "rules": [
            _alert(
                WATCHDOG,
                "vector(1)",
                None,
                "info",
                "Alerting pipeline heartbeat (always firing)",
                "Always firing, so the alert bridge hears from Alertmanager regularly; when the"
                " heartbeats stop, the bridge pages the critical recipients directly.",
                value=None,
                threshold=None,
            ),
            _alert(
                "AlertmanagerNotificationsFailing",
                "sum by (job, instance, integration) (increase(alertmanager_notifications_failed_total[5m])) > 0\n"
                + cause_rules.unless_outbox_refused("5m")
                # Failures to reach a dead bridge are TraceTrackAlertBridgeDown's page (sent
                # by Alertmanager itself); their 5m increase would page again, through the
                # bridge, as soon as it is back.
                + "\n"
                + cause_rules.unless_recently((BRIDGE_DOWN,), "5m"),
                "1m",
                "critical",
                "Alertmanager {{ $labels.instance }} cannot deliver {{ $labels.integration }} notifications",
                'Alertmanager gave up on about {{ $value | printf "%.0f" }} {{ $labels.integration }}'
                " notifications in the last 5 minutes, after retries: alerts are not reaching the bridge.",
                value='{{ $value | printf "%.0f" }} failed in 5m',
                threshold="> 0 failed in 5m",
                dashboard=("tracetrack-alerts", "Notifications per minute"),
            ),
            _alert(
                "TraceTrackNotificationDeliveryFailing",
                f'sum by (job, instance, channel) (increase({m.NOTIFICATIONS}{{outcome="failed"}}[15m])) > 0',
                "1m",
                "warning",
                "The alert bridge failed permanently on {{ $labels.channel }} deliveries",
                'About {{ $value | printf "%.0f" }} {{ $labels.channel }} notifications failed'
                " permanently (not retried) in the last 15 minutes on {{ $labels.instance }}:"
                " some recipients did not get their alert.",
                value='{{ $value | printf "%.0f" }} failed in 15m',
                threshold="> 0 failed in 15m",
                dashboard=("tracetrack-alerts", "Notifications per minute"),
            ),
        ],
    }


# Table maintenance (the weekly VACUUM ANALYZE of docs/architecture.md §11), `info` only.
TABLE_LABELS = "(job, instance, table)"
NOT_VACUUMED = "TraceTrackTableNotVacuumed"
NOT_ANALYZED = "TraceTrackTableNotAnalyzed"
DEAD_TUPLES_HIGH = "TraceTrackDeadTuplesHigh"


def maintenance_phrases() -> dict[str, tuple[str, ...]]:
    """Alert name -> what its runbook `- Info:` line must quote, from MAINTENANCE."""
    mt = MAINTENANCE
    big = f"≥ {mt.min_live_rows} live rows"
    return {
        NOT_VACUUMED: (f"older than {mt.max_age_days} days", big),
        NOT_ANALYZED: (f"older than {mt.max_age_days} days", big),
        DEAD_TUPLES_HIGH: (f"> {mt.dead_ratio * 100:g} % of", f"≥ {mt.min_dead_rows} dead rows"),
    }


def _overdue(name: str, metric: str, operation: str, done: str) -> dict[str, Any]:
    mt = MAINTENANCE
    # The value is the timestamp itself, so the description can tell "never" (0: not
    # since the statistics were reset) from a date; a fresh, empty install has no table
    # past the row guard, and `for:` gives autovacuum time after a bulk load.
    expr = (
        f"{metric} < time() - {mt.max_age_seconds}\n"
        f"and on {TABLE_LABELS}\n{m.DB_TABLE_LIVE_TUPLES} >= {mt.min_live_rows}"
    )
    when = (
        "{{ if eq $value 0.0 }}never (as far as PostgreSQL's statistics know)"
        f"{{{{ else }}}}at {{{{ $value | humanizeTimestamp }}}}, more than {mt.max_age_days} days ago"
        "{{ end }}"
    )
    return _alert(
        name,
        expr,
        mt.for_,
        "info",
        f"Table {{{{ $labels.table }}}} not {done} for over {mt.max_age_days} days",
        f"The last {operation} of table {{{{ $labels.table }}}} (manual or automatic) was {when};"
        f" the table has {mt.min_live_rows} or more live rows (exporter {{{{ $labels.instance }}}})."
        " Run VACUUM ANALYZE {{ $labels.table }} during regular maintenance.",
        value="{{ if eq $value 0.0 }}never{{ else }}{{ $value | humanizeTimestamp }}{{ end }}",
        threshold=f"older than {mt.max_age_days} days",
    )


def maintenance_group() -> dict[str, Any]:
    mt = MAINTENANCE
    dead, live = m.DB_TABLE_DEAD_TUPLES, m.DB_TABLE_LIVE_TUPLES
    return {
        "name": "tracetrack-maintenance",
        "rules": [
            _overdue(NOT_VACUUMED, m.DB_TABLE_LAST_VACUUM, "VACUUM", "vacuumed"),
            _overdue(NOT_ANALYZED, m.DB_TABLE_LAST_ANALYZE, "ANALYZE", "analyzed"),
            # A share of all rows, not dead/live: bounded, and a table emptied by a mass
            # DELETE (0 live rows) reads 100 %, not infinity. Autovacuum starts near 17 %
            # (dead > 0.2 * live + 50), so holding above 20 % means it is not keeping up.
            _alert(
                DEAD_TUPLES_HIGH,
                f"{dead} / ({dead} + {live}) > {promql_number(mt.dead_ratio)}\n"
                f"and on {TABLE_LABELS}\n{dead} >= {mt.min_dead_rows}",
                mt.for_,
                "info",
                "Table {{ $labels.table }} has over"
                f" {mt.dead_ratio * 100:g} % dead rows waiting for VACUUM",
                "{{ $value | humanizePercentage }} of the rows of table {{ $labels.table }} are dead"
                f" (at least {mt.min_dead_rows} dead rows, for {mt.for_}): autovacuum is not keeping"
                " up, or a long transaction keeps it from removing them (exporter"
                " {{ $labels.instance }}). Run VACUUM ANALYZE {{ $labels.table }} during regular"
                " maintenance.",
                value="{{ $value | humanizePercentage }} dead",
                threshold=f"> {mt.dead_ratio * 100:g} % dead",
            ),
        ],
    }


def rules_document() -> dict[str, Any]:
    return {
        "groups": [
            threshold_group(),
            availability_group(),
            delivery_group(),
            maintenance_group(),
            cause_rules.cause_group(_alert),
            security_rules.security_group(_alert),
            *slo_rules.slo_groups(),
        ]
    }


class _Dumper(yaml.SafeDumper):  # PyYAML ships no type stubs
    pass


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)

HEADER = (
    "# Generated by `python -m tooling.rules_gen > prometheus/rules.yml` from\n"
    "# common/thresholds.py (docs/architecture.md §5). Do not edit: change the generator or the\n"
    "# thresholds and regenerate; tests fail when this file is stale.\n"
)


def render_rules() -> str:
    body = yaml.dump(
        rules_document(),
        Dumper=_Dumper,
        sort_keys=False,
        width=1000,
        default_flow_style=False,
        allow_unicode=True,
    )
    return HEADER + str(body)


def main() -> int:
    sys.stdout.write(render_rules())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
