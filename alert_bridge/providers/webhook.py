"""Webhooks: Slack (blocks), Discord (embeds) or plain JSON, by the entry's format.

urllib3 directly rather than httpx: a delivery costs a third of the CPU, and the
bridge's throughput is bound by CPU on small machines.
"""

from __future__ import annotations

import json
import logging

import urllib3

from alert_bridge.config import Recipient
from alert_bridge.messages import WEBHOOK_RENDERERS, Message, clip
from alert_bridge.providers.base import PermanentError, TransientError, display_recipient
from alert_bridge.settings import BridgeSettings

RETRYABLE_STATUS = {408, 425, 429}

# urllib3 logs request paths at DEBUG, and a webhook URL's path is its secret.
logging.getLogger("urllib3").setLevel(logging.WARNING)


def _retry_after(resp: urllib3.BaseHTTPResponse) -> float | None:
    header = resp.headers.get("retry-after")
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            return None
    try:  # Discord puts it in the body
        value = json.loads(resp.data).get("retry_after")
        return float(value) if value is not None else None
    except (ValueError, AttributeError, TypeError):
        return None


class WebhookProvider:
    outcome = "sent"

    def __init__(self, settings: BridgeSettings) -> None:
        self.http = urllib3.PoolManager(
            num_pools=64,
            maxsize=settings.bridge_worker_threads,
            block=False,
            timeout=urllib3.Timeout(total=settings.webhook_timeout_seconds),
            retries=False,
            headers={"User-Agent": "tracetrack-alert-bridge", "Content-Type": "application/json"},
        )

    def send(self, recipient: Recipient, message: Message) -> str | None:
        fmt = recipient.format or "json"
        body = json.dumps(WEBHOOK_RENDERERS[fmt](message)).encode()
        where = display_recipient("webhook", recipient.address)
        try:
            resp = self.http.request(
                "POST",
                recipient.address,
                body=body,
                redirect=False,
                headers={
                    **self.http.headers,
                    # Receivers that honour it can drop a re-send after a crash.
                    "Idempotency-Key": f"{message.key}:{fmt}",
                },
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise TransientError(f"{where} unreachable: {type(exc).__name__}") from None
        if 200 <= resp.status < 300:
            return str(resp.status)
        text = resp.data.decode(errors="replace").strip()
        what = f"{where} answered HTTP {resp.status}: {clip(text, 200)}"
        if resp.status >= 500 or resp.status in RETRYABLE_STATUS:
            raise TransientError(what, retry_after=_retry_after(resp))
        raise PermanentError(what)
