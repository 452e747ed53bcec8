"""Turn a stored notification into what each channel sends.

One `Message` per notification; each channel renders it within its own limits (one
GSM-7 SMS segment, Slack block text, Discord embed sizes). Every channel says what
broke, where (instance / job), how bad (the rule's `value` annotation next to its
`threshold`), since when (the start and its age at the notification), and carries
absolute links (runbook, Grafana around the start, the notification page).
Rendering is a pure function of the stored body and the time the bridge accepted it,
so a retried delivery sends the same text.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from alert_bridge import gsm7
from alert_bridge.links import Links

SEVERITY_COLOURS = {"critical": 0xD0021B, "warning": 0xF5A623, "info": 0x4A90E2}
RESOLVED_COLOUR = 0x2EB67D

# SMS: one GSM-7 segment, always (a second one arrives split, or not at all).
SMS_MAX_CHARS = gsm7.SEGMENT
SMS_TAG = {"critical": "CRIT", "warning": "WARN", "info": "INFO"}
SUBJECT_MAX = 200
SLACK_TEXT_MAX = 3000
SLACK_MAX_ALERT_BLOCKS = 20
DISCORD_CONTENT_MAX = 2000
DISCORD_TITLE_MAX = 256
DISCORD_DESCRIPTION_MAX = 4096
DISCORD_FIELDS_MAX = 25
DISCORD_FIELD_NAME_MAX = 256
DISCORD_FIELD_VALUE_MAX = 1024
DISCORD_EMBED_TOTAL_MAX = 6000
# Grafana links open this much history before the start (and after the end).
DASHBOARD_BEFORE = timedelta(hours=1)
DASHBOARD_AFTER = timedelta(minutes=15)


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def parse_time(value: str) -> datetime | None:
    """Alertmanager's RFC 3339 times (nanoseconds included); None for its zero time."""
    if not value or value.startswith("0001-"):
        return None
    text = value.strip().replace("Z", "+00:00")
    if "." in text:  # Python takes at most microseconds
        whole, rest = text.split(".", 1)
        digits = "".join(c for c in rest if c.isdigit())
        text = f"{whole}.{digits[:6].ljust(6, '0')}{rest[len(digits) :]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def hhmm(t: datetime | None) -> str:
    return t.astimezone(UTC).strftime("%H:%M UTC") if t else "?"


def stamp(t: datetime | None) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if t else "unknown"


def short_name(name: str) -> str:
    """The alert name without the product prefix, where space is tight (SMS, subject)."""
    return name.removeprefix("TraceTrack") or name


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
    value: str = ""
    threshold: str = ""
    dashboard_url: str = ""

    @property
    def instance(self) -> str:
        """Where: the target, else the app it names, else the job."""
        lab = self.labels
        return lab.get("instance") or lab.get("app") or lab.get("job") or ""

    @property
    def started(self) -> datetime | None:
        return parse_time(self.starts_at)

    @property
    def ended(self) -> datetime | None:
        return parse_time(self.ends_at) if self.status == "resolved" else None

    @property
    def how_bad(self) -> str:
        """`7.1% (threshold > 5 %)`, or what there is of it."""
        if self.value and self.threshold:
            return f"{self.value} (threshold {self.threshold})"
        return self.value or (f"threshold {self.threshold}" if self.threshold else "")

    def dashboard_link(self, at: datetime | None) -> str:
        """The rule's dashboard panel, on this alert's instance, around its start."""
        if not self.dashboard_url:
            return ""
        start = self.started or at
        params: dict[str, str] = {}
        if start is not None:
            end = self.ended or at or start
            params["from"] = str(int((start - DASHBOARD_BEFORE).timestamp() * 1000))
            params["to"] = str(int((end + DASHBOARD_AFTER).timestamp() * 1000))
        if self.labels.get("instance"):
            params["var-instance"] = self.labels["instance"]
        sep = "&" if "?" in self.dashboard_url else "?"
        return self.dashboard_url + (sep + urlencode(params) if params else "")


@dataclass(frozen=True)
class Message:
    key: str
    kind: str  # alert | watchdog | reminder | digest
    severity: str
    status: str  # firing | resolved | missing | recovered
    title: str
    alerts: list[AlertLine] = field(default_factory=list)
    external_url: str = ""
    note: str = ""  # watchdog / reminder / digest text
    runbook_url: str = ""  # the message's own runbook link (watchdog)
    at: float | None = None  # when the bridge accepted it: "since" ages count to here
    page_url: str = ""  # the notification's landing page (/n/<key>)

    @property
    def resolved(self) -> bool:
        return self.status in ("resolved", "recovered")

    @property
    def accepted(self) -> datetime | None:
        return datetime.fromtimestamp(self.at, UTC) if self.at else None

    @property
    def state(self) -> str:
        if self.kind == "reminder":
            return "REMINDER"
        return {
            "firing": "FIRING",
            "resolved": "RESOLVED",
            "missing": "NO HEARTBEAT",
            "recovered": "RECOVERED",
        }[self.status]

    @property
    def started(self) -> datetime | None:
        starts = [a.started for a in self.alerts if a.started]
        return min(starts) if starts else None

    @property
    def ended(self) -> datetime | None:
        ends = [a.ended for a in self.alerts if a.ended]
        return max(ends) if ends else None

    def where(self, limit: int = 3) -> str:
        """`a, b, +38`: the instances, as many as `limit`."""
        seen = list(dict.fromkeys(a.instance for a in self.alerts if a.instance))
        if len(seen) <= limit:
            return ", ".join(seen)
        return ", ".join(seen[:limit]) + f", +{len(seen) - limit}"

    @property
    def how_bad(self) -> str:
        return self.alerts[0].how_bad if self.alerts else ""

    @property
    def lasted(self) -> str:
        """How long a resolved notification's problem lasted ("7m10s")."""
        if self.started and self.ended:
            return _duration((self.ended - self.started).total_seconds())
        return ""

    @property
    def age(self) -> str:
        """How long it had been firing when the bridge accepted the notification."""
        if self.started and self.accepted:
            return _duration((self.accepted - self.started).total_seconds())
        return ""

    @property
    def what(self) -> str:
        """The alert in words: `40x TraceTrackTargetDown` for a group, the name for one."""
        n = len(self.alerts)
        return f"{n}x {self.title}" if n > 1 else self.title

    @property
    def what_short(self) -> str:
        n = len(self.alerts)
        return f"{n}x {short_name(self.title)}" if n > 1 else short_name(self.title)

    @property
    def headline(self) -> str:
        """[CRITICAL] FIRING: <alert> <value vs threshold> on <where>."""
        parts = [f"[{self.severity.upper()}] {self.state}: {self.what}"]
        if self.kind in ("alert", "reminder"):
            if self.how_bad and not self.resolved:
                parts.append(self.how_bad)
            where = self.where()
            if where:
                parts.append(f"on {where}")
        return " ".join(parts)

    @property
    def summary(self) -> str:
        if self.note:
            return self.note
        first = self.alerts[0] if self.alerts else None
        return (first.summary or first.description or first.name) if first else self.title

    @property
    def link(self) -> str:
        """The one link an SMS carries: the notification page, else the runbook."""
        return (
            self.page_url
            or self.runbook_url
            or next((a.runbook_url for a in self.alerts if a.runbook_url), "")
        )

    @property
    def colour(self) -> int:
        return RESOLVED_COLOUR if self.resolved else SEVERITY_COLOURS.get(self.severity, 0x999999)

    def since_line(self) -> str:
        """`since 2030-01-01 00:00:00 UTC (firing 3m20s)` / resolved: start, end, length."""
        if self.resolved and self.started and self.ended:
            return (
                f"from {stamp(self.started)} to {stamp(self.ended)} (RESOLVED after {self.lasted})"
            )
        if self.started:
            age = f" (firing {self.age} when notified)" if self.age else ""
            return f"since {stamp(self.started)}{age}"
        return ""


def from_payload(
    key: str,
    severity: str,
    body: dict[str, Any],
    at: float | None = None,
    links: Links | None = None,
) -> Message:
    """The message of an Alertmanager webhook body; `links` makes its links absolute
    for this deployment (alert_bridge/links.py), None keeps them as they came."""
    alerts = []
    for a in body.get("alerts", []):
        labels = dict(a.get("labels", {}))
        ann = a.get("annotations", {})
        name = labels.get("alertname", "alert")
        runbook = ann.get("runbook_url", "")
        dashboard = ann.get("dashboard_url", "")
        generator = a.get("generatorURL", "")
        if links is not None:
            runbook = links.runbook(runbook, name)
            dashboard = links.dashboard(dashboard)
            generator = links.other(generator)
        alerts.append(
            AlertLine(
                name=name,
                status=a.get("status", ""),
                summary=ann.get("summary", ""),
                description=ann.get("description", ""),
                labels=labels,
                starts_at=a.get("startsAt", ""),
                ends_at=a.get("endsAt", ""),
                runbook_url=runbook,
                generator_url=generator,
                value=ann.get("value", ""),
                threshold=ann.get("threshold", ""),
                dashboard_url=dashboard,
            )
        )
    # The firing ones first: what still hurts leads.
    alerts.sort(key=lambda a: (a.status != "firing", a.instance))
    names = sorted({a.name for a in alerts})
    title = body.get("groupLabels", {}).get("alertname") or ", ".join(names) or "alert"
    external = body.get("externalURL", "")
    return Message(
        key=key,
        kind="alert",
        severity=severity,
        status=body["status"],
        title=title,
        alerts=alerts,
        external_url=links.other(external) if links is not None else external,
        at=at,
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


def build_message(
    key: str,
    kind: str,
    severity: str,
    status: str,
    body_json: str,
    at: float | None = None,
    page_url: str = "",
    links: Links | None = None,
) -> Message:
    """The message of a stored notification; `at` is when the bridge accepted it,
    `links` this deployment's link bases (alert_bridge/links.py)."""
    body = json.loads(body_json)
    if kind == "watchdog":
        m = watchdog_message(key, status, body)
    else:
        m = from_payload(key, severity, body, at, links)
    if kind == "reminder":
        m = _reminder(m, body.get("_reminder") or {})
    if page_url or at is not None:
        m = replace(m, page_url=page_url or m.page_url, at=at if at is not None else m.at)
    return m


def _reminder(m: Message, info: dict[str, Any]) -> Message:
    """A re-page: the same alerts, saying how long they have fired unacknowledged."""
    at = info.get("at") or m.at
    start = m.started.timestamp() if m.started else info.get("firing_since")
    firing = f"still firing for {_duration(float(at) - float(start))}" if at and start else ""
    note = f"{firing or 'still firing'}, not acknowledged"
    return replace(m, kind="reminder", note=note, at=float(at) if at else m.at)


def _ts(value: float | str) -> str:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def _interesting_labels(labels: dict[str, str]) -> str:
    skip = {"alertname", "severity"}
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in skip)


def _links(m: Message, a: AlertLine | None) -> list[tuple[str, str]]:
    """(label, absolute URL) of what an engineer opens, most useful first."""
    out = []
    if m.page_url:
        out.append(("Acknowledge / silence", m.page_url))
    runbook = (a.runbook_url if a else "") or m.runbook_url
    if runbook:
        out.append(("Runbook", runbook))
    if a is not None:
        dash = a.dashboard_link(m.accepted)
        if dash:
            out.append(("Dashboard", dash))
        if a.generator_url:
            out.append(("Prometheus", a.generator_url))
    return out


# --- email ---------------------------------------------------------------------------


def email_subject(m: Message) -> str:
    """Severity, state, alert, value vs threshold and instance first (a phone shows ~70
    characters of a subject), then the summary; resolved: how long and the last value."""
    parts = [f"[{m.severity.upper()}] {m.state}:"]
    if m.kind == "watchdog":
        parts.append(m.title)
    elif m.resolved:
        parts += [m.what, m.where(2), f"after {m.lasted}" if m.lasted else ""]
        if m.alerts and m.alerts[0].value:
            parts.append(f"(last {m.alerts[0].value})")
    else:
        parts += [m.what, m.alerts[0].value if m.alerts else "", _thr(m), m.where(2)]
        if m.summary:  # a reminder's summary is its note: "still firing for 45m00s, ..."
            parts.append(f"- {m.summary}")
    # A header must be one line; annotations often are not.
    return clip(" ".join(" ".join(p for p in parts if p).split()), SUBJECT_MAX)


def _thr(m: Message) -> str:
    t = m.alerts[0].threshold if m.alerts else ""
    return f"({t})" if t else ""


def email_text(m: Message) -> str:
    out = [m.headline, ""]
    if m.note:
        out += [m.note, ""]
    since = m.since_line()
    if since and m.kind != "watchdog":
        out += [f"When: {since}", ""]
    for a in m.alerts:
        out.append(f"* {a.name} [{a.status}]")
        if a.summary:
            out.append(f"  What: {a.summary}")
        if a.instance:
            job = a.labels.get("job")
            out.append(f"  Where: {a.instance}" + (f" (job {job})" if job else ""))
        if a.how_bad:
            label = "Last value" if a.status == "resolved" else "Value"
            out.append(f"  {label}: {a.how_bad}")
        out.append(f"  Started: {stamp(a.started)}")
        if a.ended:
            lasted = _duration((a.ended - a.started).total_seconds()) if a.started else ""
            out.append(f"  Ended: {stamp(a.ended)}" + (f" (after {lasted})" if lasted else ""))
        if a.description:
            out.append(f"  Details: {a.description}")
        other = _interesting_labels(a.labels)
        if other:
            out.append(f"  Labels: {other}")
        for label, url in _links(m, a)[1 if m.page_url else 0 :]:
            out.append(f"  {label}: {url}")
        out.append("")
    for label, url in _links(m, None):
        out.append(f"{label}: {url}")
    # No "view in Alertmanager" link: Debian's Alertmanager has no web UI to open; the
    # notification page shows the alerts and silences them.
    out.append(f"Notification {m.key[:12]} sent by the TraceTrack alert bridge.")
    return "\n".join(out)


def email_html(m: Message) -> str:
    e = html.escape
    colour = f"#{m.colour:06x}"
    rows = []
    for a in m.alerts:
        links = " · ".join(
            f'<a href="{e(url)}">{e(label)}</a>'
            for label, url in _links(m, a)[1 if m.page_url else 0 :]
        )
        bad = f"<b>{e(a.how_bad)}</b><br>" if a.how_bad else ""
        ended = f" · ended {e(stamp(a.ended))}" if a.ended else ""
        rows.append(
            "<tr><td style='padding:8px;border-top:1px solid #ddd'>"
            f"<b>{e(a.name)}</b> <small>[{e(a.status)}]</small><br>"
            f"{e(a.summary)}<br>{bad}<small>{e(a.description)}</small><br>"
            f"<small>{e(a.instance)} · started {e(stamp(a.started))}{ended}</small><br>"
            f"{links}</td></tr>"
        )
    note = f"<p>{e(m.note)}</p>" if m.note else ""
    since = m.since_line()
    when = f"<p>{e(since)}</p>" if since and m.kind != "watchdog" else ""
    top = " · ".join(f'<a href="{e(url)}">{e(label)}</a>' for label, url in _links(m, None))
    return (
        "<html><body style='font-family:sans-serif'>"
        f"<h2 style='color:{colour};margin:0 0 8px'>{e(m.headline)}</h2>{note}{when}"
        f"<p>{top}</p>"
        f"<table style='border-collapse:collapse;width:100%'>{''.join(rows)}</table>"
        f"<p><small>Notification {e(m.key[:12])} sent by the TraceTrack alert bridge."
        "</small></p></body></html>"
    )


# --- SMS -----------------------------------------------------------------------------


def sms_text(m: Message, limit: int = SMS_MAX_CHARS) -> str:
    """One GSM-7 segment: the value first, then what and where, since when, one link.

    CRIT 7.1% (> 5 %) ErrorRateHigh app-1:8000 since 21:52 UTC https://.../n/...
    CRIT 40x TargetDown up 0 (up == 0 for 30s) a, b, +38 since 21:52 UTC https://...
    OK ErrorRateHigh app-1:8000 RESOLVED after 7m10s, last 7.1% https://...
    """
    link = m.link
    room = limit - (gsm7.length(link) + 1 if link else 0)
    if m.kind == "watchdog":
        tag = "OK" if m.resolved else SMS_TAG.get(m.severity, "CRIT")
        body = f"{tag} {m.title}. {m.note}"
    else:
        body = _sms_body(m, room)
    text = gsm7.fit(gsm7.to_gsm7(" ".join(body.split())), room)
    return f"{text} {link}" if link else text


def sms_digest(m: Message, budget: int = 3, window_minutes: float = 10) -> str:
    """The one SMS a phone gets once its budget is spent: what is going on, where the
    rest is, and the latest notification's page. Nothing more until the window ends."""
    link = m.link
    room = SMS_MAX_CHARS - (gsm7.length(link) + 1 if link else 0)
    text = (
        # Short enough that the latest alert and its value survive a long public URL.
        f"TraceTrack: SMS limit reached ({budget} per {window_minutes:g} min); more by email"
        f" and chat only. Latest: {m.what_short}"
        + (f" {m.alerts[0].value}" if m.alerts and m.alerts[0].value else "")
    )
    text = gsm7.fit(gsm7.to_gsm7(" ".join(text.split())), room)
    return f"{text} {link}" if link else text


def _sms_body(m: Message, room: int) -> str:
    """The SMS without its link, in `room` septets: the most complete wording that still
    names where (the first instance, cut if need be). Dropped first when space runs
    out: the last value of a resolved alert, the threshold, a reminder's long words;
    never the value of a firing one."""
    name = m.what_short
    a = m.alerts[0] if m.alerts else None
    options: list[tuple[str, str]]  # (head, tail): "<head> <where><tail>"
    if m.resolved:
        after = f" RESOLVED after {m.lasted}" if m.lasted else " RESOLVED"
        last = f", last {a.value}" if a and a.value else ""
        options = [(f"OK {name}", after + last), (f"OK {name}", after)]
    else:
        value = f" {a.value}" if a and a.value else ""
        thr = f" ({a.threshold})" if a and a.threshold else ""
        tag = SMS_TAG.get(m.severity, m.severity.upper())
        since = f" since {hhmm(m.started)}" if m.started else ""
        prefixes = [tag]
        if m.kind == "reminder":
            age = re.search(r"firing for (\S+?),", m.note)
            prefixes = [
                f"{tag} REMINDER {m.note.replace('acknowledged', 'acked')}:",
                f"{tag} REMINDER {age.group(1) + ' ' if age else ''}unacked:",
            ]
        options = [(f"{prefixes[0]}{value}{thr} {name}", since)] + [
            (f"{p}{value} {name}", since) for p in prefixes
        ]
        if m.kind == "reminder":  # it says how long already
            options.append((f"{prefixes[-1]}{value} {name}", ""))
    instances = list(dict.fromkeys(x.instance for x in m.alerts if x.instance))

    def fits(text: str) -> bool:
        return gsm7.length(gsm7.to_gsm7(text)) <= room

    if not instances:
        return next((h + t for h, t in options if fits(h + t)), "".join(options[-1]))
    # The first wording that names the first instance whole (as many as fit); only when
    # none does, the first wording that leaves it a recognisable cut.
    for head, tail in options:
        for limit in (3, 2, 1):
            text = f"{head} {m.where(limit)}{tail}"
            if fits(text):
                return text
    for head, tail in options:
        more = f", +{len(instances) - 1}" if len(instances) > 1 else ""
        left = room - gsm7.length(gsm7.to_gsm7(f"{head} {more}{tail}"))
        if left >= 12:
            first = gsm7.fit(gsm7.to_gsm7(instances[0]), left)
            return f"{head} {first}{more}{tail}"
    return "".join(options[-1])


# --- webhooks ------------------------------------------------------------------------


def _mrkdwn_links(links: list[tuple[str, str]]) -> str:
    return " · ".join(f"<{url}|{label}>" for label, url in links)


def slack_payload(m: Message) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": clip(m.headline, 150)}},
    ]
    if m.note:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": clip(m.note, SLACK_TEXT_MAX)}}
        )
    for a in m.alerts[:SLACK_MAX_ALERT_BLOCKS]:
        lines = [f"*{a.name}* `{a.status}`" + (f" on `{a.instance}`" if a.instance else "")]
        if a.how_bad:
            lines.append(
                ("Last value: " if a.status == "resolved" else "Value: ") + f"*{a.how_bad}*"
            )
        if a.summary:
            lines.append(a.summary)
        if a.description:
            lines.append(f"_{a.description}_")
        links = _links(m, a)[1 if m.page_url else 0 :]
        if links:
            lines.append(_mrkdwn_links(links))
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
    # When, in a context block: the start (and end), the age, the notification.
    when = m.since_line() or (f"at {stamp(m.accepted)}" if m.accepted else "")
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": clip(f"{when} · notification {m.key[:12]}", SLACK_TEXT_MAX),
                }
            ],
        }
    )
    buttons = [
        {
            "type": "button",
            "text": {"type": "plain_text", "text": label},
            "url": url,
            **({"style": "primary"} if i == 0 and not m.resolved else {}),
        }
        for i, (label, url) in enumerate(_links(m, m.alerts[0] if m.alerts else None)[:5])
        if len(url) <= SLACK_TEXT_MAX
    ]
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    # Colour needs an attachment; blocks inside it keep the layout.
    return {
        "text": clip(f"{m.headline}: {m.summary}", SLACK_TEXT_MAX),
        "attachments": [{"color": f"#{m.colour:06x}", "blocks": blocks}],
    }


def discord_payload(m: Message) -> dict[str, Any]:
    fields = []
    for a in m.alerts[:DISCORD_FIELDS_MAX]:
        head = []
        if a.how_bad:
            head.append(f"**{a.how_bad}**")
        if a.instance:
            head.append(f"on `{a.instance}`")
        if a.started:
            head.append(f"since {hhmm(a.started)}")
        links = " · ".join(
            f"[{label}]({url})" for label, url in _links(m, a)[1 if m.page_url else 0 :]
        )
        value = "\n".join(x for x in (" ".join(head), a.summary, links) if x) or a.status
        fields.append(
            {
                "name": clip(f"{a.name} [{a.status}]", DISCORD_FIELD_NAME_MAX),
                "value": clip(value, DISCORD_FIELD_VALUE_MAX),
                "inline": False,
            }
        )
    description = m.note or m.summary
    since = m.since_line()
    if since and m.kind != "watchdog":
        description += f"\n{since}"
    if m.page_url:
        description += f"\n[Acknowledge / silence]({m.page_url})"
    elif m.runbook_url:
        description += f"\n[Runbook]({m.runbook_url})"
    embed: dict[str, Any] = {
        "title": clip(m.headline, DISCORD_TITLE_MAX),
        "description": clip(description, DISCORD_DESCRIPTION_MAX),
        "color": m.colour,
        "fields": fields,
        "footer": {"text": f"TraceTrack alert bridge · {m.key[:12]}"},
    }
    moment = (m.ended if m.resolved else m.started) or m.accepted
    if moment is not None:
        embed["timestamp"] = moment.astimezone(UTC).isoformat()
    if m.link:
        embed["url"] = m.link
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
        "started_at": m.started.isoformat() if m.started else None,
        "ended_at": m.ended.isoformat() if m.ended else None,
        "page_url": m.page_url or None,
        "alerts": [{**a.__dict__, "dashboard_url": a.dashboard_link(m.accepted)} for a in m.alerts],
        "external_url": m.external_url,
    }


WEBHOOK_RENDERERS = {"slack": slack_payload, "discord": discord_payload, "json": json_payload}
