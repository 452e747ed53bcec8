"""Mail a rendered report: the HTML with its charts inline (multipart/related, `cid:`
images, so mail clients show them without fetching anything), a plain-text part,
and the PDF attached. Sent through the bridge's SMTP settings (common/smtp.py)."""

from __future__ import annotations

import hashlib
from email.message import EmailMessage
from email.utils import formatdate

from common import smtp
from reports import render
from reports.generate import Rendered
from reports.recipients import load_recipients
from reports.settings import ReportSettings


def plain_text(rendered: Rendered) -> str:
    lines = [rendered.report["title"], ""]
    lines += [f"{row.label}: {row.value}" for row in render.headline(rendered.report)]
    lines += ["", "The full report with charts is in the HTML part and the attached PDF."]
    return "\n".join(lines) + "\n"


def build_message(settings: ReportSettings, rendered: Rendered, to: list[str]) -> EmailMessage:
    report = rendered.report
    msg = EmailMessage()
    availability = render.fmt(report["slo"]["availability"]["value"], "ratio")
    msg["Subject"] = f"[TraceTrack] {report['title']}: availability {availability}"
    msg["From"] = settings.alert_sender_email
    msg["To"] = ", ".join(to)
    msg["Date"] = formatdate(localtime=False)
    # One Message-ID per report: a resend after a crash is recognisable as the same mail.
    digest = hashlib.sha256(f"{report['kind']}:{report['period']}".encode()).hexdigest()[:16]
    msg["Message-ID"] = f"<report.{report['kind']}.{report['period']}.{digest}@tracetrack-reporter>"
    msg.set_content(plain_text(rendered))
    msg.add_alternative(render.html(report, rendered.charts, inline=False), subtype="html")
    html_part = msg.get_body(("html",))
    assert isinstance(html_part, EmailMessage)
    for name, _caption, png in rendered.charts:
        html_part.add_related(png, "image", "png", cid=f"<{name}>", filename=name)
    msg.add_attachment(
        rendered.pdf,
        maintype="application",
        subtype="pdf",
        filename=f"tracetrack-{report['kind']}-{report['period']}.pdf",
    )
    return msg


def send_report(settings: ReportSettings, rendered: Rendered) -> list[str]:
    """Email the report to its kind's recipients; returns who it went to ([]: nobody is
    configured, nothing sent). SMTP errors propagate: the caller retries later."""
    to = load_recipients(settings.alert_config_file)[rendered.report["kind"]]
    if not to:
        return []
    msg = build_message(settings, rendered, to)
    conn = smtp.connect(settings)
    try:
        conn.send_message(msg)
    finally:
        conn.quit()
    return to
