"""The notification page as HTML: readable on a phone, forms that POST.

A GET only shows; acknowledging and silencing are POSTs, so a link previewer
(Slack, a mail scanner) that fetches the link never silences anything.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime

from alert_bridge.messages import Message, stamp
from alert_bridge.pages import Ack
from alert_bridge.silences import DURATIONS

_STYLE = """
body{font-family:-apple-system,system-ui,sans-serif;margin:0 auto;max-width:40rem;
padding:0 1rem 3rem;line-height:1.45;color:#1d1d1f}
h1{font-size:1.25rem;margin:1rem 0 .25rem} .sev{color:#fff;padding:.1rem .4rem;border-radius:3px}
.alert{border-top:1px solid #ddd;padding:.6rem 0} .value{font-size:1.1rem;font-weight:600}
.links a{display:inline-block;margin:.2rem .6rem .2rem 0}
form{margin:.6rem 0} input[type=text]{font-size:1rem;padding:.4rem;width:12rem}
button{font-size:1rem;padding:.5rem .9rem;margin:.2rem .3rem .2rem 0}
.done{background:#e6f4ea;padding:.5rem;border-radius:4px}
.error{background:#fdecea;padding:.5rem;border-radius:4px}
"""


def _e(text: object) -> str:
    return html.escape(str(text))


def page(
    m: Message,
    token: str,
    ack: Ack | None,
    expires_at: float,
    flash: str = "",
    error: str = "",
) -> str:
    colour = f"#{m.colour:06x}"
    rows = []
    for a in m.alerts:
        links = " ".join(
            f'<a href="{_e(url)}">{_e(label)}</a>'
            for label, url in (
                ("Runbook", a.runbook_url),
                ("Dashboard", a.dashboard_link(m.accepted)),
                ("Prometheus", a.generator_url),
            )
            if url
        )
        ended = f" · ended {_e(stamp(a.ended))}" if a.ended else ""
        rows.append(
            f'<div class="alert"><b>{_e(a.name)}</b> [{_e(a.status)}] on {_e(a.instance)}<br>'
            + (f'<span class="value">{_e(a.how_bad)}</span><br>' if a.how_bad else "")
            + f"{_e(a.summary)}<br><small>{_e(a.description)}</small><br>"
            f"<small>started {_e(stamp(a.started))}{ended}</small>"
            f'<div class="links">{links}</div></div>'
        )
    if ack is not None:
        ack_html = (
            f'<p class="done">Acknowledged by <b>{_e(ack.acked_by)}</b> at'
            f" {_e(stamp(datetime.fromtimestamp(ack.acked_at, UTC)))}: no more reminders"
            " for this group until it resolves.</p>"
        )
    elif m.resolved:
        ack_html = "<p>Resolved: nothing to acknowledge.</p>"
    else:
        ack_html = (
            f'<form method="post" action="{_e(token)}/ack"><input type="text" name="who" required'
            ' maxlength="100" placeholder="your name" aria-label="your name">'
            " <button>Acknowledge</button></form>"
        )
    silence = (
        f'<form method="post" action="{_e(token)}/silence"><input type="text" name="who" required'
        ' maxlength="100" placeholder="your name" aria-label="your name"><br>Silence this'
        " group for "
        + " ".join(f'<button name="duration" value="{d}">{d}</button>' for d in DURATIONS)
        + "</form>"
    )
    notes = (f'<p class="done">{_e(flash)}</p>' if flash else "") + (
        f'<p class="error">{_e(error)}</p>' if error else ""
    )
    expires = stamp(datetime.fromtimestamp(expires_at, UTC))
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{_e(m.headline)}</title><style>{_STYLE}</style></head><body>"
        f'<h1><span class="sev" style="background:{colour}">{_e(m.severity.upper())}</span>'
        f" {_e(m.state)}: {_e(m.what)}</h1>"
        f"<p>{_e(m.since_line())}</p>{notes}{ack_html}{silence}"
        f"{''.join(rows)}"
        f"<p><small>Notification {_e(m.key[:12])} · this page works until {_e(expires)}."
        "</small></p></body></html>"
    )


def gone(expired_at: float) -> str:
    when = stamp(datetime.fromtimestamp(expired_at, UTC))
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Expired</title></head><body><p>This notification page expired at {_e(when)}."
        " Alertmanager and Grafana still show the alert.</p></body></html>"
    )
