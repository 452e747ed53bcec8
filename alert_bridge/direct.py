"""Paging without the outbox, for the one page that must get out when the outbox
itself cannot be written (a full disk, a store that is down): the dead man's switch.

Best effort and in memory: each recipient is tried once per call, and the caller
calls again (each watchdog check) until every recipient has it. Nothing here is
durable; as soon as the outbox takes writes again, the normal path takes over.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from alert_bridge.config import Recipient
from alert_bridge.messages import build_message
from alert_bridge.metrics import BridgeMetrics
from alert_bridge.providers.base import Provider, display_recipient

log = logging.getLogger("alert_bridge.direct")


class DirectPager:
    def __init__(self, providers: dict[str, Provider], metrics: BridgeMetrics) -> None:
        self.providers = providers
        self.metrics = metrics
        self._pending: list[tuple[Recipient, str, str, str]] = []

    def page(
        self, key: str, status: str, body: dict[str, Any], recipients: list[Recipient]
    ) -> None:
        """Queue a critical watchdog notice for `recipients` and try to send it now."""
        doc = json.dumps(body)
        self._pending.extend((r, key, status, doc) for r in recipients)
        self.retry()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def retry(self) -> None:
        """Try every recipient still waiting; keep the ones that failed."""
        waiting, self._pending = self._pending, []
        for recipient, key, status, doc in waiting:
            provider = self.providers[recipient.channel]
            who = display_recipient(recipient.channel, recipient.address)
            try:
                provider.send(recipient, build_message(key, "watchdog", "critical", status, doc))
            except Exception as exc:  # noqa: BLE001 - kept for the next try
                self.metrics.count(recipient.channel, "critical", "retry")
                log.error(
                    "direct %s page to %s failed, will retry: %s", recipient.channel, who, exc
                )
                self._pending.append((recipient, key, status, doc))
                continue
            self.metrics.count(recipient.channel, "critical", provider.outcome)
            log.warning("paged %s directly (outbox not writable): %s", who, status)
