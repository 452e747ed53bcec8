"""Data access in one place. Every query here is index-backed (see app/models.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, delete, exists, func, insert, literal, select, tuple_, update
from sqlalchemy.orm import Session, aliased

from app.cursors import encode_bag_cursor, encode_scan_cursor
from app.models import Bag, Bill, BillBag, Scan, User


class NotFound(Exception):
    """A referenced row does not exist; the message names it."""


class Conflict(Exception):
    """A unique value is already taken; the message names it."""


# --- users -------------------------------------------------------------------------
def user_by_name(db: Session, username: str) -> User | None:
    return db.scalar(select(User).where(User.username == username))


def create_user(db: Session, username: str, password_hash: str, role: str) -> User:
    if user_by_name(db, username) is not None:
        raise Conflict(f"username {username!r} already exists")
    user = User(username=username, password_hash=password_hash, role=role)
    db.add(user)
    db.flush()
    return user


def user_state(db: Session, user_id: int) -> tuple[int, str, bool] | None:
    """(token_version, role, active) of the user, None when there is no such user."""
    row = db.execute(
        select(User.token_version, User.role, User.disabled_at.is_(None)).where(User.id == user_id)
    ).first()
    return (row[0], row[1], row[2]) if row else None


def revoke_tokens(db: Session, user_id: int) -> None:
    """Every token issued to the user so far stops working (logout)."""
    db.execute(update(User).where(User.id == user_id).values(token_version=User.token_version + 1))


def update_user(
    db: Session, username: str, role: str | None = None, disabled: bool | None = None
) -> User | None:
    """Change role and/or disabled state; either revokes the user's tokens. None: no user."""
    values: dict[str, Any] = {"token_version": User.token_version + 1}
    if role is not None:
        values["role"] = role
    if disabled is not None:
        values["disabled_at"] = func.now() if disabled else None
    user_id = db.scalar(
        update(User).where(User.username == username).values(**values).returning(User.id)
    )
    return db.get(User, user_id, populate_existing=True) if user_id is not None else None


def delete_user(db: Session, username: str) -> int | None:
    """Delete a user nothing refers to; the deleted id, or None if there is no such user.

    Scans and bills keep who made them, so a user with any is refused (Conflict):
    disable them instead."""
    user_id = db.scalar(select(User.id).where(User.username == username).with_for_update())
    if user_id is None:
        return None
    referenced = db.scalar(
        select(exists().where(Scan.user_id == user_id) | exists().where(Bill.created_by == user_id))
    )
    if referenced:
        raise Conflict(
            f"user {username!r} has scans or bills, which keep their author; "
            "disable the user instead (PATCH with disabled: true)"
        )
    db.execute(delete(User).where(User.id == user_id))
    return int(user_id)


# --- bags --------------------------------------------------------------------------
_Parent = aliased(Bag)
_BAG_COLUMNS = (
    Bag.qr_id,
    Bag.bag_type,
    _Parent.qr_id.label("parent_qr_id"),
    Bag.status,
    Bag.location,
    Bag.created_at,
    Bag.updated_at,
)


def _bag_select():  # type: ignore[no-untyped-def]
    return select(*_BAG_COLUMNS).outerjoin(_Parent, Bag.parent_id == _Parent.id)


def bag_dict(db: Session, qr_id: str) -> dict[str, Any] | None:
    row = db.execute(_bag_select().where(Bag.qr_id == qr_id)).mappings().first()
    return dict(row) if row else None


def bag_ids(db: Session, qr_ids: list[str]) -> dict[str, int]:
    rows = db.execute(select(Bag.qr_id, Bag.id).where(Bag.qr_id.in_(qr_ids))).all()
    return {qr: bag_id for qr, bag_id in rows}


def create_bags(db: Session, bags: list[dict[str, Any]]) -> int:
    """Insert bags (each: qr_id, bag_type, parent_qr_id, status, location) all or nothing."""
    qr_ids = [b["qr_id"] for b in bags]
    dupes_in_request = sorted({q for q in qr_ids if qr_ids.count(q) > 1})
    if dupes_in_request:
        raise Conflict(f"qr_id repeated in the request: {', '.join(dupes_in_request[:10])}")
    existing = bag_ids(db, qr_ids)
    if existing:
        raise Conflict(f"qr_id already exists: {', '.join(sorted(existing)[:10])}")
    parent_qrs = sorted({b["parent_qr_id"] for b in bags if b.get("parent_qr_id")})
    for b in bags:
        if b["bag_type"] == "parent" and b.get("parent_qr_id"):
            raise ValueError(f"bag {b['qr_id']}: a parent bag cannot have a parent")
    parents = _parent_ids(db, parent_qrs) if parent_qrs else {}
    rows = [
        {
            "qr_id": b["qr_id"],
            "bag_type": b["bag_type"],
            "status": b.get("status", "created"),
            "location": b.get("location"),
            "parent_id": parents.get(b["parent_qr_id"]) if b.get("parent_qr_id") else None,
        }
        for b in bags
    ]
    db.execute(insert(Bag), rows)
    return len(rows)


def _parent_ids(db: Session, parent_qrs: list[str]) -> dict[str, int]:
    rows = db.execute(
        select(Bag.qr_id, Bag.id, Bag.bag_type).where(Bag.qr_id.in_(parent_qrs))
    ).all()
    found = {qr: (bag_id, kind) for qr, bag_id, kind in rows}
    missing = [q for q in parent_qrs if q not in found]
    if missing:
        raise NotFound(f"parent bag not found: {', '.join(missing[:10])}")
    not_parents = [q for q, (_, kind) in found.items() if kind != "parent"]
    if not_parents:
        raise ValueError(f"not a parent bag: {', '.join(not_parents[:10])}")
    return {q: bag_id for q, (bag_id, _) in found.items()}


def search_bags(
    db: Session,
    prefix: str | None,
    status: str | None,
    bag_type: str | None,
    limit: int,
    after: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Keyset pagination in qr_id order. A prefix is a range on the C-collated unique index."""
    conditions = []
    if prefix:
        conditions.append(Bag.qr_id >= prefix)
        conditions.append(Bag.qr_id < prefix + "\U0010ffff")
    if after is not None:
        conditions.append(Bag.qr_id > after)
    if status:
        conditions.append(Bag.status == status)
    if bag_type:
        conditions.append(Bag.bag_type == bag_type)
    query = _bag_select().where(and_(*conditions)).order_by(Bag.qr_id).limit(limit + 1)
    rows = [dict(r) for r in db.execute(query).mappings()]
    next_cursor = encode_bag_cursor(rows[limit - 1]["qr_id"]) if len(rows) > limit else None
    return rows[:limit], next_cursor


# --- scans -------------------------------------------------------------------------
def record_scan(
    db: Session, bag_id: int, user_id: int, location: str, status: str | None
) -> dict[str, Any]:
    scan_id, scanned_at = db.execute(
        insert(Scan)
        .values(bag_id=bag_id, user_id=user_id, location=location)
        .returning(Scan.id, Scan.scanned_at)
    ).one()
    values: dict[str, Any] = {"location": location, "updated_at": scanned_at}
    if status:
        # Only billing marks a bag billed, and no scan takes it off its bill.
        values["status"] = case((Bag.status == "billed", Bag.status), else_=literal(status))
    bag_status = db.execute(
        update(Bag).where(Bag.id == bag_id).values(**values).returning(Bag.status)
    ).scalar_one()
    # A client cannot set "billed" (schemas.SettableBagStatus): billed now was billed before.
    return {"id": scan_id, "scanned_at": scanned_at, "bag_billed": bag_status == "billed"}


def bag_scans(
    db: Session, bag_id: int, limit: int, before: tuple[datetime, int] | None
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first, keyset on (scanned_at, id) via ix_scans_bag_time."""
    query = (
        select(Scan.id, Bag.qr_id, User.username, Scan.location, Scan.scanned_at)
        .join(Bag, Bag.id == Scan.bag_id)
        .join(User, User.id == Scan.user_id)
        .where(Scan.bag_id == bag_id)
    )
    if before is not None:
        ts, scan_id = before
        query = query.where(
            tuple_(Scan.scanned_at, Scan.id) < tuple_(literal(ts), literal(scan_id))
        )
    query = query.order_by(Scan.scanned_at.desc(), Scan.id.desc()).limit(limit + 1)
    rows = [dict(r) for r in db.execute(query).mappings()]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_scan_cursor(last["scanned_at"], last["id"])
    return rows[:limit], next_cursor


# --- bills -------------------------------------------------------------------------
def create_bill(db: Session, bill_number: str, user_id: int, qr_ids: list[str]) -> None:
    if db.scalar(select(Bill.id).where(Bill.bill_number == bill_number)) is not None:
        raise Conflict(f"bill_number {bill_number!r} already exists")
    unique_qrs = list(dict.fromkeys(qr_ids))
    ids = _lock_bags(db, unique_qrs) if unique_qrs else {}
    missing = [q for q in unique_qrs if q not in ids]
    if missing:
        raise NotFound(f"bag not found: {', '.join(missing[:10])}")
    billed = _open_bills_of(db, list(ids.values()))
    if billed:
        listed = ", ".join(f"{qr} (bill {number})" for qr, number in billed[:10])
        raise Conflict(f"already on an open bill: {listed}")
    bill_id = db.execute(
        insert(Bill).values(bill_number=bill_number, created_by=user_id).returning(Bill.id)
    ).scalar_one()
    if ids:
        db.execute(insert(BillBag), [{"bill_id": bill_id, "bag_id": b} for b in ids.values()])
        db.execute(
            update(Bag)
            .where(Bag.id.in_(list(ids.values())))
            .values(status="billed", updated_at=func.now())
        )


def _lock_bags(db: Session, qr_ids: list[str]) -> dict[str, int]:
    """The bags' ids, their rows locked until commit (in id order, so two bills over
    the same bags queue instead of deadlocking): a bag goes on one open bill at most."""
    rows = db.execute(
        select(Bag.qr_id, Bag.id).where(Bag.qr_id.in_(qr_ids)).order_by(Bag.id).with_for_update()
    ).all()
    return {qr: bag_id for qr, bag_id in rows}


def _open_bills_of(db: Session, bag_ids_: list[int]) -> list[tuple[str, str]]:
    """(qr_id, bill_number) of each of these bags already on an open bill."""
    rows = db.execute(
        select(Bag.qr_id, Bill.bill_number)
        .join(BillBag, BillBag.bag_id == Bag.id)
        .join(Bill, Bill.id == BillBag.bill_id)
        .where(BillBag.bag_id.in_(bag_ids_), Bill.status == "open")
        .order_by(Bag.qr_id)
    ).all()
    return [(qr, number) for qr, number in rows]


def bill_dict(db: Session, bill_number: str) -> dict[str, Any] | None:
    row = (
        db.execute(
            select(
                Bill.id,
                Bill.bill_number,
                Bill.status,
                User.username.label("created_by"),
                Bill.created_at,
            )
            .join(User, User.id == Bill.created_by)
            .where(Bill.bill_number == bill_number)
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    qrs = db.scalars(
        select(Bag.qr_id)
        .join(BillBag, BillBag.bag_id == Bag.id)
        .where(BillBag.bill_id == row["id"])
        .order_by(Bag.qr_id)
    ).all()
    out = dict(row)
    out.pop("id")
    out["bag_qr_ids"] = list(qrs)
    return out


def hot_bags(db: Session, n: int) -> list[dict[str, Any]]:
    """The most recently scanned bags: what cache warming preloads."""
    recent = (select(Scan.bag_id).order_by(Scan.scanned_at.desc()).limit(n * 2)).subquery()
    query = _bag_select().where(Bag.id.in_(select(recent.c.bag_id))).limit(n)
    return [dict(r) for r in db.execute(query).mappings()]
