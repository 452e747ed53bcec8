"""Generates the promtool unit tests of the SLO burn-rate alerts from common/slo.py.

    python -m tests.support.promtool_slo > prometheus/tests/slo.yml

For every line of the burn-rate table: a steady burn just past its factor fires it
(after its `for:`), a steady burn just under it does not; the alerts of the other
lines fire exactly where their own factor is passed. Two scenarios show the two
windows at work: a burn that stopped leaves the page as soon as its short window is
clean, and an app that misses scrapes (no requests at all) pages on its down time
alone when it flaps too fast for TargetDown, and not when TargetDown paged it.
"""

from __future__ import annotations

import sys
from typing import Any

from common import metric_names as m
from common import slo
from common.topology import APP_JOB
from tests.support import promtool_file
from tooling import slo_rules
from tooling.cause_rules import TARGET_DOWN
from tooling.stackconfig import duration_seconds

EVAL = 60  # seconds; coarse enough for 3-day windows, fine enough for `for: 2m`
PER_MINUTE = 1000  # requests per minute in every test
APP = {"job": APP_JOB, "instance": "127.0.0.1:8000"}
LONGEST_FOR = max(int(duration_seconds(a.for_)) for a in slo.BURN_RATE_ALERTS)
SAMPLES = LONGEST_FOR // EVAL + 10


def _labels(extra: dict[str, str]) -> str:
    return ", ".join(f'{k}="{v}"' for k, v in {**APP, **extra}.items())


def requests(status: str, values: str) -> dict[str, str]:
    labels = _labels({"method": "GET", "route": "/api/bags/{qr_id}", "status": status})
    return {"series": f"{m.HTTP_REQUESTS}{{{labels}}}", "values": values}


def up(values: str) -> dict[str, str]:
    return {"series": f"up{{{_labels({})}}}", "values": values}


def steady(burn: float) -> list[dict[str, str]]:
    """PER_MINUTE requests a minute, burn x the allowed share of them 5xx."""
    bad = burn * slo.BUDGET * PER_MINUTE
    return [
        requests("500", f"0+{bad:g}x{SAMPLES}"),
        requests("200", f"0+{PER_MINUTE - bad:g}x{SAMPLES}"),
        up(f"1x{SAMPLES}"),
    ]


def expected(alert: slo.BurnRateAlert, burn: float) -> dict[str, Any]:
    rule = next(
        r
        for g in slo_rules.slo_groups()
        for r in g["rules"]
        if r.get("alert") and r["labels"]["long_window"] == alert.long
    )
    shown = f"{burn:.1f}"
    return {
        "exp_labels": {**rule["labels"], "job": APP_JOB},
        "exp_annotations": {
            k: v.replace('{{ $value | printf "%.1f" }}', shown)
            for k, v in rule["annotations"].items()
        },
    }


def check(at: int, alerts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"eval_time": f"{at}s", "alertname": slo_rules.ALERT, "exp_alerts": alerts}


def steady_tests() -> list[dict[str, Any]]:
    # Every `for:` has passed: the first rate needs two samples (EVAL), then the longest for.
    late = EVAL + LONGEST_FOR + EVAL
    tests = []
    for line in slo.BURN_RATE_ALERTS:
        for side, burn in (("just under", line.factor * 0.9), ("just past", line.factor * 1.1)):
            firing = [a for a in slo.BURN_RATE_ALERTS if burn > a.factor]
            tests.append(
                {
                    "name": f"A steady burn of {burn:g} ({side} {line.factor:g}):"
                    f" {', '.join(f'{a.long}/{a.short}' for a in firing) or 'nothing'} fires",
                    "interval": f"{EVAL}s",
                    "input_series": steady(burn),
                    "alert_rule_test": [check(late, [expected(a, burn) for a in firing])],
                }
            )
    return tests


def for_test() -> dict[str, Any]:
    page = slo.BURN_RATE_ALERTS[0]
    burn = page.factor * 1.1
    fires_at = EVAL + int(duration_seconds(page.for_))
    return {
        "name": f"A fast burn pages only after {page.for_}",
        "interval": f"{EVAL}s",
        "input_series": steady(burn),
        "alert_rule_test": [
            check(fires_at - EVAL, []),
            check(fires_at, [expected(page, burn)]),
        ],
    }


def stopped_burn_test() -> dict[str, Any]:
    """Burn 20 for an hour, then clean: the 1h/5m page leaves once 5 clean minutes
    are in its short window, while the 6h/30m page (short window still burning) and
    the 1d/2h ticket (its for: passed at 61m) stay."""
    page, slow_page, ticket, _ = slo.BURN_RATE_ALERTS
    bad = 20 * slo.BUDGET * PER_MINUTE
    series = [
        requests("500", f"0+{bad:g}x60 {60 * bad:g}x30"),
        requests(
            "200",
            f"0+{PER_MINUTE - bad:g}x60 {60 * (PER_MINUTE - bad) + PER_MINUTE:g}+{PER_MINUTE}x30",
        ),
        up("1x90"),
    ]
    # At 66m: 1200 errors of 66,000 requests in both 6h and 1d windows: burn 18.2.
    later = 1200 / 66_000 / slo.BUDGET
    return {
        "name": "A burn that stopped leaves the fast page after its 5m window is clean",
        "interval": f"{EVAL}s",
        "input_series": series,
        "alert_rule_test": [
            check(60 * 60, [expected(page, 20), expected(slow_page, 20)]),
            check(66 * 60, [expected(slow_page, later), expected(ticket, later)]),
        ],
    }


def flapping_test() -> dict[str, Any]:
    """From 61m the app misses every other scrape (no requests at all): too fast for
    TargetDown (up == 0 for 30s: never two evaluations in a row), yet the down time
    alone burns the budget and pages after the page's for:."""
    page = slo.BURN_RATE_ALERTS[0]
    series = [
        requests("200", f"0+{PER_MINUTE}x60 _x20"),
        up("1x60 " + "0 1 " * 10),
    ]
    fires_at = 61 * 60 + int(duration_seconds(page.for_))
    # At 66m the 1h window [6m, 66m] holds 61 samples of up, 3 of them 0 (61m, 63m,
    # 65m; Prometheus 2 ranges include both ends).
    burn = (3 / 61) / slo.BUDGET
    return {
        "name": "An app that flaps too fast for TargetDown pages on its down time alone",
        "interval": f"{EVAL}s",
        "input_series": series,
        "alert_rule_test": [
            check(60 * 60, []),
            check(fires_at - EVAL, []),
            check(66 * 60, [expected(page, burn)]),
            {"eval_time": f"{66 * 60}s", "alertname": TARGET_DOWN, "exp_alerts": []},
        ],
    }


def down_test() -> dict[str, Any]:
    """The app stops answering scrapes from 61m to 70m: TargetDown pages that, and the
    budget it burns does not page again, neither while it is down nor after it is back
    (its short window still holds the down time): one fault, one page."""
    series = [
        requests("200", f"0+{PER_MINUTE}x60 _x16"),
        up("1x60 0x10 1x6"),
    ]
    return {
        "name": "An app that is down is TargetDown's page, not a second one for its budget",
        "interval": f"{EVAL}s",
        "input_series": series,
        "alert_rule_test": [check(66 * 60, []), check(74 * 60, [])],
    }


def tests_document() -> dict[str, Any]:
    tests = [*steady_tests(), for_test(), stopped_burn_test(), flapping_test(), down_test()]
    return {"rule_files": ["../rules.yml"], "evaluation_interval": f"{EVAL}s", "tests": tests}


def render() -> str:
    return promtool_file.render(
        "tests.support.promtool_slo", "prometheus/tests/slo.yml", "common/slo.py", tests_document()
    )


if __name__ == "__main__":
    sys.stdout.write(render())
