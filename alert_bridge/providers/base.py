"""The provider interface and the two ways a delivery can fail."""

from __future__ import annotations

import hashlib
from typing import Protocol
from urllib.parse import urlsplit

from alert_bridge.config import Recipient
from alert_bridge.messages import Message


class DeliveryError(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class TransientError(DeliveryError):
    """Worth retrying: SMTP 4xx, connection errors, Twilio 429/5xx, webhook 429/5xx."""


class PermanentError(DeliveryError):
    """Retrying cannot help: SMTP 5xx, an invalid number, webhook 4xx. Recorded as failed."""


class Provider(Protocol):
    # "sent" for a real channel, "logged" for a disabled one.
    outcome: str

    def send(self, recipient: Recipient, message: Message) -> str | None:
        """Deliver or raise TransientError / PermanentError; returns a provider reference."""
        ...


def display_recipient(channel: str, address: str) -> str:
    """Webhook URLs carry their secret in the path, so only host and a digest are shown."""
    if channel != "webhook":
        return address
    parts = urlsplit(address)
    digest = hashlib.sha256(address.encode()).hexdigest()[:8]
    return f"{parts.scheme}://{parts.netloc}/…#{digest}"
