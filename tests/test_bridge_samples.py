"""docs/alert-bridge.md's notification samples are what the code sends today."""

from __future__ import annotations

import re

from alert_bridge import gsm7
from alert_bridge.messages import SMS_MAX_CHARS
from tests.support.samples import GRAFANA, PAGE, PUBLIC, samples
from tooling.checkout import ROOT

DOC = ROOT / "docs" / "alert-bridge.md"


def test_the_documented_samples_are_current() -> None:
    text = DOC.read_text()
    found = dict(re.findall(r"<!-- sample: ([\w-]+) -->\n```\w*\n(.*?)\n```", text, re.S))
    expected = samples()
    assert set(found) == set(expected), "run: .venv/bin/python -m tests.support.samples"
    for name, body in expected.items():
        assert found[name] == body, (
            f"docs/alert-bridge.md sample {name!r} is stale: .venv/bin/python -m"
            " tests.support.samples"
        )


def test_every_sample_says_what_where_how_bad_since_when_with_working_links() -> None:
    s = samples()
    instance = "app-1.prod.example.com:8000"
    for name in ("email", "slack", "discord", "json"):
        for part in ("7.1%", "> 5 %", instance, PAGE, f"{PUBLIC}/runbook#tracetrackerrorratehigh"):
            assert part in s[name], (name, part)
        assert "2030-01-01" in s[name] and f"{GRAFANA}/d/" in s[name], name
    firing_sms, resolved_sms = s["sms"].split("\n")
    assert firing_sms == f"CRIT 7.1% (> 5 %) ErrorRateHigh {instance} since 00:00 UTC {PAGE}"
    assert f"{instance} RESOLVED after 7m10s" in resolved_sms and resolved_sms.endswith(PAGE)
    assert (
        "RESOLVED after 7m10s" in s["email-resolved"] and "Last value: 7.1%" in s["email-resolved"]
    )
    # The reminder says so, how long and unacknowledged, and still names where in full.
    sms, subject = s["reminder"].split("\n")
    assert sms.startswith("SMS: CRIT REMINDER 45m00s unacked: 7.1% ErrorRateHigh " + instance)
    assert subject.endswith("still firing for 45m00s, not acknowledged") and "7.1%" in subject
    assert s["sms-digest"].endswith(f"Latest: ErrorRateHigh 7.1% {PAGE}")
    # The dead man's switch names the broken part, the address it probed, and the runbook.
    dms = s["dead-mans-switch"]
    assert dms.startswith("SMS: CRIT Prometheus down") and "prometheus.prod.example.com" in dms
    assert "Subject: [CRITICAL] NO HEARTBEAT: Prometheus down" in dms
    assert f"Runbook: {PUBLIC}/runbook#watchdog" in dms
    for text in (firing_sms, resolved_sms, sms.removeprefix("SMS: "), s["sms-digest"]):
        assert gsm7.is_gsm7(text) and gsm7.length(text) <= SMS_MAX_CHARS, text
    assert dms.split("\n")[0].endswith("/runbook#watchdog")
