"""Automatic blocks (TRACETRACK_AUTO_BLOCK=true; off by default).

A client IP that trips the rules `auto_block_strikes` times within
`auto_block_window_seconds` is blocked for `auto_block_seconds`, like an operator's
`tracetrack security block` with source "auto". Strikes: lockouts started from that
IP (either scope) and rate limits tripped by it. Addresses in
`auto_block_exempt` (loopback by default: a misconfigured proxy makes every client
look like it) are never blocked automatically.

Off by default because many users share one address behind a NAT: the lockouts and
rate limits already stop the attack, and the alerts put a human in front of the
decision to block a whole site. Strikes are counted per worker (events reach this
listener from the worker's own event writer thread), so with N workers a client is
blocked after at most N x strikes.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections import deque
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from app.guard.blocks import BlockList, add_block
from app.guard.events import Event
from common.settings import Settings

log = logging.getLogger(__name__)

STRIKES = frozenset({"account_locked", "client_ip_locked", "rate_limited"})


class AutoBlocker:
    def __init__(
        self, settings: Settings, sessions: sessionmaker[Session], blocks: BlockList
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._blocks = blocks
        self._exempt = [
            ipaddress.ip_network(n.strip())
            for n in settings.auto_block_exempt.split(",")
            if n.strip()
        ]
        self._strikes: dict[str, deque[float]] = {}

    def _exempted(self, ip: str) -> bool:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return True
        return any(address.version == n.version and address in n for n in self._exempt)

    def on_event(self, event: Event) -> None:
        ip = event.client_ip
        if event.kind not in STRIKES or not ip or self._exempted(ip):
            return
        s = self._settings
        now = time.time()
        strikes = self._strikes.setdefault(ip, deque())
        strikes.extend([now] * min(event.count, s.auto_block_strikes))
        while strikes and strikes[0] < now - s.auto_block_window_seconds:
            strikes.popleft()
        if len(strikes) < s.auto_block_strikes or self._blocks.blocked(ip, now):
            return
        del self._strikes[ip]
        try:
            with self._sessions() as db:
                add_block(
                    db,
                    ip,
                    timedelta(seconds=s.auto_block_seconds),
                    f"automatic: {s.auto_block_strikes} lockouts or rate limits within"
                    f" {s.auto_block_window_seconds} s",
                    "auto",
                    source="auto",
                )
            self._blocks.refresh()
            log.warning("blocked %s automatically for %d s", ip, s.auto_block_seconds)
        except Exception as exc:  # noqa: BLE001 - the rules still hold without the block
            log.warning("could not block %s automatically: %s", ip, exc)
