"""Alertmanager webhooks for the shipped alerting rules, as Prometheus would fill them:
every rule of prometheus/rules.yml (every family: thresholds, availability, delivery,
maintenance, causes, security, SLO) with its annotations' templates expanded, worst
case: every label a template reads is a 63-character value, every `$value` a long
number, the longer branch of an `if`.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import yaml

from tooling import stackconfig

LONG_HOST = "db-primary-replica-01.eu-west-3.prod.tracetrack-logistics.co.uk"[:63]
STARTS_AT = "2030-01-01T00:00:00Z"
ENDS_AT = "2030-01-01T00:05:00Z"

# How Prometheus' template functions print a value, long rather than short.
_FUNCTIONS = {
    "humanizePercentage": "12.3456%",
    "humanizeDuration": "1d 2h 3m 4s",
    "humanizeTimestamp": "2030-01-01 00:00:00 +0000 UTC",
    "humanize": "1.235k",
}


def _value(action: str) -> str:
    for name, shown in _FUNCTIONS.items():
        if name in action:
            return shown
    return "123456.789" if "printf" not in action else "123457"


def label_value(name: str, i: int = 0) -> str:
    """A worst-case (63-character) value for a label a template reads."""
    return f"{i:02d}-{name}-{LONG_HOST}"[:63]


_IF = re.compile(r"\{\{\s*if [^}]*\}\}(.*?)\{\{\s*else\s*\}\}(.*?)\{\{\s*end\s*\}\}", re.S)


def expand(template: str, labels: dict[str, str]) -> str:
    """A Prometheus annotation template filled in: labels, `$value` through its
    function, and of an `if ... else ... end` the longer branch."""

    def simple(text: str) -> str:
        text = re.sub(r"\{\{\s*\$labels\.(\w+)\s*\}\}", lambda m: labels[m[1]], text)
        text = re.sub(r"\{\{[^}]*\$value[^}]*\}\}", lambda m: _value(m[0]), text)
        return re.sub(r"\{\{[^}]*\}\}", "", text)

    return simple(_IF.sub(lambda m: max(simple(m[1]), simple(m[2]), key=len), template))


def shipped_alert_rules(rules_text: str | None = None) -> list[dict[str, Any]]:
    """Every alerting rule, from `rules_text` (default: the shipped file as it is)."""
    doc = yaml.safe_load(rules_text if rules_text is not None else stackconfig.render_rules())
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


def rule_labels(rule: dict[str, Any], i: int = 0) -> dict[str, str]:
    """The labels of one alert of `rule`: its own, job/instance, and every label its
    annotations read, at their longest."""
    read = set(re.findall(r"\$labels\.(\w+)", yaml.safe_dump(rule.get("annotations", {}))))
    labels = {name: label_value(name, i) for name in read | {"instance", "job"}}
    return {**labels, **rule.get("labels", {}), "alertname": rule["alert"]}


def payload_for(
    rule: dict[str, Any],
    n: int = 1,
    status: str = "firing",
    generator_base: str = "http://127.0.0.1:9090",
    external_url: str = "http://127.0.0.1:9093",
) -> dict[str, Any]:
    """The webhook Alertmanager posts for a group of `n` alerts of `rule`."""
    severity = rule["labels"]["severity"]
    alerts: list[dict[str, Any]] = []
    for i in range(n):
        labels = rule_labels(rule, i)
        fp = hashlib.sha256(repr(sorted(labels.items())).encode()).hexdigest()[:16]
        alerts.append(
            {
                "status": status,
                "labels": labels,
                "annotations": {k: expand(v, labels) for k, v in rule["annotations"].items()},
                "startsAt": STARTS_AT,
                "endsAt": ENDS_AT if status == "resolved" else "0001-01-01T00:00:00Z",
                "generatorURL": f"{generator_base}/graph?g0.expr=up&g0.tab=1",
                "fingerprint": fp,
            }
        )
    group = {"alertname": rule["alert"], "job": rule_labels(rule)["job"]}
    return {
        "version": "4",
        "groupKey": f'{{}}/{{severity="{severity}"}}:{group}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": f"bridge-{severity}",
        "groupLabels": group,
        "commonLabels": {"alertname": rule["alert"], "severity": severity},
        "commonAnnotations": {},
        "externalURL": external_url,
        "alerts": alerts,
    }
