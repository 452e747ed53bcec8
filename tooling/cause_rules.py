"""The cause rule family: alerts that name a failed dependency, so that one fault gives
one page saying what broke rather than the symptoms it causes.

- TraceTrackPostgresDown (critical): the exporter cannot read PostgreSQL within the
  scrape deadline (stopped, unreachable, or stopped answering), or the app's requests
  give up waiting for it (tracetrack_db_timeouts_total, app/db_deadline.py) while its
  readiness check fails. One series without an instance label: one database, one
  page, whichever view sees it.
- TraceTrackAppNotReady (critical): a running app answers GET /readyz with an error
  (probed by the exporter, exporter/appready.py): users get 503s.
- TraceTrackRedisDown (warning): Redis does not answer the exporter; the app serves
  from its in-process cache, slower but correct, so nobody is woken.

Alertmanager's inhibit rules (alertmanager/alertmanager.yml) mute the symptoms while
a cause fires: error rate, error budget, response time and readiness behind
PostgreSQL; the cache fallback and hit rate behind Redis; the app's symptoms behind
its readiness. `CAUSES` says which alert mutes which, for the tests and the runbook.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from common import metric_names as m

POSTGRES_DOWN = "TraceTrackPostgresDown"
APP_NOT_READY = "TraceTrackAppNotReady"
REDIS_DOWN = "TraceTrackRedisDown"
# Not a rule of this family (tooling/rules_gen.py): a dead app target explains the
# error budget's burn, which counts down time (tooling/slo_rules.py).
TARGET_DOWN = "TraceTrackTargetDown"

# Cause -> the alerts it explains (muted by Alertmanager while the cause fires).
CAUSES: dict[str, tuple[str, ...]] = {
    POSTGRES_DOWN: (
        "TraceTrackErrorRateHigh",
        "TraceTrackErrorBudgetBurn",
        "TraceTrackResponseTimeHigh",
        APP_NOT_READY,
        "TraceTrackExporterCollectorDown",  # its postgres, business and app collectors
    ),
    REDIS_DOWN: (
        "TraceTrackCacheFellBackToMemory",
        "TraceTrackCacheHitRateLow",
        "TraceTrackExporterCollectorDown",  # its redis collector
    ),
    APP_NOT_READY: (
        "TraceTrackErrorRateHigh",
        "TraceTrackErrorBudgetBurn",
        "TraceTrackResponseTimeHigh",
    ),
}

# Symptoms outlive their cause: an error ratio over 5 minutes stays high for minutes
# after the database is back, and would page once the cause's inhibition lifts. So the
# symptom alerts also stay silent while, or within their own window after, a cause
# that explains them fired (`unless_recently`): one fault, one page.
APP_DOWN_CAUSES = (POSTGRES_DOWN, APP_NOT_READY)
CACHE_CAUSES = (REDIS_DOWN,)


def unless_recently(causes: tuple[str, ...], window: str, on: str = "") -> str:
    """The tail of a symptom alert's expression: nothing while any of `causes` fires or
    fired within `window` (Prometheus' own ALERTS series); with `on` (a label), only
    where the cause carried the same value of it."""
    names = "|".join(causes)
    fired = f'max_over_time(ALERTS{{alertname=~"{names}", alertstate="firing"}}[{window}])'
    if on:
        return f"unless on ({on})\n{fired}"
    return f"unless on ()\ncount({fired})"


def unless_outbox_refused(window: str) -> str:
    """The tail of an alert about Alertmanager failing to reach the bridge: nothing while,
    or within `window` after, the bridge refused webhooks because its outbox could not be
    written (the bridge pages about that itself, alert_bridge/watchdog.py)."""
    return f"unless on ()\ncount(min_over_time({m.OUTBOX_WRITABLE}[{window}]) == 0)"


# The timeouts that mean PostgreSQL did not answer the app at all (not a slow statement).
# Not `failed_fast`: those are the app's own answers while its stall breaker waits for
# its next probe, no news about PostgreSQL; they go on for up to a probe's deadline
# after it answers again, and their number follows the traffic, not the database.
NO_ANSWER_KIND = "no_answer"

Alert = Callable[..., dict[str, Any]]


def cause_group(alert: Alert) -> dict[str, Any]:
    """The group; `alert(name, expr, for, severity, summary, description, value=,
    threshold=, dashboard=)` builds a rule (annotations by tooling.rule_annotations)."""
    collector_down = f'{m.COLLECTOR_UP}{{collector="postgres"}} == bool 0'
    timeouts = f'{m.DB_TIMEOUTS}{{kind="{NO_ANSWER_KIND}"}}'
    return {
        "name": "tracetrack-causes",
        "rules": [
            alert(
                POSTGRES_DOWN,
                # No instance label: the exporter's view and the app's are one alert.
                # The app's view holds only while its readiness (a `SELECT 1` through the
                # same pool, probed every scrape) fails too: one statement that missed its
                # deadline on a busy host keeps the 1m increase above 0 for a minute, far
                # longer than `for:`, and alone would page as "PostgreSQL down".
                f"max({collector_down}) > 0\nor\n(sum(increase({timeouts}[1m])) > 0"
                f"\nand on ()\nmin({m.APP_READY}) == 0)",
                "30s",
                "critical",
                "PostgreSQL is unreachable or not answering",
                "PostgreSQL did not answer within the scrape deadline for 30 seconds: the"
                " exporter cannot read it and/or the app's requests give up waiting for it"
                " while its readiness check fails"
                ' (value {{ $value | printf "%.0f" }}: 1 when the exporter cannot read it, else'
                " the app's requests that got no answer in the last minute). Users get 503."
                " Error-rate, error-budget, latency and readiness alerts are muted while this"
                " fires: they are this.",
                value='{{ $value | printf "%.0f" }}',
                threshold="exporter cannot read it (1), or app not ready with > 0 no-answer"
                " timeouts in 1m, for 30s",
                dashboard=("tracetrack-system", "Exporter collectors up"),
            ),
            alert(
                APP_NOT_READY,
                # The app's address as `instance`, so that TargetDown (a dead app) mutes it.
                # After PostgreSQL's page (30s), which explains it, and silent for a moment
                # after that: the app's readiness returns a probe (1 s) after the database.
                f'label_replace({m.APP_READY} == 0, "instance", "$1", "app", "(.*)")\n'
                + unless_recently((POSTGRES_DOWN,), "2m"),
                "1m",
                "critical",
                "The app {{ $labels.app }} is running but not ready to serve",
                "GET /readyz on the app {{ $labels.app }} has failed for 1 minute"
                " (tracetrack_app_ready {{ $value }}, probed by the exporter): it answers its"
                " health check but cannot serve requests, users get 503. Its error-rate,"
                " error-budget and latency alerts are muted while this fires.",
                value="ready {{ $value }}",
                threshold="ready == 0 for 1m",
                dashboard=("tracetrack-performance", "Requests per minute by status"),
            ),
            alert(
                REDIS_DOWN,
                f"{m.REDIS_UP} == 0",
                # Before the app's fallback warning (1m), which it mutes.
                "30s",
                "warning",
                "Redis is down: the app serves from its in-process cache",
                "Redis has not answered the exporter {{ $labels.instance }} for 30 seconds"
                " (tracetrack_redis_up {{ $value }}). The app keeps serving from a per-worker"
                " in-process cache: correct but slower, lower hit rate, more database load."
                " The cache-fallback and hit-rate alerts are muted while this fires.",
                value="up {{ $value }}",
                threshold="up == 0 for 30s",
                dashboard=("tracetrack-performance", "Cache backend"),
            ),
        ],
    }
