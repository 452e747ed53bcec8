"""Generates prometheus/tests/security.yml: promtool tests of the security alerts.

    python -m tests.support.security_promtool > prometheus/tests/security.yml

For every row of `common.thresholds.SECURITY`, a steadily rising counter of the app
(two instances, so the sum over replicas is what is compared) held below the warning
limit, between the limits, and above the critical one; each case is judged after its
`for:` and, for the rising case, also before it. The numbers come from the table, so
the tests move with it, and a wrong number in the rules fails them (tests/test_security_rules.py).
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

from common.thresholds import SECURITY, SecurityThreshold
from common.topology import APP_JOB
from tooling.rule_annotations import dashboard_url, runbook_url
from tooling.security_rules import DASHBOARD_UID, SECURITY_PANELS, WINDOW_WORDS

JOB = APP_JOB
INSTANCES = ("10.0.0.1:8000", "10.0.0.2:8000")
INTERVAL_S = 10
SAMPLES = 150  # 25 minutes: every window is full by the time the cases are judged
EVAL = "20m"
# A label value for each `by` label (any known one; the alert carries it).
BY_VALUE = {"scope": "account", "route_class": "login", "kind": "sql"}


def _window_s(t: SecurityThreshold) -> int:
    return int(t.window.removesuffix("m")) * 60


def _per_sample(t: SecurityThreshold, value: float) -> float:
    """The increase per sample of each instance's counter that makes the measurement
    `value` (split evenly between the instances)."""
    per_s = value / 60 if t.measure == "per_minute" else value / _window_s(t)
    return per_s * INTERVAL_S / len(INSTANCES)


def _shown(t: SecurityThreshold, value: float) -> str:
    return f"{value:.1f}" if t.measure == "per_minute" else f"{value:.0f}"


def _labels(t: SecurityThreshold) -> dict[str, str]:
    return {label: BY_VALUE[label] for label in t.by}


def _annotations(t: SecurityThreshold, level: str, value: float) -> dict[str, str]:
    labels = _labels(t)
    where = f" ({', '.join(f'{k} {v}' for k, v in labels.items())})" if labels else ""
    limit = t.human(level)  # type: ignore[arg-type]
    if t.measure == "per_minute":
        amount = f"{_shown(t, value)} per minute over the last {WINDOW_WORDS[t.window]}"
    else:
        amount = f"{_shown(t, value)} in the last {WINDOW_WORDS[t.window]}"
    shown = f"{_shown(t, value)} per minute" if t.measure == "per_minute" else _shown(t, value)
    return {
        "value": shown,
        "threshold": f"{limit}, for {t.for_[level]}",
        "summary": f"{t.title}{where} above the {level} threshold ({limit}) on {JOB}",
        "description": f"{t.title}{where}: {amount}, all instances of {JOB}."
        f" The {level} threshold is {limit}. Recent events and the top offending IPs and"
        " accounts: `tracetrack security events --since 1h` or /analytics/api/security.",
        "runbook_url": runbook_url(t.alert),
        "dashboard_url": dashboard_url(DASHBOARD_UID, SECURITY_PANELS[t.key]),
    }


def _series(t: SecurityThreshold, value: float) -> list[dict[str, str]]:
    step = _per_sample(t, value)
    extra = "".join(f', {k}="{v}"' for k, v in _labels(t).items())
    return [
        {
            "series": f'{t.metric}{{job="{JOB}", instance="{instance}"{extra}}}',
            "values": f"0+{step!r}x{SAMPLES}",
        }
        for instance in INSTANCES
    ]


def _expected(t: SecurityThreshold, levels: tuple[str, ...], value: float) -> list[dict[str, Any]]:
    return [
        {
            "exp_labels": {"severity": level, "job": JOB, **_labels(t)},
            "exp_annotations": _annotations(t, level, value),
        }
        for level in levels
    ]


def _case(t: SecurityThreshold, name: str, value: float, levels: tuple[str, ...]) -> dict[str, Any]:
    return {
        "name": f"{t.alert}: {name} ({_shown(t, value)})",
        "interval": f"{INTERVAL_S}s",
        "input_series": _series(t, value),
        "alert_rule_test": [
            {"eval_time": EVAL, "alertname": t.alert, "exp_alerts": _expected(t, levels, value)}
        ],
    }


def _values(t: SecurityThreshold) -> dict[str, float]:
    """Round numbers on each side of the limits (exactly representable in the output)."""
    return {
        "below": t.warning / 2,
        "between": (t.warning + t.critical) / 2,
        "above": t.critical * 2,
    }


def tests() -> list[dict[str, Any]]:
    out = []
    for t in SECURITY:
        v = _values(t)
        out.append(_case(t, "below the warning limit pages nobody", v["below"], ()))
        out.append(_case(t, "between the limits is a warning", v["between"], ("warning",)))
        out.append(
            _case(t, "above the critical limit pages critical", v["above"], ("warning", "critical"))
        )
        # The rising edge: above both limits from the first samples, so after 20 s (two
        # evaluations) neither `for:` has elapsed: nothing fires yet.
        early = _case(t, "not before its for: has elapsed", v["above"], ())
        early["alert_rule_test"][0]["eval_time"] = "20s"
        out.append(early)
    return out


HEADER = (
    "# Generated by `python -m tests.support.security_promtool > prometheus/tests/security.yml`\n"
    "# from common/thresholds.py SECURITY. Do not edit; tests fail when it is stale.\n"
)


def render() -> str:
    doc = {"rule_files": ["../rules.yml"], "evaluation_interval": "10s", "tests": tests()}
    return HEADER + yaml.safe_dump(doc, sort_keys=False, width=1000, allow_unicode=True)


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
