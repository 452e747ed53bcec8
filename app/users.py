"""Managing users outside a request: `tracetrack user add|disable|enable`, the benchmarks,
test fixtures."""

from __future__ import annotations

import asyncio

import asyncpg

from app import repository as repo
from app.db import asyncpg_dsn, migrate
from app.security import hash_password


def add_user(database_url: str, username: str, password: str, role: str) -> int:
    """Migrate the database, add the user with a hashed password, return the new id.

    Raises `repository.Conflict` when the name is taken. One connection, closed after.
    """
    migrate(database_url)
    password_hash = hash_password(password)

    async def insert() -> int:
        conn = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            return int((await repo.create_user(conn, username, password_hash, role))["id"])
        finally:
            await conn.close()

    return asyncio.run(insert())


def set_disabled(database_url: str, username: str, disabled: bool) -> bool:
    """Disable (or re-enable) the user and revoke their tokens; False if there is no
    such user. Running apps notice within Settings.token_state_ttl_seconds."""
    migrate(database_url)

    async def update() -> bool:
        conn = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            return await repo.update_user(conn, username, disabled=disabled) is not None
        finally:
            await conn.close()

    return asyncio.run(update())
