"""The notification pages (`/n/<token>`) and the acknowledgements made from them.

Each accepted notification gets one page token: 128 random bits (22 URL-safe
characters), so the link an SMS carries cannot be guessed; it stops working after
`BRIDGE_PAGE_TTL_HOURS`. Both members of an HA pair accepting the same notification keep
the first token (unique per notification). An acknowledgement belongs to the alert
group (Alertmanager's group key) until the group resolves: it stops the re-pages of
that group and records who and when.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Connection, Float, Index, Integer, String, Table, Text, select

from alert_bridge.store import Store, _insert, metadata

TOKEN_BYTES = 16  # 128 bits
# What new_token() makes (URL-safe base64). Anything else is no page, answered without a
# query: a NUL in a path would otherwise reach PostgreSQL (an HA outbox) and answer 500.
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,64}")

pages = Table(
    "bridge_pages",
    metadata,
    Column("token", String(64), primary_key=True),
    Column("notification_key", String(64), nullable=False, unique=True),
    Column("group_key", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)

acks = Table(
    "bridge_acks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("group_key", Text, nullable=False),
    Column("acked_by", String(100), nullable=False),
    Column("acked_at", Float, nullable=False),
    Column("notification_key", String(64), nullable=False),
    Index("ix_bridge_acks_group", "group_key"),
)


@dataclass(frozen=True)
class Page:
    token: str
    notification_key: str
    group_key: str
    created_at: float
    expires_at: float


@dataclass(frozen=True)
class Ack:
    acked_by: str
    acked_at: float


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def ensure_page(
    store: Store, conn: Connection, key: str, group_key: str, now: float, ttl: float
) -> None:
    """Give the notification its page, unless it has one (a duplicate delivery)."""
    conn.execute(
        _insert(store.engine, pages).on_conflict_do_nothing(index_elements=["notification_key"]),
        {
            "token": new_token(),
            "notification_key": key,
            "group_key": group_key,
            "created_at": now,
            "expires_at": now + ttl,
        },
    )


def token_for(store: Store, key: str) -> str | None:
    with store.engine.connect() as conn:
        return conn.execute(select(pages.c.token).where(pages.c.notification_key == key)).scalar()


def page_by_token(store: Store, token: str) -> Page | None:
    if not _TOKEN_SHAPE.fullmatch(token):
        return None
    with store.engine.connect() as conn:
        row = conn.execute(select(pages).where(pages.c.token == token)).first()
    return Page(**row._mapping) if row else None


def record_ack(store: Store, page: Page, who: str, now: float) -> Ack:
    """Acknowledge the page's group; an earlier acknowledgement of it stands."""
    with store.tx() as conn:
        existing = _ack(conn, page.group_key, since=_group_start(conn, page.group_key))
        if existing is not None:
            return existing
        conn.execute(
            acks.insert().values(
                group_key=page.group_key,
                acked_by=who,
                acked_at=now,
                notification_key=page.notification_key,
            )
        )
    return Ack(who, now)


def ack_of(store: Store, group_key: str) -> Ack | None:
    """The acknowledgement of the group's current episode (since it last fired anew)."""
    with store.engine.connect() as conn:
        return _ack(conn, group_key, since=_group_start(conn, group_key))


def _group_start(conn: Connection, group_key: str) -> float:
    """When the group's current episode began: its first firing notification after
    its last resolved one (an acknowledgement does not outlive a resolution)."""
    from alert_bridge.store import notifications

    last_resolved = conn.execute(
        select(notifications.c.received_at)
        .where(notifications.c.group_key == group_key, notifications.c.status == "resolved")
        .order_by(notifications.c.received_at.desc())
        .limit(1)
    ).scalar()
    return float(last_resolved or 0.0)


def _ack(conn: Connection, group_key: str, since: float) -> Ack | None:
    row = conn.execute(
        select(acks.c.acked_by, acks.c.acked_at)
        .where(acks.c.group_key == group_key, acks.c.acked_at >= since)
        .order_by(acks.c.acked_at)
        .limit(1)
    ).first()
    return Ack(row[0], float(row[1])) if row else None


def notification(store: Store, key: str) -> dict[str, Any] | None:
    """The stored notification row (kind, severity, status, body, received_at)."""
    from alert_bridge.store import notifications

    with store.engine.connect() as conn:
        row = conn.execute(select(notifications).where(notifications.c.key == key)).first()
    return dict(row._mapping) if row else None
