"""What arrives, as text: every channel says what, where, how bad (value vs threshold),
since when, and links that open on a phone; an SMS is one GSM-7 segment, always."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from alert_bridge import gsm7
from alert_bridge.messages import (
    DISCORD_EMBED_TOTAL_MAX,
    DISCORD_FIELD_VALUE_MAX,
    SMS_MAX_CHARS,
    Message,
    build_message,
    discord_payload,
    email_html,
    email_subject,
    email_text,
    json_payload,
    slack_payload,
    sms_digest,
    sms_text,
)
from alert_bridge.payload import parse_payload
from tests.support import rulealerts
from tests.support.bridgekit import am_payload
from tooling import stackconfig

PAGE = "https://oncall.example.com/n/Q2x8vR4tY7uW1zK3mN5pS6"
# 2030-01-01T00:03:20Z: the bridge accepted it 3m20s after the start.
ACCEPTED = 1893456200.0
LONG_HOST = rulealerts.LONG_HOST


def message(
    severity: str = "critical",
    status: str = "firing",
    value: str = "7.1%",
    threshold: str = "> 5 %",
    page: str = PAGE,
    **kw: Any,
) -> Message:
    payload = am_payload(severity=severity, status=status, **kw)
    for a in payload["alerts"]:
        a["annotations"].update(
            value=value,
            threshold=threshold,
            dashboard_url="https://grafana.example.com/d/tracetrack-performance?viewPanel=8",
        )
        a["labels"]["job"] = "tracetrack-app"
    parsed = parse_payload(json.dumps(payload).encode())
    return build_message(
        parsed.notification_key(),
        "alert",
        severity,
        status,
        json.dumps(payload),
        at=ACCEPTED,
        page_url=page,
    )


def assert_one_segment(text: str) -> None:
    assert gsm7.is_gsm7(text), f"not GSM-7 (would be sent as 70-character UCS-2): {text!r}"
    assert gsm7.length(text) <= SMS_MAX_CHARS, f"{gsm7.length(text)} > 160: {text!r}"


# --- golden samples, per channel ----------------------------------------------------------


def test_sms_firing_value_first_where_since_and_one_link() -> None:
    text = sms_text(message())
    assert text == (
        "CRIT 7.1% (> 5 %) HighErrorRate app-0:8000 since 00:00 UTC "
        "https://oncall.example.com/n/Q2x8vR4tY7uW1zK3mN5pS6"
    )
    assert_one_segment(text)


def test_sms_resolved_says_how_long_and_the_last_value() -> None:
    text = sms_text(message(status="resolved"))
    assert text == (
        "OK HighErrorRate app-0:8000 RESOLVED after 5m00s, last 7.1% "
        "https://oncall.example.com/n/Q2x8vR4tY7uW1zK3mN5pS6"
    )
    assert "is down" not in text and "answered 5xx" not in text  # no firing text


def test_sms_of_a_40_alert_group_with_63_character_hosts_names_count_and_instances() -> None:
    m = message(n_alerts=40, alertname="TraceTrackTargetDown", value="up 0", threshold="== 0")
    m = _with_hosts(m, LONG_HOST)
    text = sms_text(m)
    assert_one_segment(text)
    assert text.startswith("CRIT up 0 (== 0) 40x TargetDown ")
    assert ", +39 since 00:00 UTC" in text and text.endswith(PAGE)


def test_email_subject_leads_with_severity_alert_value_threshold_and_instance() -> None:
    subject = email_subject(message())
    assert subject[:70].startswith("[CRITICAL] FIRING: HighErrorRate 7.1% (> 5 %) app-0:8000")
    assert "\n" not in subject
    resolved = email_subject(message(status="resolved"))
    assert resolved == "[CRITICAL] RESOLVED: HighErrorRate app-0:8000 after 5m00s (last 7.1%)"


def test_email_body_has_value_since_age_and_absolute_links() -> None:
    text = email_text(message())
    assert "Value: 7.1% (threshold > 5 %)" in text
    assert "Where: app-0:8000 (job tracetrack-app)" in text
    assert "since 2030-01-01 00:00:00 UTC (firing 3m20s when notified)" in text
    assert f"Acknowledge / silence: {PAGE}" in text
    dash = re.search(r"Dashboard: (\S+)", text)
    assert dash, text
    q = parse_qs(urlsplit(dash.group(1)).query)
    # Grafana opens an hour before the start, to 15 minutes after the notification.
    assert q["from"] == ["1893452400000"] and q["to"] == ["1893457100000"]
    assert q["var-instance"] == ["app-0:8000"] and q["viewPanel"] == ["8"]
    for url in re.findall(r"https?://\S+", text):
        assert urlsplit(url).scheme in ("http", "https") and urlsplit(url).netloc, url
    resolved = email_text(message(status="resolved"))
    assert "RESOLVED after 5m00s" in resolved
    assert "from 2030-01-01 00:00:00 UTC to 2030-01-01 00:05:00 UTC" in resolved
    assert "Last value: 7.1%" in resolved


def test_slack_has_value_a_context_block_with_the_time_and_buttons() -> None:
    payload = slack_payload(message())
    blocks = payload["attachments"][0]["blocks"]
    section = next(b for b in blocks if b["type"] == "section")
    assert "*7.1% (threshold > 5 %)*" in section["text"]["text"]
    context = [b for b in blocks if b["type"] == "context"][-1]
    assert "since 2030-01-01 00:00:00 UTC" in context["elements"][0]["text"]
    actions = next(b for b in blocks if b["type"] == "actions")
    buttons = {e["text"]["text"]: e["url"] for e in actions["elements"]}
    assert buttons["Acknowledge / silence"] == PAGE
    assert buttons["Runbook"].startswith("https://")
    assert buttons["Dashboard"].startswith("https://grafana.example.com/d/")


def test_discord_has_a_timestamp_and_link_fields() -> None:
    embed = discord_payload(message())["embeds"][0]
    assert embed["timestamp"] == "2030-01-01T00:00:00+00:00"
    assert embed["url"] == PAGE
    field = embed["fields"][0]["value"]
    assert "**7.1% (threshold > 5 %)**" in field and "since 00:00 UTC" in field
    assert "[Runbook](https://runbooks.example.com/HighErrorRate)" in field
    assert "[Dashboard](https://grafana.example.com/d/" in field
    resolved = discord_payload(message(status="resolved"))["embeds"][0]
    assert resolved["timestamp"] == "2030-01-01T00:05:00+00:00"  # when it ended


def test_json_carries_times_and_the_page() -> None:
    body = json_payload(message())
    assert body["page_url"] == PAGE and body["started_at"] == "2030-01-01T00:00:00+00:00"
    assert "from=" in body["alerts"][0]["dashboard_url"]


def test_the_dead_mans_switch_page_fits_one_segment_and_names_the_part() -> None:
    body = {
        "last_heartbeat": ACCEPTED - 54,
        "timeout_seconds": 60,
        "silent_seconds": 54,
        "runbook_url": "https://oncall.example.com/runbook#watchdog",
        "findings": [
            {
                "component": "Prometheus",
                "url": f"http://{LONG_HOST}:9090",
                "healthy": False,
                "detail": "connection refused (not running?)",
            },
            {"component": "Alertmanager", "url": "http://am:9093", "healthy": True, "detail": ""},
        ],
    }
    m = build_message("k" * 64, "watchdog", "critical", "missing", json.dumps(body))
    text = sms_text(m)
    assert_one_segment(text)
    assert text.startswith("CRIT Prometheus down") and text.endswith("/runbook#watchdog")
    assert "NO HEARTBEAT: Prometheus down" in email_subject(m)


# --- every shipped rule -----------------------------------------------------------------


def _rule_message(rule: dict[str, Any], n: int, kind: str, status: str) -> Message:
    body = rulealerts.payload_for(rule, n, status)
    if kind == "reminder":  # as alert_bridge/repage.py stores it: 45 minutes on
        body["_reminder"] = {"number": 3, "firing_since": ACCEPTED - 200, "at": ACCEPTED + 2500}
    return build_message(
        "k" * 64,
        kind,
        rule["labels"]["severity"],
        status,
        json.dumps(body),
        at=ACCEPTED,
        page_url=PAGE,
    )


def test_the_rules_cover_every_family() -> None:
    """The loop below sees every rule family others added (security, SLO, causes, ...)."""
    rules = rulealerts.shipped_alert_rules()
    groups = yaml.safe_load(stackconfig.render_rules())["groups"]
    families = {g["name"] for g in groups if any("alert" in r for r in g["rules"])}
    assert {
        "tracetrack-thresholds",
        "tracetrack-availability",
        "tracetrack-causes",
        "tracetrack-security",
        "tracetrack-slo",
    } <= families, families
    assert len([r for r in rules if r["labels"]["severity"] == "critical"]) >= 9


@pytest.mark.parametrize(
    ("kind", "status"), [("alert", "firing"), ("alert", "resolved"), ("reminder", "firing")]
)
@pytest.mark.parametrize("n", [1, 40])
def test_every_shipped_rule_gives_one_gsm7_segment(n: int, kind: str, status: str) -> None:
    for rule in rulealerts.shipped_alert_rules():
        if kind == "reminder" and rule["labels"]["severity"] != "critical":
            continue  # only critical groups are reminded
        m = _rule_message(rule, n, kind, status)
        text = sms_text(m)
        assert_one_segment(text)
        assert text.endswith(PAGE), (rule["alert"], text)
        if status == "firing" and "value" in rule["annotations"]:
            assert m.alerts[0].value in text or text.count("..") == 1, (rule["alert"], text)
        if kind == "reminder":
            assert "REMINDER" in text and "45m00s" in text, text
        if n > 1:
            assert f"{n}x " in text and f", +{n - 1}" in text, (rule["alert"], text)
        # Every channel names the value and the instance.
        subject = email_subject(m)
        assert m.alerts[0].instance[:20] in subject, (rule["alert"], subject)
        # The digest a phone gets once its budget is spent fits too, link last.
        digest = sms_digest(m)
        assert_one_segment(digest)
        assert digest.endswith(PAGE) and "SMS limit reached (3 per 10 min)" in digest


# --- limits -------------------------------------------------------------------------------


def test_discord_embed_stays_within_discords_limits() -> None:
    m = message(n_alerts=60, summary="s" * 3000)
    payload = discord_payload(m)
    embed = payload["embeds"][0]
    assert len(payload["content"]) <= 2000
    assert len(embed["title"]) <= 256 and len(embed["description"]) <= 4096
    assert len(embed["fields"]) <= 25
    assert all(len(f["value"]) <= DISCORD_FIELD_VALUE_MAX for f in embed["fields"])
    total = (
        len(embed["title"])
        + len(embed["description"])
        + len(embed["footer"]["text"])
        + sum(len(f["name"]) + len(f["value"]) for f in embed["fields"])
    )
    assert total <= DISCORD_EMBED_TOTAL_MAX
    assert "more alerts" in embed["footer"]["text"]


def test_slack_colour_follows_severity_and_resolution() -> None:
    colours = {
        sev: slack_payload(message(sev))["attachments"][0]["color"]
        for sev in ("critical", "warning", "info")
    }
    assert colours == {"critical": "#d0021b", "warning": "#f5a623", "info": "#4a90e2"}
    assert slack_payload(message(status="resolved"))["attachments"][0]["color"] == "#2eb67d"
    blocks = slack_payload(message(n_alerts=40))["attachments"][0]["blocks"]
    assert len(blocks) <= 50
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section")


def test_email_escapes_alert_text_in_html() -> None:
    m = message(summary="<script>alert(1)</script>\nsecond line")
    assert "<script>" not in email_html(m)
    assert "&lt;script&gt;" in email_html(m)
    assert "\n" not in email_subject(m) and len(email_subject(m)) <= 200


def test_text_outside_gsm7_is_spelled_out_not_sent_as_ucs2() -> None:
    m = message(value="≥ 5…", summary="Überlast – “quoted” 🚨")
    text = sms_text(m)
    assert_one_segment(text)
    assert ">= 5..." in text


def _with_hosts(m: Message, host: str) -> Message:
    from dataclasses import replace

    alerts = [
        replace(a, labels={**a.labels, "instance": f"{i:02d}-{host}"[:63]})
        for i, a in enumerate(m.alerts)
    ]
    return replace(m, alerts=alerts)
