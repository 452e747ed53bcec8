"""Data access in one place. Every query here is index-backed (see app/models.py).

Each function takes `db`: anything with asyncpg's `fetch`/`fetchrow`/`fetchval`/
`execute`/`executemany`, i.e. the pool (`app.db.Database`: one statement in autocommit,
what reads use) or a connection inside `Database.transaction()` (what writes use).
The SQL is written out, not built per call: asyncpg prepares each text once per
connection, so a lookup costs one round trip and no statement compilation.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any, Protocol

import asyncpg

from app.cursors import encode_bag_cursor, encode_scan_cursor


class Db(Protocol):
    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]: ...
    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None: ...
    async def fetchval(self, sql: str, *args: Any) -> Any: ...
    async def execute(self, sql: str, *args: Any) -> str: ...


class NotFound(Exception):
    """A referenced row does not exist; the message names it."""


class Conflict(Exception):
    """A unique value is already taken; the message names it."""


# --- users -------------------------------------------------------------------------
_USER_COLUMNS = "id, username, role, created_at, disabled_at, token_version"


async def user_by_name(db: Db, username: str) -> asyncpg.Record | None:
    """id, username, role, created_at, disabled_at, token_version and password_hash."""
    return await db.fetchrow(
        f"SELECT {_USER_COLUMNS}, password_hash FROM users WHERE username = $1", username
    )


async def create_user(db: Db, username: str, password_hash: str, role: str) -> asyncpg.Record:
    """The new user's row (_USER_COLUMNS); Conflict when the name is taken."""
    row = await db.fetchrow(
        "INSERT INTO users (username, password_hash, role) VALUES ($1, $2, $3) "
        f"ON CONFLICT (username) DO NOTHING RETURNING {_USER_COLUMNS}",
        username,
        password_hash,
        role,
    )
    if row is None:
        raise Conflict(f"username {username!r} already exists")
    return row


async def user_state(db: Db, user_id: int) -> tuple[int, str, bool] | None:
    """(token_version, role, active) of the user, None when there is no such user."""
    row = await db.fetchrow(
        "SELECT token_version, role, disabled_at IS NULL FROM users WHERE id = $1", user_id
    )
    return (row[0], row[1], row[2]) if row is not None else None


async def revoke_tokens(db: Db, user_id: int) -> None:
    """Every token issued to the user so far stops working (logout)."""
    await db.execute("UPDATE users SET token_version = token_version + 1 WHERE id = $1", user_id)


async def update_user(
    db: Db, username: str, role: str | None = None, disabled: bool | None = None
) -> asyncpg.Record | None:
    """Change role and/or disabled state; either revokes the user's tokens. None: no user."""
    return await db.fetchrow(
        "UPDATE users SET token_version = token_version + 1, role = coalesce($2, role), "
        "disabled_at = CASE WHEN $3::boolean IS NULL THEN disabled_at "
        "WHEN $3::boolean THEN now() ELSE NULL END "
        f"WHERE username = $1 RETURNING {_USER_COLUMNS}",
        username,
        role,
        disabled,
    )


async def delete_user(db: Db, username: str) -> int | None:
    """Delete a user nothing refers to; the deleted id, or None if there is no such user.
    Call inside a transaction.

    Scans and bills keep who made them, so a user with any is refused (Conflict):
    disable them instead."""
    user_id = await db.fetchval("SELECT id FROM users WHERE username = $1 FOR UPDATE", username)
    if user_id is None:
        return None
    referenced = await db.fetchval(
        "SELECT EXISTS (SELECT 1 FROM scans WHERE user_id = $1) "
        "OR EXISTS (SELECT 1 FROM bills WHERE created_by = $1)",
        user_id,
    )
    if referenced:
        raise Conflict(
            f"user {username!r} has scans or bills, which keep their author; "
            "disable the user instead (PATCH with disabled: true)"
        )
    await db.execute("DELETE FROM users WHERE id = $1", user_id)
    return int(user_id)


# --- bags --------------------------------------------------------------------------
# The columns of BagOut, in its order; `b` is the bag, `p` its parent.
_BAG_SELECT = (
    "SELECT b.qr_id, b.bag_type, p.qr_id AS parent_qr_id, b.status, b.location, "
    "b.created_at, b.updated_at FROM bags b LEFT JOIN bags p ON p.id = b.parent_id"
)
_BAG_BY_QR = _BAG_SELECT + " WHERE b.qr_id = $1"


async def bag_dict(db: Db, qr_id: str) -> dict[str, Any] | None:
    row = await db.fetchrow(_BAG_BY_QR, qr_id)
    return dict(row) if row is not None else None


async def bag_ids(db: Db, qr_ids: list[str]) -> dict[str, int]:
    rows = await db.fetch("SELECT qr_id, id FROM bags WHERE qr_id = ANY($1::text[])", qr_ids)
    return {r["qr_id"]: r["id"] for r in rows}


async def bag_id(db: Db, qr_id: str) -> int | None:
    return await db.fetchval("SELECT id FROM bags WHERE qr_id = $1", qr_id)


async def create_bags(db: Db, bags: list[dict[str, Any]]) -> int:
    """Insert bags (each: qr_id, bag_type, parent_qr_id, status, location) all or nothing.

    Call inside a transaction: the existence checks and the insert must see one state.
    """
    qr_ids = [b["qr_id"] for b in bags]
    dupes_in_request = sorted(q for q, n in Counter(qr_ids).items() if n > 1)
    if dupes_in_request:
        raise Conflict(f"qr_id repeated in the request: {', '.join(dupes_in_request[:10])}")
    existing = await bag_ids(db, qr_ids)
    if existing:
        raise Conflict(f"qr_id already exists: {', '.join(sorted(existing)[:10])}")
    for b in bags:
        if b["bag_type"] == "parent" and b.get("parent_qr_id"):
            raise ValueError(f"bag {b['qr_id']}: a parent bag cannot have a parent")
    parent_qrs = sorted({b["parent_qr_id"] for b in bags if b.get("parent_qr_id")})
    parents = await _parent_ids(db, parent_qrs) if parent_qrs else {}
    await db.execute(
        "INSERT INTO bags (qr_id, bag_type, status, location, parent_id) "
        "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])",
        qr_ids,
        [b["bag_type"] for b in bags],
        [b.get("status", "created") for b in bags],
        [b.get("location") for b in bags],
        [parents.get(b["parent_qr_id"]) if b.get("parent_qr_id") else None for b in bags],
    )
    return len(bags)


async def _parent_ids(db: Db, parent_qrs: list[str]) -> dict[str, int]:
    rows = await db.fetch(
        "SELECT qr_id, id, bag_type FROM bags WHERE qr_id = ANY($1::text[])", parent_qrs
    )
    found = {r["qr_id"]: (r["id"], r["bag_type"]) for r in rows}
    missing = [q for q in parent_qrs if q not in found]
    if missing:
        raise NotFound(f"parent bag not found: {', '.join(missing[:10])}")
    not_parents = [q for q, (_, kind) in found.items() if kind != "parent"]
    if not_parents:
        raise ValueError(f"not a parent bag: {', '.join(not_parents[:10])}")
    return {q: bag_id for q, (bag_id, _) in found.items()}


async def search_bags(
    db: Db,
    prefix: str | None,
    status: str | None,
    bag_type: str | None,
    limit: int,
    after: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Keyset pagination in qr_id order. A prefix is a range on the C-collated unique index."""
    conditions: list[str] = []
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if prefix:
        upper = prefix + "\U0010ffff"  # above every id that starts with the prefix
        conditions.append(f"b.qr_id >= {arg(prefix)} AND b.qr_id < {arg(upper)}")
    if after is not None:
        conditions.append(f"b.qr_id > {arg(after)}")
    if status:
        conditions.append(f"b.status = {arg(status)}")
    if bag_type:
        conditions.append(f"b.bag_type = {arg(bag_type)}")
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    sql = f"{_BAG_SELECT}{where} ORDER BY b.qr_id LIMIT {arg(limit + 1)}"
    rows = [dict(r) for r in await db.fetch(sql, *args)]
    next_cursor = encode_bag_cursor(rows[limit - 1]["qr_id"]) if len(rows) > limit else None
    return rows[:limit], next_cursor


# --- scans -------------------------------------------------------------------------
# One statement, so one round trip and atomic without BEGIN/COMMIT: find the bag, record
# the scan, move the bag. No row back means no such bag. Only billing marks a bag billed,
# and no scan takes it off its bill (its status stays, its location moves).
_RECORD_SCAN = (
    "WITH bag AS (SELECT id FROM bags WHERE qr_id = $1), "
    "scan AS (INSERT INTO scans (bag_id, user_id, location) SELECT id, $2, $3 FROM bag "
    "RETURNING id, bag_id, scanned_at), "
    "moved AS (UPDATE bags SET location = $3, updated_at = scan.scanned_at, "
    "status = CASE WHEN bags.status = 'billed' THEN bags.status "
    "ELSE coalesce($4, bags.status) END "
    "FROM scan WHERE bags.id = scan.bag_id RETURNING bags.status) "
    "SELECT scan.id, scan.scanned_at, moved.status = 'billed' AS bag_billed FROM scan, moved"
)


async def record_scan(
    db: Db, qr_id: str, user_id: int, location: str, status: str | None
) -> dict[str, Any] | None:
    """The new scan's id, scanned_at and bag_billed (the bag is on a bill: a client
    cannot set "billed", vocabulary.SettableBagStatus), or None when there is no bag `qr_id`."""
    row = await db.fetchrow(_RECORD_SCAN, qr_id, user_id, location, status)
    return dict(row) if row is not None else None


_SCANS = (
    "SELECT s.id, b.qr_id, u.username, s.location, s.scanned_at FROM scans s "
    "JOIN bags b ON b.id = s.bag_id JOIN users u ON u.id = s.user_id "
    "WHERE s.bag_id = (SELECT id FROM bags WHERE qr_id = $1)"
)


async def bag_scans(
    db: Db, qr_id: str, limit: int, before: tuple[datetime, int] | None
) -> tuple[list[dict[str, Any]], str | None] | None:
    """Newest first, keyset on (scanned_at, id) via ix_scans_bag_time; None: no such bag."""
    order = " ORDER BY s.scanned_at DESC, s.id DESC LIMIT $2"
    if before is None:
        records = await db.fetch(_SCANS + order, qr_id, limit + 1)
    else:
        records = await db.fetch(
            _SCANS + " AND (s.scanned_at, s.id) < ($3, $4)" + order,
            qr_id,
            limit + 1,
            before[0],
            before[1],
        )
    if not records and await bag_id(db, qr_id) is None:
        return None
    rows = [dict(r) for r in records]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_scan_cursor(last["scanned_at"], last["id"])
    return rows[:limit], next_cursor


# --- bills -------------------------------------------------------------------------
async def create_bill(db: Db, bill_number: str, user_id: int, qr_ids: list[str]) -> None:
    """Call inside a transaction."""
    if await db.fetchval("SELECT 1 FROM bills WHERE bill_number = $1", bill_number):
        raise Conflict(f"bill_number {bill_number!r} already exists")
    unique_qrs = list(dict.fromkeys(qr_ids))
    ids = await _lock_bags(db, unique_qrs) if unique_qrs else {}
    missing = [q for q in unique_qrs if q not in ids]
    if missing:
        raise NotFound(f"bag not found: {', '.join(missing[:10])}")
    billed = await _open_bills_of(db, list(ids.values()))
    if billed:
        listed = ", ".join(f"{qr} (bill {number})" for qr, number in billed[:10])
        raise Conflict(f"already on an open bill: {listed}")
    bill_id = await db.fetchval(
        "INSERT INTO bills (bill_number, created_by) VALUES ($1, $2) RETURNING id",
        bill_number,
        user_id,
    )
    if ids:
        bag_id_list = list(ids.values())
        await db.execute(
            "INSERT INTO bill_bags (bill_id, bag_id) SELECT $1, unnest($2::bigint[])",
            bill_id,
            bag_id_list,
        )
        await db.execute(
            "UPDATE bags SET status = 'billed', updated_at = now() WHERE id = ANY($1::bigint[])",
            bag_id_list,
        )


async def _lock_bags(db: Db, qr_ids: list[str]) -> dict[str, int]:
    """The bags' ids, their rows locked until commit (in id order, so two bills over
    the same bags queue instead of deadlocking): a bag goes on one open bill at most."""
    rows = await db.fetch(
        "SELECT qr_id, id FROM bags WHERE qr_id = ANY($1::text[]) ORDER BY id FOR UPDATE",
        qr_ids,
    )
    return {r["qr_id"]: r["id"] for r in rows}


async def _open_bills_of(db: Db, bag_ids_: list[int]) -> list[tuple[str, str]]:
    """(qr_id, bill_number) of each of these bags already on an open bill."""
    rows = await db.fetch(
        "SELECT b.qr_id, bl.bill_number FROM bill_bags bb JOIN bags b ON b.id = bb.bag_id "
        "JOIN bills bl ON bl.id = bb.bill_id "
        "WHERE bb.bag_id = ANY($1::bigint[]) AND bl.status = 'open' ORDER BY b.qr_id",
        bag_ids_,
    )
    return [(r["qr_id"], r["bill_number"]) for r in rows]


async def bill_dict(db: Db, bill_number: str) -> dict[str, Any] | None:
    row = await db.fetchrow(
        "SELECT bl.bill_number, bl.status, u.username AS created_by, bl.created_at, "
        "coalesce((SELECT array_agg(b.qr_id ORDER BY b.qr_id) FROM bill_bags bb "
        "JOIN bags b ON b.id = bb.bag_id WHERE bb.bill_id = bl.id), '{}') AS bag_qr_ids "
        "FROM bills bl JOIN users u ON u.id = bl.created_by WHERE bl.bill_number = $1",
        bill_number,
    )
    return dict(row) if row is not None else None


async def hot_bags(db: Db, n: int) -> list[dict[str, Any]]:
    """The bags in motion, which cache warming preloads: the `n` most recently created
    (ids grow with creation) and the `n` most recently scanned (up to 2n bags). The
    shipped locustfile looks up the same kind of set (loadtest/locustfile.py)."""
    rows = await db.fetch(
        _BAG_SELECT + " WHERE b.id IN ((SELECT id FROM bags ORDER BY id DESC LIMIT $1) "
        "UNION (SELECT bag_id FROM scans ORDER BY scanned_at DESC LIMIT $1))",
        n,
    )
    return [dict(r) for r in rows]
