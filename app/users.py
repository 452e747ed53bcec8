"""Managing users outside a request: `tracetrack user add|disable|enable`, the benchmarks,
test fixtures."""

from __future__ import annotations

from app import repository as repo
from app.db import make_engine, make_sessionmaker, migrate
from app.security import hash_password
from common.settings import Settings


def add_user(database_url: str, username: str, password: str, role: str) -> int:
    """Migrate the database, add the user with a hashed password, return the new id.

    Raises `repository.Conflict` when the name is taken. One connection, closed after.
    """
    migrate(database_url)
    engine = make_engine(database_url, Settings(db_pool_size_total=1, db_pool_max_overflow_total=0))
    try:
        with make_sessionmaker(engine)() as db:
            user = repo.create_user(db, username, hash_password(password), role)
            db.commit()
            return int(user.id)
    finally:
        engine.dispose()


def set_disabled(database_url: str, username: str, disabled: bool) -> bool:
    """Disable (or re-enable) the user and revoke their tokens; False if there is no
    such user. Running apps notice within Settings.token_state_ttl_seconds."""
    migrate(database_url)
    engine = make_engine(database_url, Settings(db_pool_size_total=1, db_pool_max_overflow_total=0))
    try:
        with make_sessionmaker(engine)() as db:
            user = repo.update_user(db, username, disabled=disabled)
            db.commit()
            return user is not None
    finally:
        engine.dispose()
