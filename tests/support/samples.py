"""The notification samples docs/alert-bridge.md shows, rendered by the real code from one
realistic notification; tests/test_bridge_samples.py fails when the page is stale.

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
    slack_payload,
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


def message(status: str = "firing") -> Message:
    return build_message(
        KEY, "alert", "critical", status, json.dumps(_payload(status)), ACCEPTED, PAGE
    )


def samples() -> dict[str, str]:
    firing, resolved = message(), message("resolved")
    return {
        "sms": sms_text(firing) + "\n" + sms_text(resolved),
        "email": f"Subject: {email_subject(firing)}\n\n{email_text(firing)}",
        "email-resolved": f"Subject: {email_subject(resolved)}\n\n{email_text(resolved)}",
        "slack": json.dumps(slack_payload(firing), indent=2, ensure_ascii=False),
        "discord": json.dumps(discord_payload(firing), indent=2, ensure_ascii=False),
    }


def section() -> str:
    out = []
    for name, text in samples().items():
        lang = "json" if name in ("slack", "discord") else "text"
        out.append(f"<!-- sample: {name} -->\n```{lang}\n{text}\n```\n")
    return "\n".join(out)


if __name__ == "__main__":
    print(section())
