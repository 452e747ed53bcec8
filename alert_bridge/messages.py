"""Turn a stored notification into what each channel sends.

One `Message` per notification; each channel renders it within its own limits
(SMS length, Slack block text, Discord embed sizes). Rendering is a pure function
of the stored body, so a retried delivery sends the same text.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SEVERITY_COLOURS = {"critical": 0xD0021B, "warning": 0xF5A623, "info": 0x4A90E2}
RESOLVED_COLOUR = 0x2EB67D

# SMS: two concatenated GSM-7 segments; longer bodies cost more and arrive split.
SMS_MAX_CHARS = 306
SLACK_TEXT_MAX = 3000
SLACK_MAX_ALERT_BLOCKS = 20
DISCORD_CONTENT_MAX = 2000
DISCORD_TITLE_MAX = 256
DISCORD_DESCRIPTION_MAX = 4096
DISCORD_FIELDS_MAX = 25
DISCORD_FIELD_NAME_MAX = 256
DISCORD_FIELD_VALUE_MAX = 1024
DISCORD_EMBED_TOTAL_MAX = 6000


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


@dataclass(frozen=True)
class AlertLine:
    name: str
    status: str
    summary: str
    description: str
    labels: dict[str, str]
    starts_at: str
    ends_at: str
    runbook_url: str
    generator_url: str


@dataclass(frozen=True)
class Message:
    key: str
    kind: str  # alert | watchdog
    severity: str
    status: str  # firing | resolved | missing | recovered
    title: str
    alerts: list[AlertLine] = field(default_factory=list)
    external_url: str = ""
    note: str = ""  # watchdog text
    runbook_url: str = ""  # the message's own runbook link (watchdog)

    @property
    def resolved(self) -> bool:
        return self.status in ("resolved", "recovered")

    @property
    def headline(self) -> str:
        state = {
            "firing": "FIRING",
            "resolved": "RESOLVED",
            "missing": "NO HEARTBEAT",
            "recovered": "RECOVERED",
        }[self.status]
        count = f" ({len(self.alerts)} alerts)" if len(self.alerts) > 1 else ""
        return f"[{self.severity.upper()}] {state}: {self.title}{count}"

    @property
    def summary(self) -> str:
        if self.note:
            return self.note
        first = self.alerts[0] if self.alerts else None
        return (first.summary or first.description or first.name) if first else self.title

    @property
    def colour(self) -> int:
        return RESOLVED_COLOUR if self.resolved else SEVERITY_COLOURS.get(self.severity, 0x999999)


def from_payload(key: str, severity: str, body: dict[str, Any]) -> Message:
    alerts = [
        AlertLine(
            name=a.get("labels", {}).get("alertname", "alert"),
            status=a.get("status", ""),
            summary=a.get("annotations", {}).get("summary", ""),
            description=a.get("annotations", {}).get("description", ""),
            labels=dict(a.get("labels", {})),
            starts_at=a.get("startsAt", ""),
            ends_at=a.get("endsAt", ""),
            runbook_url=a.get("annotations", {}).get("runbook_url", ""),
            generator_url=a.get("generatorURL", ""),
        )
        for a in body.get("alerts", [])
    ]
    names = sorted({a.name for a in alerts})
    title = body.get("groupLabels", {}).get("alertname") or ", ".join(names) or "alert"
    return Message(
        key=key,
        kind="alert",
        severity=severity,
        status=body["status"],
        title=title,
        alerts=alerts,
        external_url=body.get("externalURL", ""),
    )


def _duration(seconds: float) -> str:
    """7m10s, 2h05m, 45s: short enough for an SMS, exact enough to act on."""
    total = max(0, int(round(seconds)))
    h, rest = divmod(total, 3600)
    m, sec = divmod(rest, 60)
    if h:
        return f"{h}h{m:02d}m"
    if m:
        return f"{m}m{sec:02d}s"
    return f"{sec}s"


def _broken(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in body.get("findings", []) if not f.get("healthy")]


def watchdog_title(event: str, body: dict[str, Any]) -> str:
    """What broke, in words: the component the probe found down, when it found one."""
    if event != "missing":
        return "Alerting pipeline recovered"
    broken = [f["component"] for f in _broken(body)]
    if broken:
        return f"{' and '.join(broken)} down: alerts are not being sent"
    return "No alert heartbeat: alerts may not reach anyone"


def watchdog_message(key: str, event: str, body: dict[str, Any]) -> Message:
    last = body.get("last_heartbeat")
    last_txt = _ts(last) if last else "never"
    runbook = str(body.get("runbook_url", ""))
    if event == "missing":
        silent = float(body.get("silent_seconds") or body.get("timeout_seconds") or 0)
        broken = _broken(body)
        if broken:
            what = "; ".join(f"{f['component']} {f['url']} {f['detail']}" for f in broken)
            note = (
                f"{what}. No Watchdog heartbeat for {_duration(silent)} (last: {last_txt}):"
                " no alert is evaluated or routed until it is back."
            )
        else:
            healthy = ", ".join(f"{f['component']}" for f in body.get("findings", []))
            note = (
                f"No Watchdog heartbeat for {_duration(silent)} (last: {last_txt})"
                + (f" although {healthy} answer their health checks" if healthy else "")
                + ": check the Watchdog rule, Alertmanager's route and token to the bridge."
            )
        if body.get("outbox_error"):
            note += f" Sent bypassing the bridge's outbox, which cannot be written: {body['outbox_error']}."
    else:
        since = body.get("missing_since")
        lasted = f" after {_duration(float(last) - float(since))}" if last and since else ""
        note = (
            f"Watchdog heartbeats resumed at {last_txt}{lasted}"
            f" (silent since {_ts(since) if since else 'unknown'}); the alerting pipeline is back."
        )
    return Message(
        key=key,
        kind="watchdog",
        severity="critical",
        status=event,
        title=watchdog_title(event, body),
        note=note,
        runbook_url=runbook,
    )


def build_message(key: str, kind: str, severity: str, status: str, body_json: str) -> Message:
    body = json.loads(body_json)
    if kind == "watchdog":
        return watchdog_message(key, status, body)
    return from_payload(key, severity, body)


def _ts(value: float | str) -> str:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def _interesting_labels(labels: dict[str, str]) -> str:
    skip = {"alertname", "severity"}
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in skip)


# --- email ---------------------------------------------------------------------------


def email_subject(m: Message) -> str:
    text = f"{m.headline} - {m.summary}" if m.summary != m.title else m.headline
    # A header must be one line; annotations often are not.
    return clip(" ".join(text.split()), 200)


def email_text(m: Message) -> str:
    out = [m.headline, ""]
    if m.note:
        out += [m.note, ""]
    for a in m.alerts:
        out.append(f"* {a.name} [{a.status}]")
        if a.summary:
            out.append(f"  Summary: {a.summary}")
        if a.description:
            out.append(f"  Description: {a.description}")
        if a.labels:
            out.append(f"  Labels: {_interesting_labels(a.labels)}")
        out.append(f"  Started: {a.starts_at}")
        if a.status == "resolved" and a.ends_at:
            out.append(f"  Ended: {a.ends_at}")
        if a.runbook_url:
            out.append(f"  Runbook: {a.runbook_url}")
        if a.generator_url:
            out.append(f"  Source: {a.generator_url}")
        out.append("")
    if m.external_url:
        out.append(f"Alertmanager: {m.external_url}")
    out.append(f"Notification {m.key[:12]} sent by the TraceTrack alert bridge.")
    return "\n".join(out)


def email_html(m: Message) -> str:
    e = html.escape
    colour = f"#{m.colour:06x}"
    rows = []
    for a in m.alerts:
        links = " · ".join(
            f'<a href="{e(url)}">{label}</a>'
            for label, url in (("Runbook", a.runbook_url), ("Source", a.generator_url))
            if url
        )
        rows.append(
            "<tr><td style='padding:8px;border-top:1px solid #ddd'>"
            f"<b>{e(a.name)}</b> <small>[{e(a.status)}]</small><br>"
            f"{e(a.summary)}<br><small>{e(a.description)}</small><br>"
            f"<small>{e(_interesting_labels(a.labels))} · started {e(a.starts_at)}</small><br>"
            f"{links}</td></tr>"
        )
    note = f"<p>{e(m.note)}</p>" if m.note else ""
    return (
        "<html><body style='font-family:sans-serif'>"
        f"<h2 style='color:{colour};margin:0 0 8px'>{e(m.headline)}</h2>{note}"
        f"<table style='border-collapse:collapse;width:100%'>{''.join(rows)}</table>"
        f"<p><small>Notification {e(m.key[:12])} sent by the TraceTrack alert bridge."
        "</small></p></body></html>"
    )


# --- SMS -----------------------------------------------------------------------------


def sms_text(m: Message, limit: int = SMS_MAX_CHARS) -> str:
    """Summary first: a truncated SMS must still say what is wrong."""
    state = "RESOLVED" if m.resolved else m.severity.upper()
    more = f" (+{len(m.alerts) - 1} more)" if len(m.alerts) > 1 else ""
    head = f"{state}: {m.title}: {m.summary}{more}"
    runbook = m.runbook_url or next((a.runbook_url for a in m.alerts if a.runbook_url), "")
    if runbook and len(head) + len(runbook) + 1 <= limit:
        return f"{head} {runbook}"
    return clip(head, limit)


# --- webhooks ------------------------------------------------------------------------


def slack_payload(m: Message) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": clip(m.headline, 150)}},
    ]
    if m.note:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": clip(m.note, SLACK_TEXT_MAX)}}
        )
    for a in m.alerts[:SLACK_MAX_ALERT_BLOCKS]:
        lines = [f"*{a.name}* `{a.status}`"]
        if a.summary:
            lines.append(a.summary)
        if a.description:
            lines.append(f"_{a.description}_")
        if a.labels:
            lines.append(_interesting_labels(a.labels))
        if a.runbook_url:
            lines.append(f"<{a.runbook_url}|Runbook>")
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": clip("\n".join(lines), SLACK_TEXT_MAX)},
            }
        )
    if len(m.alerts) > SLACK_MAX_ALERT_BLOCKS:
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"+{len(m.alerts) - SLACK_MAX_ALERT_BLOCKS} more alerts",
                    }
                ],
            }
        )
    # Colour needs an attachment; blocks inside it keep the layout.
    return {
        "text": clip(f"{m.headline}: {m.summary}", SLACK_TEXT_MAX),
        "attachments": [{"color": f"#{m.colour:06x}", "blocks": blocks}],
    }


def discord_payload(m: Message) -> dict[str, Any]:
    fields = []
    for a in m.alerts[:DISCORD_FIELDS_MAX]:
        value = (
            "\n".join(
                x
                for x in (a.summary, a.description, _interesting_labels(a.labels), a.runbook_url)
                if x
            )
            or a.status
        )
        fields.append(
            {
                "name": clip(f"{a.name} [{a.status}]", DISCORD_FIELD_NAME_MAX),
                "value": clip(value, DISCORD_FIELD_VALUE_MAX),
                "inline": False,
            }
        )
    embed: dict[str, Any] = {
        "title": clip(m.headline, DISCORD_TITLE_MAX),
        "description": clip(m.note or m.summary, DISCORD_DESCRIPTION_MAX),
        "color": m.colour,
        "fields": fields,
        "footer": {"text": f"TraceTrack alert bridge · {m.key[:12]}"},
    }
    # The 6000-character budget covers title, description, fields and footer together.
    while _embed_size(embed) > DISCORD_EMBED_TOTAL_MAX and embed["fields"]:
        embed["fields"].pop()
    if len(m.alerts) > len(embed["fields"]):
        extra = len(m.alerts) - len(embed["fields"])
        embed["footer"]["text"] += f" · +{extra} more alerts"
    return {"content": clip(f"{m.headline}: {m.summary}", DISCORD_CONTENT_MAX), "embeds": [embed]}


def _embed_size(embed: dict[str, Any]) -> int:
    n = len(embed["title"]) + len(embed["description"]) + len(embed["footer"]["text"])
    return n + sum(len(f["name"]) + len(f["value"]) for f in embed["fields"]) + 60


def json_payload(m: Message) -> dict[str, Any]:
    return {
        "source": "tracetrack-alert-bridge",
        "notification_key": m.key,
        "kind": m.kind,
        "severity": m.severity,
        "status": m.status,
        "title": m.title,
        "summary": m.summary,
        "headline": m.headline,
        "alerts": [a.__dict__ for a in m.alerts],
        "external_url": m.external_url,
    }


WEBHOOK_RENDERERS = {"slack": slack_payload, "discord": discord_payload, "json": json_payload}
