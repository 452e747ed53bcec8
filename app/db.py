"""Engine, sessions and migrations: the app's one door to PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from app.db_deadline import (
    DEADLINE_GRACE_SECONDS,
    Deadlines,
    connection_factory,
    report_pre_ping_timeout,
)
from common.settings import Settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any fixed 64-bit key: serialises `upgrade` when several workers start at once.
MIGRATION_LOCK_KEY = 0x7472616365


def pool_sizes(settings: Settings, workers: int) -> tuple[int, int]:
    """Split the operator guide's total (100-250 connections) across the workers."""
    workers = max(1, workers)
    size = max(1, settings.db_pool_size_total // workers)
    overflow = max(0, settings.db_pool_max_overflow_total // workers)
    return size, overflow


def statement_deadline_seconds(settings: Settings) -> float:
    """How long the app waits for any answer from PostgreSQL (app/db_deadline.py)."""
    return settings.db_statement_timeout_ms / 1000 + DEADLINE_GRACE_SECONDS


def make_engine(url: str, settings: Settings, workers: int = 1) -> Engine:
    size, overflow = pool_sizes(settings, workers)
    deadlines = Deadlines(statement_deadline_seconds(settings))
    engine = create_engine(
        url,
        pool_size=size,
        max_overflow=overflow,
        pool_pre_ping=True,  # survive a PostgreSQL restart without restarting the app
        pool_recycle=settings.db_pool_recycle_seconds,
        pool_timeout=settings.db_pool_timeout_seconds,
        connect_args={
            "options": (
                f"-c statement_timeout={settings.db_statement_timeout_ms}"
                f" -c lock_timeout={settings.db_lock_timeout_ms}"
            ),
            "application_name": "tracetrack-app",
            "connect_timeout": settings.db_connect_timeout_seconds,
            "connection_factory": connection_factory(deadlines),
        },
    )
    event.listen(engine, "handle_error", report_pre_ping_timeout)
    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def migrate(url: str) -> None:
    """Bring the schema to the newest revision; safe when several processes call it at once."""
    from alembic import command
    from alembic.config import Config

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
            try:
                cfg = Config()
                cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                conn.commit()
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
                conn.commit()
    finally:
        engine.dispose()
