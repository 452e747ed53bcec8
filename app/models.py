"""The domain schema. Alembic migrations (app/migrations) create it; keep them in step.

qr_id and bill_number use the "C" collation so their unique b-tree indexes also
serve prefix searches (`LIKE 'ABC%'`) and keyset pagination in byte order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.vocabulary import BAG_STATUSES, BAG_TYPES, BILL_STATUSES, ROLES
from common import tables


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = tables.USERS

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Bumped on logout, role change and disabling: every token issued before dies.
    token_version: Mapped[int] = mapped_column(Integer, server_default="0")
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (CheckConstraint(f"role IN {ROLES}", name="users_role_valid"),)


class Bag(Base):
    __tablename__ = tables.BAGS

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    qr_id: Mapped[str] = mapped_column(String(64, collation="C"), unique=True)
    bag_type: Mapped[str] = mapped_column(String(8))
    parent_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey(f"{tables.BAGS}.id"))
    status: Mapped[str] = mapped_column(String(16), server_default="created")
    location: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint(f"bag_type IN {BAG_TYPES}", name="bags_type_valid"),
        CheckConstraint(f"status IN {BAG_STATUSES}", name="bags_status_valid"),
        CheckConstraint(
            "bag_type = 'child' OR parent_id IS NULL", name="bags_parent_only_for_child"
        ),
        Index("ix_bags_parent_id", "parent_id"),
        # Filtered searches walk these in qr_id order (keyset pagination).
        Index("ix_bags_status_qr", "status", "qr_id"),
        Index("ix_bags_type_qr", "bag_type", "qr_id"),
    )


class Scan(Base):
    __tablename__ = tables.SCANS

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    bag_id: Mapped[int] = mapped_column(BigInteger, ForeignKey(f"{tables.BAGS}.id"))
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey(f"{tables.USERS}.id"))
    location: Mapped[str] = mapped_column(String(128))
    scanned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        Index("ix_scans_bag_time", "bag_id", "scanned_at"),
        Index("ix_scans_scanned_at", "scanned_at"),  # "scans today" is a range on this
    )


class Bill(Base):
    __tablename__ = tables.BILLS

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    bill_number: Mapped[str] = mapped_column(String(64, collation="C"), unique=True)
    created_by: Mapped[int] = mapped_column(BigInteger, ForeignKey(f"{tables.USERS}.id"))
    status: Mapped[str] = mapped_column(String(16), server_default="open")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint(f"status IN {BILL_STATUSES}", name="bills_status_valid"),
        Index("ix_bills_created_at", "created_at"),  # "bills today" is a range on this
    )


class BillBag(Base):
    __tablename__ = tables.BILL_BAGS

    bill_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey(f"{tables.BILLS}.id", ondelete="CASCADE"), primary_key=True
    )
    bag_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey(f"{tables.BAGS}.id"), primary_key=True
    )

    __table_args__ = (Index("ix_bill_bags_bag_id", "bag_id"),)


# --- security guard (app/guard) -------------------------------------------------


class SecurityBlock(Base):
    """An IP address or network refused with 403 until `expires_at` (or until lifted).

    Rows are kept after expiry or `unblock` (lifted_*), as the record of who blocked whom.
    """

    __tablename__ = tables.SECURITY_BLOCKS

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    network: Mapped[str] = mapped_column(String(49))  # canonical CIDR: 203.0.113.7/32
    reason: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(8))  # manual | auto
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    lifted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lifted_by: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        CheckConstraint("source IN ('manual', 'auto')", name="security_blocks_source_valid"),
        Index("ix_security_blocks_expires_at", "expires_at"),
    )


class SecurityEvent(Base):
    """One security event (failed login, lockout, block, suspicious scan, ...).

    Never a password, a token or a request body: `detail` holds only what the guard
    itself decided to record (counts, thresholds, a QR id, a signature kind).
    """

    __tablename__ = tables.SECURITY_EVENTS

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(48))
    client_ip: Mapped[str | None] = mapped_column(String(45))
    username: Mapped[str | None] = mapped_column(String(64))
    route: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[int | None] = mapped_column(Integer)
    # Repeats of the same event from the same client within seconds are one row.
    count: Mapped[int] = mapped_column(Integer, server_default="1")
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")

    __table_args__ = (
        Index("ix_security_events_at", "at"),
        Index("ix_security_events_kind_at", "kind", "at"),
    )


class IdempotencyKey(Base):
    """The first answer to a POST sent with an `Idempotency-Key` (app/idempotency.py).

    Written in the same transaction as the write it answers, so a retry finds either
    both or neither. Keys are per user and expire after a day.
    """

    __tablename__ = tables.IDEMPOTENCY_KEYS

    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(SmallInteger)
    response: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),)
