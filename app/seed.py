"""`tracetrack seed`: realistic demo data loaded with COPY, fast enough for 5,000,000 bags.

Shape: one parent bag per nine children, `scans_per_bag` scans per bag spread over
the last 90 days (some today), one bill per 20 parents, users of every role.
Into empty tables the loader drops the secondary indexes and foreign keys, COPYs,
then rebuilds them (the standard bulk-load recipe: one sort per index instead of
millions of index insertions and trigger calls). Into non-empty tables it COPYs
with the indexes in place.
"""

from __future__ import annotations

import io
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg2
from tqdm import tqdm

from app.security import hash_password
from common import tables

CHUNK = 200_000
CHILDREN_PER_PARENT = 9
PARENTS_PER_BILL = 20
SEED_PASSWORD = "tracetrack-seed"
LOCATIONS = (
    "Mumbai Hub",
    "Delhi Hub",
    "Chennai Hub",
    "Kolkata Hub",
    "Bengaluru Hub",
    "Hyderabad Hub",
    "Pune Depot",
    "Ahmedabad Depot",
    "Jaipur Depot",
    "Lucknow Depot",
)
STATUSES = ("created", "in_transit", "in_transit", "delivered", "delivered", "delivered")
BULK_TABLES = (tables.BAGS, tables.SCANS, tables.BILLS, tables.BILL_BAGS)


@dataclass
class SeedStats:
    bags: int = 0
    scans: int = 0
    bills: int = 0
    users: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        total = sum(self.seconds.values())
        parts = ", ".join(f"{k} {v:.1f}s" for k, v in self.seconds.items())
        return (
            f"seeded {self.bags:,} bags, {self.scans:,} scans, {self.bills:,} bills, "
            f"{self.users} users in {total:.1f}s ({parts}); seeded users' password: "
            f"{SEED_PASSWORD}"
        )


def _dsn(url: str) -> str:
    return url.replace("postgresql+psycopg2://", "postgresql://", 1)


def _next_id(cur, table: str) -> int:
    cur.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}")
    return int(cur.fetchone()[0])


def _copy(cur, table: str, columns: str, lines: list[str]) -> None:
    if lines:
        cur.copy_expert(
            f"COPY {table} ({columns}) FROM STDIN", io.StringIO("\n".join(lines) + "\n")
        )


class _BulkLoadIndexes:
    """Drop non-primary-key indexes and foreign keys of the bulk tables; rebuild on exit."""

    def __init__(self, cur) -> None:
        self.cur = cur
        cur.execute(
            """
            SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
            FROM pg_constraint WHERE contype IN ('f', 'u')
              AND conrelid::regclass::text = ANY(%s)""",
            (list(BULK_TABLES),),
        )
        self.constraints = cur.fetchall()
        cur.execute(
            """
            SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
            FROM pg_index i LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid
            WHERE i.indrelid::regclass::text = ANY(%s) AND NOT i.indisprimary AND c.oid IS NULL""",
            (list(BULK_TABLES),),
        )
        self.indexes = cur.fetchall()

    def drop(self) -> None:
        for table, name, _ in self.constraints:
            self.cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _ in self.indexes:
            self.cur.execute(f"DROP INDEX {name}")

    def rebuild(self) -> None:
        for _, ddl in self.indexes:
            self.cur.execute(ddl)
        # Unique constraints before foreign keys that may reference them.
        for table, name, ddl in sorted(self.constraints, key=lambda c: c[2].startswith("FOREIGN")):
            self.cur.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {ddl}')


def seed_database(
    url: str,
    bags: int,
    scans_per_bag: float = 1.0,
    users: int = 50,
    progress: bool = True,
    rng_seed: int = 42,
) -> SeedStats:
    stats = SeedStats()
    rng = random.Random(rng_seed)
    conn = psycopg2.connect(_dsn(url))
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SET maintenance_work_mem = '512MB'")
            cur.execute("SET max_parallel_maintenance_workers = 2")
            t = time.perf_counter()
            user_ids = _seed_users(cur, users, rng)
            stats.users = len(user_ids["all"])
            stats.seconds["users"] = time.perf_counter() - t

            cur.execute("SELECT NOT EXISTS (SELECT 1 FROM bags LIMIT 1)")
            empty = bool(cur.fetchone()[0])
            indexes = _BulkLoadIndexes(cur) if empty and bags >= 100_000 else None
            if indexes:
                indexes.drop()

            t = time.perf_counter()
            bag_start, stats.bags = _seed_bags(cur, bags, rng, progress)
            stats.seconds["bags"] = time.perf_counter() - t
            t = time.perf_counter()
            stats.scans = _seed_scans(
                cur, bag_start, stats.bags, scans_per_bag, user_ids["dispatcher"], rng, progress
            )
            stats.seconds["scans"] = time.perf_counter() - t
            t = time.perf_counter()
            stats.bills = _seed_bills(cur, bag_start, stats.bags, user_ids["biller"], rng)
            stats.seconds["bills"] = time.perf_counter() - t
            if indexes:
                t = time.perf_counter()
                indexes.rebuild()
                stats.seconds["indexes"] = time.perf_counter() - t
        conn.autocommit = True
        t = time.perf_counter()
        with conn.cursor() as cur:
            for table in (tables.USERS, *BULK_TABLES):
                cur.execute(f"ANALYZE {table}")
        stats.seconds["analyze"] = time.perf_counter() - t
    finally:
        conn.close()
    return stats


def _seed_users(cur, n: int, rng: random.Random) -> dict[str, list[int]]:
    # One hash for all seeded users: argon2 is deliberately slow, and they share a password.
    pw_hash = hash_password(SEED_PASSWORD)
    roles = ["admin"] + [("dispatcher" if i % 3 else "biller") for i in range(1, max(n, 3))]
    for i, role in enumerate(roles):
        cur.execute(
            """INSERT INTO users (username, password_hash, role) VALUES (%s, %s, %s)
                       ON CONFLICT (username) DO NOTHING""",
            (f"seed-{role}-{i:03d}", pw_hash, role),
        )
    cur.execute("SELECT id, role FROM users WHERE username LIKE 'seed-%%'")
    out: dict[str, list[int]] = {"all": [], "admin": [], "dispatcher": [], "biller": []}
    for uid, role in cur.fetchall():
        out["all"].append(uid)
        out[role].append(uid)
    return out


def _timestamps(rng: random.Random, n: int = 50_000) -> list[str]:
    """A pool of times over the last 90 days (5 % of them today), formatted once."""
    now = datetime.now(UTC)
    out = []
    for _ in range(n):
        if rng.random() < 0.05:
            ts = now - timedelta(seconds=rng.uniform(0, now.hour * 3600 + now.minute * 60 + 1))
        else:
            ts = now - timedelta(days=rng.uniform(0, 90))
        out.append(ts.strftime("%Y-%m-%d %H:%M:%S+00"))
    return out


def _seed_bags(cur, n: int, rng: random.Random, progress: bool) -> tuple[int, int]:
    start = _next_id(cur, "bags")
    times = _timestamps(rng)
    group = CHILDREN_PER_PARENT + 1
    bar = tqdm(total=n, unit="bag", desc="bags", disable=not progress, mininterval=1)
    done = 0
    while done < n:
        size = min(CHUNK, n - done)
        lines = []
        for i in range(done, done + size):
            bag_id = start + i
            parent = start + i - i % group
            ts = times[bag_id % len(times)]
            loc = LOCATIONS[bag_id % len(LOCATIONS)]
            status = STATUSES[(bag_id * 7) % len(STATUSES)]
            if i % group == 0:
                lines.append(f"{bag_id}\tP{bag_id:010d}\tparent\t\\N\t{status}\t{loc}\t{ts}\t{ts}")
            else:
                lines.append(
                    f"{bag_id}\tC{bag_id:010d}\tchild\t{parent}\t{status}\t{loc}\t{ts}\t{ts}"
                )
        _copy(
            cur,
            "bags",
            "id, qr_id, bag_type, parent_id, status, location, created_at, updated_at",
            lines,
        )
        done += size
        bar.update(size)
    bar.close()
    if n:
        cur.execute("SELECT setval(pg_get_serial_sequence('bags', 'id'), %s)", (start + n - 1,))
    return start, n


def _seed_scans(
    cur,
    bag_start: int,
    n_bags: int,
    per_bag: float,
    users: list[int],
    rng: random.Random,
    progress: bool,
) -> int:
    total = int(n_bags * per_bag)
    if total == 0 or not users:
        return 0
    start = _next_id(cur, "scans")
    times = _timestamps(rng)
    bar = tqdm(total=total, unit="scan", desc="scans", disable=not progress, mininterval=1)
    done = 0
    step = 1.0 / per_bag
    while done < total:
        size = min(CHUNK, total - done)
        lines = []
        for i in range(done, done + size):
            bag_id = bag_start + int(i * step) % n_bags
            lines.append(
                f"{start + i}\t{bag_id}\t{users[i % len(users)]}\t"
                f"{LOCATIONS[i % len(LOCATIONS)]}\t{times[rng.randrange(len(times))]}"
            )
        _copy(cur, "scans", "id, bag_id, user_id, location, scanned_at", lines)
        done += size
        bar.update(size)
    bar.close()
    cur.execute("SELECT setval(pg_get_serial_sequence('scans', 'id'), %s)", (start + total - 1,))
    return total


def _seed_bills(
    cur,
    bag_start: int,
    n_bags: int,
    billers: list[int],
    rng: random.Random,
) -> int:
    group = CHILDREN_PER_PARENT + 1
    parents = list(range(bag_start, bag_start + n_bags, group))
    if not parents or not billers:
        return 0
    start = _next_id(cur, "bills")
    times = _timestamps(rng, 10_000)
    bills: list[str] = []
    links: list[str] = []
    for b, first in enumerate(range(0, len(parents), PARENTS_PER_BILL)):
        bill_id = start + b
        bills.append(
            f"{bill_id}\tB{bill_id:09d}\t{billers[b % len(billers)]}\tclosed\t"
            f"{times[b % len(times)]}"
        )
        links.extend(f"{bill_id}\t{p}" for p in parents[first : first + PARENTS_PER_BILL])
    _copy(cur, "bills", "id, bill_number, created_by, status, created_at", bills)
    _copy(cur, "bill_bags", "bill_id, bag_id", links)
    cur.execute(
        "SELECT setval(pg_get_serial_sequence('bills', 'id'), %s)", (start + len(bills) - 1,)
    )
    return len(bills)
