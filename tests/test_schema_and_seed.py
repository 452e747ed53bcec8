"""Migrations, the COPY seeder, and index-backed query plans on a real PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app.db import migrate
from app.models import Base
from app.seed import seed_database
from tooling.procs import TRACETRACK


def counts(url: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        out = {
            t: conn.execute(sa.text(f"select count(*) from {t}")).scalar_one()
            for t in ("users", "bags", "scans", "bills", "bill_bags")
        }
    engine.dispose()
    return out


def test_migrations_match_the_models(database_url: str) -> None:
    migrate(database_url)
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_concurrent_migrations_are_safe(database_url: str) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            migrate(database_url)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert counts(database_url)["bags"] == 0


def test_seed_small_then_append(database_url: str) -> None:
    migrate(database_url)
    stats = seed_database(database_url, bags=1000, scans_per_bag=2, users=9, progress=False)
    c = counts(database_url)
    assert (stats.bags, c["bags"]) == (1000, 1000)
    assert c["scans"] == 2000 and c["users"] == 9
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        parents = conn.execute(
            sa.text("select count(*) from bags where bag_type='parent'")
        ).scalar()
        orphans = conn.execute(
            sa.text(
                "select count(*) from bags c left join bags p on p.id = c.parent_id "
                "where c.bag_type='child' and p.bag_type is distinct from 'parent'"
            )
        ).scalar()
        roles: dict[str, int] = dict(
            conn.execute(sa.text("select role, count(*) from users group by role")).all()
        )
    engine.dispose()
    assert parents == 100 and orphans == 0
    assert set(roles) == {"admin", "dispatcher", "biller"}
    # Seeding again appends (with indexes in place) instead of colliding.
    seed_database(database_url, bags=500, users=9, progress=False)
    assert counts(database_url)["bags"] == 1500


def explain(conn: sa.Connection, sql: str, **params: object) -> str:
    plan = conn.execute(sa.text("EXPLAIN (FORMAT JSON) " + sql), params).scalar_one()
    return json.dumps(plan)


def test_bulk_seed_rebuilds_indexes_and_every_query_path_uses_one(database_url: str) -> None:
    migrate(database_url)
    seed_database(database_url, bags=120_000, users=6, progress=False)
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        indexes = set(
            conn.execute(
                sa.text("select indexname from pg_indexes where schemaname='public'")
            ).scalars()
        )
        fks = conn.execute(sa.text("select count(*) from pg_constraint where contype='f'")).scalar()
        assert {
            "bags_qr_id_key",
            "ix_bags_status_qr",
            "ix_bags_type_qr",
            "ix_scans_bag_time",
            "ix_scans_scanned_at",
            "ix_bills_created_at",
            "bills_bill_number_key",
        } <= indexes
        # bags.parent_id, scans x2, bills.created_by, bill_bags x2, idempotency_keys.user_id
        assert fks == 7
        plans = {
            "lookup": explain(conn, "select * from bags where qr_id = :q", q="C0000005002"),
            "prefix": explain(
                conn,
                "select * from bags where qr_id >= :a and qr_id < :b order by qr_id limit 51",
                a="C00000050",
                b="C00000050\U0010ffff",
            ),
            "status": explain(
                conn,
                "select * from bags where status = 'lost' and qr_id > :c order by qr_id limit 51",
                c="C0000000000",
            ),
            "scans": explain(
                conn,
                "select * from scans where bag_id = 77 order by scanned_at desc, id desc limit 51",
            ),
            "today": explain(
                conn, "select count(*) from scans where scanned_at >= now() - interval '1 day'"
            ),
        }
    engine.dispose()
    for name, plan in plans.items():
        assert "Index" in plan and "Seq Scan" not in plan, (name, plan)


def test_cli_user_add_reads_the_password_from_stdin(database_url: str, tmp_path: Path) -> None:
    exe = TRACETRACK
    env = {
        "DATABASE_URL": database_url,
        "TRACETRACK_VAR_DIR": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }
    ok = subprocess.run(
        [exe, "user", "add", "ops", "--role", "admin", "--password-stdin"],
        input="s3cret-enough\n",
        capture_output=True,
        text=True,
        env=env,
    )
    assert ok.returncode == 0, ok.stderr
    dup = subprocess.run(
        [exe, "user", "add", "ops", "--role", "admin", "--password-stdin"],
        input="s3cret-enough\n",
        capture_output=True,
        text=True,
        env=env,
    )
    assert dup.returncode == 1 and "already exists" in dup.stderr
    short = subprocess.run(
        [exe, "user", "add", "ops2", "--role", "admin", "--password-stdin"],
        input="short\n",
        capture_output=True,
        text=True,
        env=env,
    )
    assert short.returncode == 2 and "password" in short.stderr
    bad_role = subprocess.run(
        [exe, "user", "add", "x", "--role", "root", "--password-stdin"],
        input="whatever-long\n",
        capture_output=True,
        text=True,
        env=env,
    )
    assert bad_role.returncode == 2 and "invalid choice" in bad_role.stderr
