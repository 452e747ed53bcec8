"""Who hears about a dead bridge: Alertmanager's own receivers, from alert_config.py.

When every bridge is down (`TraceTrackAlertBridgeDown`), the bridge cannot send the
page, so Alertmanager's `bridge-down` receiver does, with its native integrations:

- email (`email_configs`) to the critical email recipients, through the bridge's SMTP
  settings (SMTP_SERVER, SMTP_PORT, SMTP_SECURITY, ALERT_SENDER_*; the password goes
  to a file of its own, mode 0600, read with `auth_password_file`);
- Slack (`slack_configs`), Discord (`discord_configs`, Alertmanager >= 0.25) and plain
  JSON webhooks (`webhook_configs`) for the critical webhooks.

The runbook is served by the bridges, which are down when this is sent, so the page
carries the runbook's advice itself (its `Respond:` paragraph) besides the link, built
on the deployment's public URL (the rules' annotation keeps its placeholder base
under docker-compose, common/links.py).

Only channels the bridge itself has switched on (ENABLE_EMAIL_ALERTS,
ENABLE_WEBHOOK_ALERTS) are used; Alertmanager has no SMS integration.
`tooling.stackconfig.render_alertmanager_config(native_receivers=...)` puts the result
in the rendered alertmanager.yml; `tracetrack up` does so.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

from alert_bridge.config import AlertConfig
from alert_bridge.runbook import advice
from alert_bridge.settings import BridgeSettings
from common.links import RUNBOOK_PATH

RECEIVER = "bridge-down"
ALERT = "TraceTrackAlertBridgeDown"

_TITLE = "[{{ .Status | toUpper }}] {{ .CommonAnnotations.summary }}"
_SINCE = 'Since {{ (index .Alerts 0).StartsAt.Format "2006-01-02 15:04 MST" }}.'


def _literal(text: str) -> str:
    """`text` verbatim inside an Alertmanager (Go) template."""
    return text.replace("{{", '{{ "{{" }}')


def _runbook_link(settings: BridgeSettings) -> str:
    """The bridge's runbook section for this alert, on the deployment's public URL (the
    rules' own annotation keeps its placeholder base under docker-compose)."""
    public = settings.bridge_public_url or settings.tracetrack_public_url
    if public:
        return _literal(f"{public}{RUNBOOK_PATH}#{ALERT.lower()}")
    return "{{ .CommonAnnotations.runbook_url }}"


def _advice(settings: BridgeSettings) -> str:
    """What to do, in the page itself: the runbook is served by the bridges, which are
    down when this is sent."""
    try:
        return advice(settings.bridge_runbook_file.read_text(encoding="utf-8"), ALERT)
    except OSError:
        return ""


def _text(settings: BridgeSettings) -> str:
    what = _advice(settings)
    return (
        "{{ .CommonAnnotations.description }}\n"
        + _SINCE
        + (f"\n{_literal(what)}" if what else "")
        + f"\nRunbook (served by the bridges: it opens once one is back): {_runbook_link(settings)}"
    )


def _html(settings: BridgeSettings) -> str:
    """The email's HTML part (Alertmanager's default would list the annotations,
    placeholder links included). Alertmanager escapes what the template inserts."""
    what = _advice(settings)
    link = _runbook_link(settings)
    return (
        "<html><body style='font-family:sans-serif'>"
        "<h2 style='color:#d0021b'>" + _TITLE + "</h2>"
        "<p>{{ .CommonAnnotations.description }}</p><p>"
        + _SINCE
        + "</p>"
        + (f"<p>{_literal(html.escape(what))}</p>" if what else "")
        + f'<p><a href="{link}">Runbook</a> (served by the bridges: it opens once one is'
        " back)</p><p><small>Sent by Alertmanager itself: every TraceTrack alert bridge is"
        " down.</small></p></body></html>"
    )


def _write_secret(path: Path, secret: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret)
    return path


def native_receiver(
    config: AlertConfig, settings: BridgeSettings, secrets_dir: Path
) -> dict[str, Any]:
    """The `bridge-down` receiver's integrations (without its name)."""
    out: dict[str, Any] = {}
    text = _text(settings)
    # A password removed since the last rendering must not stay behind on disk.
    (secrets_dir / "smtp_password").unlink(missing_ok=True)
    critical = config.for_severity("critical")
    emails = [r.address for r in critical if r.channel == "email"]
    if settings.enable_email_alerts and emails:
        email: dict[str, Any] = {
            "to": ", ".join(emails),
            "from": settings.alert_sender_email,
            "smarthost": f"{settings.smtp_server}:{settings.smtp_port}",
            # STARTTLS when the bridge uses it; port 465 is implicit TLS to Alertmanager.
            "require_tls": settings.smtp_security == "starttls",
            "send_resolved": True,
            "headers": {"Subject": _TITLE},
            "text": text,
            "html": _html(settings),
        }
        if settings.alert_sender_password is not None:
            email["auth_username"] = settings.smtp_username or settings.alert_sender_email
            email["auth_password_file"] = str(
                _write_secret(
                    secrets_dir / "smtp_password",
                    settings.alert_sender_password.get_secret_value(),
                )
            )
        if settings.smtp_ca_file:
            email["tls_config"] = {"ca_file": str(settings.smtp_ca_file)}
        out["email_configs"] = [email]
    if settings.enable_webhook_alerts:
        hooks = [r for r in critical if r.channel == "webhook"]
        slack = [
            {"api_url": r.address, "send_resolved": True, "title": _TITLE, "text": text}
            for r in hooks
            if r.format == "slack"
        ]
        discord = [
            {"webhook_url": r.address, "send_resolved": True, "title": _TITLE, "message": text}
            for r in hooks
            if r.format == "discord"
        ]
        plain = [{"url": r.address, "send_resolved": True} for r in hooks if r.format == "json"]
        for key, items in (
            ("slack_configs", slack),
            ("discord_configs", discord),
            ("webhook_configs", plain),
        ):
            if items:
                out[key] = items
    return out


def fill_template(template: str, receiver: dict[str, Any]) -> str:
    """`template` (an alertmanager.yml) with its `bridge-down` receiver set to `receiver`."""
    import yaml

    doc = yaml.safe_load(template)
    for entry in doc.get("receivers") or []:
        if entry.get("name") == RECEIVER:
            entry.clear()
            entry.update({"name": RECEIVER, **receiver})
            break
    else:
        raise ValueError(f"the template has no receiver named {RECEIVER!r}")
    return str(yaml.safe_dump(doc, sort_keys=False, width=1000, default_flow_style=False))


def render_file(
    template: Path,
    out: Path,
    config: AlertConfig,
    settings: BridgeSettings,
    shared_secrets: bool = False,
) -> Path:
    """Write `out`: `template` with this bridge's bridge-down receiver, its secrets beside
    it (`secrets/`). shared_secrets: readable by another user, for an Alertmanager that
    runs as its own user in a container of its own and shares only this directory."""
    secrets_dir = out.parent / "secrets"
    receiver = native_receiver(config, settings, secrets_dir)
    if shared_secrets and secrets_dir.is_dir():
        for secret in secrets_dir.iterdir():
            secret.chmod(0o444)
    tmp = out.with_name(out.name + ".new")
    tmp.unlink(missing_ok=True)
    # The file holds the critical webhooks' URLs, which are their secret: as private as
    # the password file beside it (shared with Alertmanager's user only when asked).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444 if shared_secrets else 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(fill_template(template.read_text(), receiver))
    os.replace(tmp, out)  # Alertmanager never reads a half-written file
    return out
