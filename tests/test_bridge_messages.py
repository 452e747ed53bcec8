"""What each channel sends stays within its limits and leads with the summary."""

from __future__ import annotations

import json

from alert_bridge.messages import (
    DISCORD_EMBED_TOTAL_MAX,
    DISCORD_FIELD_VALUE_MAX,
    SMS_MAX_CHARS,
    build_message,
    discord_payload,
    email_html,
    email_subject,
    slack_payload,
    sms_text,
)
from alert_bridge.payload import parse_payload
from tests.support.bridgekit import am_payload


def message(severity: str = "critical", status: str = "firing", **kw):  # type: ignore[no-untyped-def]
    payload = am_payload(severity=severity, status=status, **kw)
    parsed = parse_payload(json.dumps(payload).encode())
    return build_message(parsed.notification_key(), "alert", severity, status, json.dumps(payload))


def test_sms_leads_with_the_summary_and_fits() -> None:
    m = message(summary="Error rate 7.1% above 5% " + "x" * 500, n_alerts=3)
    text = sms_text(m)
    assert len(text) <= SMS_MAX_CHARS
    assert text.startswith("CRITICAL: HighErrorRate: Error rate 7.1% above 5%")
    short = sms_text(message(summary="Disk 95% full"))
    assert short == (
        "CRITICAL: HighErrorRate: Disk 95% full https://runbooks.example.com/HighErrorRate"
    )
    assert sms_text(message(status="resolved")).startswith("RESOLVED: ")


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
