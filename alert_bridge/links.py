"""The links a notification carries, made absolute for this deployment when it is sent.

The rules' `runbook_url` and `dashboard_url` annotations come with placeholder bases
(common/links.py) unless whoever loaded the rules rendered them first; docker-compose's
Prometheus loads the committed file as it is, and so may yours. The bridge knows where
phones reach it (BRIDGE_PUBLIC_URL / TRACETRACK_PUBLIC_URL) and where Grafana is
(GRAFANA_URL), so it swaps the bases itself, from the alert name and labels, at
notification time: one place, whatever Prometheus was fed.

A link on a loopback host (Prometheus' generatorURL when PROMETHEUS_EXTERNAL_URL was
left at its local default, a rules file rendered for localhost) opens nowhere on a
phone: when the bridge itself is public, such a link is left out (a runbook link
falls back to the bridge's own `/runbook#<alert>`), never sent broken. On a laptop
(the bridge's own URL on loopback too) every link is kept: they open there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from common.links import (
    DEFAULT_GRAFANA_URL,
    DEFAULT_PUBLIC_URL,
    RUNBOOK_PATH,
    is_loopback,
    rebase,
)

log = logging.getLogger("alert_bridge.links")

_warned: set[str] = set()


@dataclass(frozen=True)
class Links:
    public_url: str = DEFAULT_PUBLIC_URL  # where phones reach this bridge
    grafana_url: str | None = None  # GRAFANA_URL; None keeps the rule's dashboard link

    @property
    def local(self) -> bool:
        """The bridge is reached on this machine only (a laptop, a test)."""
        return is_loopback(self.public_url)

    def opens(self, url: str) -> bool:
        """Whether `url` can open where this bridge's notifications are read."""
        if not url or self.local or not is_loopback(url):
            return True
        if url not in _warned and len(_warned) < 100:  # once per link, bounded
            _warned.add(url)
            log.warning(
                "left out of notifications, it opens only on the server: %s (set the"
                " service's external URL: PROMETHEUS_EXTERNAL_URL, GRAFANA_URL, ...)",
                url.split("?")[0],
            )
        return False

    def runbook(self, url: str, alertname: str) -> str:
        url = rebase(url, DEFAULT_PUBLIC_URL, self.public_url)
        if not url or self.opens(url):
            return url
        return f"{self.public_url.rstrip('/')}{RUNBOOK_PATH}#{alertname.lower()}"

    def dashboard(self, url: str) -> str:
        url = rebase(url, DEFAULT_GRAFANA_URL, self.grafana_url)
        return url if self.opens(url) else ""

    def other(self, url: str) -> str:
        """A link the bridge cannot rebuild (Prometheus' graph): kept if it opens."""
        return url if self.opens(url) else ""
