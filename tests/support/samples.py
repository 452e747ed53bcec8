"""The notification samples docs/alert-bridge.md shows, rendered by the real code from one
realistic notification (firing, resolved, its reminder, the digest of a spent SMS budget)
and one dead man's switch page; tests/test_bridge_samples.py fails when the page is stale
and checks what each sample says.

    .venv/bin/python -m tests.support.samples   # prints the samples section
"""

from __future__ import annotations

import json
from typing import Any

from alert_bridge.messages import (
    Message,
    build_message,
    discord_payload,
    email_subject,
    email_text,
    json_payload,
    slack_payload,
    sms_digest,
    sms_text,
)

PUBLIC = "https://oncall.example.com"
GRAFANA = "https://grafana.example.com"
PAGE = f"{PUBLIC}/n/Q2x8vR4tY7uW1zK3mN5pS6"
KEY = "3f6c1e0b9a2d4c8e7f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70"
ACCEPTED = 1893456200.0  # 2030-01-01 00:03:20 UTC


def _payload(status: str) -> dict[str, Any]:
    instance = "app-1.prod.example.com:8000"
    return {
        "version": "4",
        "groupKey": '{}/{severity="critical"}:{alertname="TraceTrackErrorRateHigh", job="tracetrack-app"}',
        "status": status,
        "receiver": "bridge-critical",
        "groupLabels": {"alertname": "TraceTrackErrorRateHigh", "job": "tracetrack-app"},
        "externalURL": "https://alertmanager.example.com",
        "alerts": [
            {
                "status": status,
                "labels": {
                    "alertname": "TraceTrackErrorRateHigh",
                    "severity": "critical",
                    "job": "tracetrack-app",
                    "instance": instance,
                },
                "annotations": {
                    "summary": f"Error rate above the critical threshold (> 5 %) on {instance}",
                    "description": "7.1% of HTTP requests over the last 5 minutes answered 5xx"
                    f" on {instance} (checked only above 0.5 requests/s). The critical"
                    " threshold is > 5 %.",
                    "value": "7.1%",
                    "threshold": "> 5 %",
                    "runbook_url": f"{PUBLIC}/runbook#tracetrackerrorratehigh",
                    "dashboard_url": f"{GRAFANA}/d/tracetrack-performance?viewPanel=8",
                },
                "startsAt": "2030-01-01T00:00:00Z",
                "endsAt": "2030-01-01T00:07:10Z"
                if status == "resolved"
                else "0001-01-01T00:00:00Z",
                "generatorURL": "https://prometheus.example.com/graph?g0.expr=...",
                "fingerprint": "a1b2c3d4e5f60718",
            }
        ],
    }


def message(status: str = "firing", kind: str = "alert") -> Message:
    body = _payload(status)
    if kind == "reminder":  # as alert_bridge/repage.py stores it: the third, 45 min on
        body["_reminder"] = {"number": 3, "firing_since": ACCEPTED - 200, "at": ACCEPTED + 2500}
    return build_message(KEY, kind, "critical", status, json.dumps(body), ACCEPTED, PAGE)


def dead_mans_switch() -> Message:
    """The page the bridge sends when heartbeats stop and Prometheus does not answer."""
    body = {
        "last_heartbeat": ACCEPTED - 54,
        "timeout_seconds": 60,
        "silent_seconds": 54,
        "runbook_url": f"{PUBLIC}/runbook#watchdog",
        "findings": [
            {
                "component": "Prometheus",
                "url": "http://prometheus.prod.example.com:9090",
                "healthy": False,
                "detail": "connection refused (not running?)",
            },
            {
                "component": "Alertmanager",
                "url": "http://alertmanager.prod.example.com:9093",
                "healthy": True,
                "detail": "",
            },
        ],
    }
    return build_message("d" * 64, "watchdog", "critical", "missing", json.dumps(body))


def samples() -> dict[str, str]:
    firing, resolved, reminder = message(), message("resolved"), message(kind="reminder")
    dms = dead_mans_switch()
    return {
        "sms": sms_text(firing) + "\n" + sms_text(resolved),
        "email": f"Subject: {email_subject(firing)}\n\n{email_text(firing)}",
        "email-resolved": f"Subject: {email_subject(resolved)}\n\n{email_text(resolved)}",
        "slack": json.dumps(slack_payload(firing), indent=2, ensure_ascii=False),
        "discord": json.dumps(discord_payload(firing), indent=2, ensure_ascii=False),
        "json": json.dumps(json_payload(firing), indent=2, ensure_ascii=False),
        "reminder": f"SMS: {sms_text(reminder)}\nEmail subject: {email_subject(reminder)}",
        "sms-digest": sms_digest(firing),
        "dead-mans-switch": f"SMS: {sms_text(dms)}\n\nSubject: {email_subject(dms)}\n\n"
        + email_text(dms),
    }


def section() -> str:
    out = []
    for name, text in samples().items():
        lang = "json" if name in ("slack", "discord", "json") else "text"
        out.append(f"<!-- sample: {name} -->\n```{lang}\n{text}\n```\n")
    return "\n".join(out)


if __name__ == "__main__":
    print(section())
