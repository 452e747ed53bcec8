"""IP blocks with expiry: kept in PostgreSQL, checked from memory.

Blocks live in the `security_blocks` table, so they survive restarts and reach
every worker and replica; `tracetrack security block|unblock|list` and the admin
API write there. Each worker re-reads the active blocks every
`block_refresh_seconds` on a background thread and answers from the copy in its
memory: checking a request costs a set lookup (plus a walk over the blocked
networks, if there are any), never a query.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from app.models import SecurityBlock
from common.periodic import Periodic

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class BadNetwork(ValueError):
    pass


# The widest network one block may cover, per IP version (a /8 is 16 million addresses).
WIDEST_BLOCK = {4: 8, 6: 32}


def parse_network(text: str) -> Network:
    """An address or a CIDR network, canonical (`10.1.2.3/8` is refused, not guessed)."""
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        raise BadNetwork(
            f"{text!r} is not an IP address or a network in CIDR notation"
            " (e.g. 203.0.113.7 or 203.0.113.0/24; host bits must be zero)"
        ) from exc


@dataclass(frozen=True)
class Block:
    id: int
    network: str
    reason: str
    source: str
    created_by: str
    created_at: datetime
    expires_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "network": self.network,
            "reason": self.reason,
            "source": self.source,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
        }


def _block(row: SecurityBlock) -> Block:
    return Block(
        row.id,
        row.network,
        row.reason,
        row.source,
        row.created_by,
        row.created_at,
        row.expires_at,
    )


def _active() -> sa.ColumnElement[bool]:
    return sa.and_(SecurityBlock.lifted_at.is_(None), SecurityBlock.expires_at > sa.func.now())


def active_blocks(db: Session) -> list[Block]:
    rows = db.scalars(sa.select(SecurityBlock).where(_active()).order_by(SecurityBlock.id))
    return [_block(r) for r in rows]


def add_block(
    db: Session,
    network: str,
    duration: timedelta,
    reason: str,
    created_by: str,
    source: str = "manual",
) -> Block:
    """Block `network` for `duration`. Commits. An active block of the same network is
    replaced (its expiry and reason are the new ones), so blocking twice is not two rows."""
    net = parse_network(network)
    widest = WIDEST_BLOCK[net.version]
    if net.prefixlen < widest:
        # 0.0.0.0/0 took the whole app down (every client 403, the admin API too).
        raise BadNetwork(
            f"{net} is wider than a /{widest}: it would block far more than one offender"
            f"{' (every client)' if net.prefixlen == 0 else ''}; block narrower networks"
        )
    if duration.total_seconds() <= 0:
        raise ValueError("the block's duration must be positive")
    if not reason.strip():
        raise ValueError("say why: the reason is shown to whoever reviews the block")
    now = datetime.now(UTC)
    db.execute(
        sa.update(SecurityBlock)
        .where(_active(), SecurityBlock.network == str(net))
        .values(lifted_at=now, lifted_by=f"replaced by {created_by}"[:64])
    )
    row = SecurityBlock(
        network=str(net),
        reason=reason.strip(),
        source=source,
        created_by=created_by[:64],
        created_at=now,
        expires_at=now + duration,
    )
    db.add(row)
    db.commit()
    return _block(row)


def lift_block(db: Session, network: str, lifted_by: str) -> int:
    """Lift the active blocks of exactly `network`; returns how many. Commits."""
    net = parse_network(network)
    result = db.execute(
        sa.update(SecurityBlock)
        .where(_active(), SecurityBlock.network == str(net))
        .values(lifted_at=datetime.now(UTC), lifted_by=lifted_by[:64])
    )
    db.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


class BlockList:
    """This worker's copy of the active blocks."""

    def __init__(self, sessions: sessionmaker[Session] | None, refresh_seconds: float) -> None:
        self._sessions = sessions
        self._hosts: dict[str, float] = {}  # exact address -> expiry (epoch seconds)
        self._networks: list[tuple[Network, float]] = []
        self._refresher = Periodic("guard-blocks", refresh_seconds, self._refresh_logging_changes)
        self._failing = False
        self.count = 0
        self.on_refresh: list[Any] = []  # callables(count), e.g. the blocked-clients gauge

    def blocked(self, ip: str, now: float) -> bool:
        until = self._hosts.get(ip)
        if until is not None:
            return until > now
        if not self._networks:
            return False
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        for net, until in self._networks:
            # `in` compares integers only: an IPv4 address must not match an IPv6 network.
            if until > now and address.version == net.version and address in net:
                return True
        return False

    def load(self, blocks: list[tuple[str, datetime]]) -> None:
        """(network, expires_at) of the active blocks."""
        hosts: dict[str, float] = {}
        networks: list[tuple[Network, float]] = []
        for network, expires_at in blocks:
            net = ipaddress.ip_network(network)
            until = expires_at.timestamp()
            if net.num_addresses == 1:
                hosts[str(net.network_address)] = until
            else:
                networks.append((net, until))
        self._hosts, self._networks = hosts, networks
        self.count = len(blocks)
        for callback in self.on_refresh:
            callback(self.count)

    def refresh(self) -> None:
        if self._sessions is None:
            return
        # Two columns as plain rows, not ORM objects: every worker runs this every few
        # seconds for the life of the process.
        with self._sessions() as db:
            rows = db.execute(
                sa.select(SecurityBlock.network, SecurityBlock.expires_at).where(_active())
            ).all()
        self.load([(network, expires_at) for network, expires_at in rows])

    def start(self) -> None:
        if self._sessions is not None:
            self._refresher.start()

    def stop(self) -> None:
        self._refresher.stop()

    def _refresh_logging_changes(self) -> None:
        try:
            self.refresh()
            if self._failing:
                log.warning("block list readable again")
            self._failing = False
        except Exception as exc:  # noqa: BLE001 - keep the last list; PostgreSQL may come back
            if not self._failing:
                log.warning("cannot re-read the block list (keeping the last one): %s", exc)
            self._failing = True


def expires_in(block: Block, now: float | None = None) -> float:
    now = time.time() if now is None else now
    return block.expires_at.timestamp() - now
