"""Webhooks: Slack (blocks), Discord (embeds) or plain JSON, by the entry's format."""

from __future__ import annotations

import json
import logging

import httpx

from alert_bridge.config import Recipient
from alert_bridge.messages import WEBHOOK_RENDERERS, Message, clip
from alert_bridge.providers.base import PermanentError, TransientError, display_recipient
from alert_bridge.settings import BridgeSettings

RETRYABLE_STATUS = {408, 425, 429}

# httpx logs every request URL at INFO, and a webhook URL's path is its secret.
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)


def _retry_after(resp: httpx.Response) -> float | None:
    header = resp.headers.get("retry-after")
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            return None
    try:  # Discord puts it in the body
        value = resp.json().get("retry_after")
        return float(value) if value is not None else None
    except (ValueError, AttributeError, TypeError):
        return None


class WebhookProvider:
    outcome = "sent"

    def __init__(self, settings: BridgeSettings) -> None:
        self.http = httpx.Client(
            timeout=settings.webhook_timeout_seconds, follow_redirects=False,
            headers={"User-Agent": "tracetrack-alert-bridge"},
            limits=httpx.Limits(max_connections=settings.bridge_worker_threads * 2),
        )

    def send(self, recipient: Recipient, message: Message) -> str | None:
        fmt = recipient.format or "json"
        body = json.dumps(WEBHOOK_RENDERERS[fmt](message)).encode()
        where = display_recipient("webhook", recipient.address)
        try:
            resp = self.http.post(recipient.address, content=body, headers={
                "Content-Type": "application/json",
                # Receivers that honour it can drop a re-send after a crash.
                "Idempotency-Key": f"{message.key}:{fmt}",
            })
        except httpx.HTTPError as exc:
            raise TransientError(f"{where} unreachable: {type(exc).__name__}") from None
        if resp.is_success:
            return str(resp.status_code)
        what = f"{where} answered HTTP {resp.status_code}: {clip(resp.text.strip(), 200)}"
        if resp.status_code >= 500 or resp.status_code in RETRYABLE_STATUS:
            raise TransientError(what, retry_after=_retry_after(resp))
        raise PermanentError(what)
