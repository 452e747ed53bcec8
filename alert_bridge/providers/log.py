"""The provider for a channel that is not enabled: log what would be sent."""

from __future__ import annotations

import logging

from alert_bridge.budget import DIGEST
from alert_bridge.config import Recipient
from alert_bridge.messages import Message, email_subject, sms_digest, sms_text
from alert_bridge.providers.base import display_recipient

log = logging.getLogger("alert_bridge.delivery")


class LogProvider:
    outcome = "logged"

    def __init__(self, channel: str, flag: str) -> None:
        self.channel = channel
        self.flag = flag

    def send(self, recipient: Recipient, message: Message) -> str | None:
        if self.channel == "sms":
            text = sms_digest(message) if recipient.format == DIGEST else sms_text(message)
        else:
            text = email_subject(message)
        log.info(
            "%s disabled (%s is off); would send to %s: %s",
            self.channel,
            self.flag,
            display_recipient(recipient.channel, recipient.address),
            text,
        )
        return None
