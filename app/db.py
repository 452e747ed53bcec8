"""The app's one door to PostgreSQL: an asyncpg pool for requests, migrations on SQLAlchemy.

Requests run on the event loop with no thread-pool hop, and pay for no round trip they
do not need:

- reads run one statement in autocommit (`await db.fetchrow(...)`): no BEGIN, no
  ROLLBACK, and a connection is held only while that statement runs, so a cache hit
  never touches the pool;
- writes run in `async with db.transaction() as conn:` (BEGIN ... COMMIT);
- no query is sent when a connection is handed out or given back: asyncpg reads every
  socket on the event loop, so a connection that PostgreSQL closed (restart, admin
  shutdown, `kill`) is known dead before it is handed out and replaced then. Only a
  connection idle longer than `db_pool_ping_idle_seconds` is pinged first (`SELECT 1`),
  for the connections a network device drops silently; that is docs/architecture.md §11's
  "health check on connection checkout", paid for once per idle period instead of on
  every request;
- statements are prepared once per connection (asyncpg's statement cache); behind a
  PgBouncer in transaction mode older than 1.21 set `DB_STATEMENT_CACHE_SIZE=0`.

Pool sizes follow docs/architecture.md §11 (100-250 connections in total, split across the
workers): each worker may open `(pool size + overflow) / workers` connections, opens them
only when needed, closes one that has been idle for `db_pool_idle_close_seconds`, and
replaces one older than `db_pool_recycle_seconds` when it is given back (the guide's
"automatic connection recycling").

PostgreSQL unreachable, a connection lost mid-statement, or no connection free within
`db_pool_timeout_seconds`: `UNAVAILABLE_ERRORS`, which the app answers with 503.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from app.db_deadline import (
    DEADLINE_GRACE_SECONDS,
    DatabaseNotAnswering,
    DatabaseTimeout,
    Deadlines,
)
from common.settings import Settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Connections each worker opens at startup (the pool grows to its maximum on demand).
POOL_WARM_CONNECTIONS = 4
# Any fixed 64-bit key: serialises `upgrade` when several workers start at once.
MIGRATION_LOCK_KEY = 0x7472616365


class DatabaseUnavailable(Exception):
    """PostgreSQL cannot be reached, or no pooled connection came free in time."""


class PoolExhausted(DatabaseUnavailable):
    pass


# Everything that means "the database is not there right now" rather than "this request
# is wrong": the app answers them 503 + Retry-After (app/main.py).
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    DatabaseUnavailable,
    DatabaseTimeout,  # no answer within the deadline, or failing fast while stalled
    asyncpg.PostgresConnectionError,  # connection lost or refused by the server
    asyncpg.InterfaceError,  # the client side of a closed connection
    asyncpg.OperatorInterventionError,  # admin shutdown, cannot connect now, cancelled
    asyncpg.InsufficientResourcesError,  # too many connections, out of memory/disk
)
# Errors of connecting: raised as DatabaseUnavailable with the cause attached.
_CONNECT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
)
# Closing a connection: it may also just take too long.
_CLOSE_ERRORS: tuple[type[BaseException], ...] = (TimeoutError, *_CONNECT_ERRORS)


def pool_sizes(settings: Settings, workers: int) -> tuple[int, int]:
    """Split the 100-250 connection total (docs/architecture.md §11) across the workers."""
    workers = max(1, workers)
    size = max(1, settings.db_pool_size_total // workers)
    overflow = max(0, settings.db_pool_max_overflow_total // workers)
    return size, overflow


def statement_deadline_seconds(settings: Settings) -> float:
    """How long the app waits for any answer from PostgreSQL (app/db_deadline.py)."""
    return settings.db_statement_timeout_ms / 1000 + DEADLINE_GRACE_SECONDS


def asyncpg_dsn(url: str) -> str:
    """The libpq-style DSN asyncpg takes, from our SQLAlchemy URL (`postgresql+psycopg2://`)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _reset_on_release(conn: asyncpg.Connection) -> None:
    # asyncpg's default reset sends `RESET ALL; UNLISTEN *; ...` on every release: a
    # round trip per request for session state our requests never set. A transaction can
    # only be left open by a bug; end it rather than hand it to the next request.
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


class Database:
    """The worker's pool. `open()` inside the event loop that will use it (the lifespan)."""

    def __init__(self, url: str, settings: Settings, workers: int = 1) -> None:
        size, _overflow = pool_sizes(settings, workers)
        # The pool size, not size + overflow: on the event loop a request holds its
        # connection until the loop gets back to it, so on a saturated box every worker
        # would otherwise grow to its maximum and the app alone would pass the
        # "database connections" alert (> 200). Requests wait for a connection instead,
        # which costs the database nothing (DB_POOL_SIZE_TOTAL connections in all).
        self.max_size = size
        self._dsn = asyncpg_dsn(url)
        self._settings = settings
        self._acquire_timeout = settings.db_pool_timeout_seconds
        self._ping_idle = settings.db_pool_ping_idle_seconds
        self._recycle = settings.db_pool_recycle_seconds
        # backend pid -> [opened, last given back]; only touched on the event loop.
        self._ages: dict[int, list[float]] = {}
        self._pool: asyncpg.Pool | None = None
        self._deadlines = Deadlines(statement_deadline_seconds(settings))

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise DatabaseUnavailable("the database pool is not open")
        return self._pool

    async def open(self) -> None:
        s = self._settings
        self._pool = await asyncpg.create_pool(
            self._dsn,
            # A few kept open from the start; the rest opened on demand, like SQLAlchemy's.
            min_size=min(POOL_WARM_CONNECTIONS, self.max_size),
            max_size=self.max_size,
            max_inactive_connection_lifetime=s.db_pool_idle_close_seconds,
            statement_cache_size=s.db_statement_cache_size,
            timeout=s.db_connect_timeout_seconds,
            reset=_reset_on_release,
            init=self._on_connect,
            command_timeout=self._deadlines.seconds,  # the client deadline of every statement
            server_settings={
                "application_name": "tracetrack-app",
                "statement_timeout": str(s.db_statement_timeout_ms),
                "lock_timeout": str(s.db_lock_timeout_ms),
            },
        )

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), timeout=5)
            except _CLOSE_ERRORS:
                pool.terminate()

    async def _on_connect(self, conn: asyncpg.Connection) -> None:
        now = time.monotonic()
        if len(self._ages) > 4 * self.max_size:  # pids of closed connections pile up
            self._ages = {pid: a for pid, a in self._ages.items() if now - a[1] < 3600}
        self._ages[conn.get_server_pid()] = [now, now]

    def stats(self) -> tuple[int, int]:
        """(checked out, idle) connections right now; (0, 0) before open()."""
        pool = self._pool
        if pool is None:
            return 0, 0
        idle = pool.get_idle_size()
        return pool.get_size() - idle, idle

    # --- connections ------------------------------------------------------------------
    def _not_answering(self, conn: asyncpg.Connection | None, exc: BaseException) -> Exception:
        # Closed, not reused: its late answer must never reach the next request.
        # (Terminating a pooled connection hands its slot back to the pool.)
        if conn is not None:
            conn.terminate()
        self._deadlines.no_answer()
        return DatabaseNotAnswering(
            f"PostgreSQL did not answer within {self._deadlines.seconds:g}s"
        ).with_traceback(exc.__traceback__)

    async def _acquire(self) -> asyncpg.Connection:
        self._deadlines.admit()
        pool = self.pool
        started = time.monotonic()
        try:
            conn = await pool.acquire(timeout=self._acquire_timeout)
        except TimeoutError as exc:
            if time.monotonic() - started < self._acquire_timeout * 0.9:
                raise self._not_answering(None, exc) from exc  # connecting timed out
            raise PoolExhausted(
                f"no database connection free within {self._acquire_timeout:g} s"
            ) from exc
        except _CONNECT_ERRORS as exc:
            raise DatabaseUnavailable(f"cannot connect: {exc}") from exc
        ages = self._ages.get(conn.get_server_pid())
        if ages is not None and time.monotonic() - ages[1] > self._ping_idle:
            conn = await self._ping(pool, conn)
        return conn

    async def _ping(self, pool: asyncpg.Pool, conn: asyncpg.Connection) -> asyncpg.Connection:
        """`conn` if it answers `SELECT 1`, else a fresh connection (idle ones only)."""
        try:
            await conn.execute("SELECT 1")
            return conn
        except TimeoutError as exc:
            raise self._not_answering(conn, exc) from exc
        except _CONNECT_ERRORS:
            conn.terminate()  # silently dropped while idle: replace it, once
        try:
            return await pool.acquire(timeout=self._acquire_timeout)
        except TimeoutError as exc:
            raise PoolExhausted("no database connection free") from exc
        except _CONNECT_ERRORS as exc:
            raise DatabaseUnavailable(f"cannot connect: {exc}") from exc

    async def _release(self, conn: asyncpg.Connection) -> None:
        try:
            closed = conn.is_closed()
        except asyncpg.InterfaceError:
            return  # terminated: asyncpg has already given it back to the pool
        ages = None if closed else self._ages.get(conn.get_server_pid())
        if ages is not None:
            ages[1] = now = time.monotonic()
            if now - ages[0] > self._recycle:
                try:  # the pool opens a fresh one when next needed
                    await conn.close(timeout=2)
                except _CLOSE_ERRORS:
                    conn.terminate()
        await self.pool.release(conn)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """One connection in autocommit, for several reads in a row."""
        conn = await self._acquire()
        try:
            yield conn
        except TimeoutError as exc:
            raise self._not_answering(conn, exc) from exc
        finally:
            await self._release(conn)
        self._deadlines.answered()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """One connection inside BEGIN ... COMMIT (ROLLBACK when the block raises)."""
        conn = await self._acquire()
        tr = conn.transaction()
        started = False
        try:
            try:
                await tr.start()
                started = True
                yield conn
            except BaseException as exc:
                # No ROLLBACK after a missed deadline: the connection is closed instead.
                if started and not isinstance(exc, TimeoutError) and not conn.is_closed():
                    await tr.rollback()
                raise
            await tr.commit()
        except TimeoutError as exc:
            raise self._not_answering(conn, exc) from exc
        finally:
            await self._release(conn)
        self._deadlines.answered()

    # --- one statement in autocommit: what reads use ----------------------------------
    async def _one(self, method: str, sql: str, args: tuple[Any, ...]) -> Any:
        conn = await self._acquire()
        try:
            result = await getattr(conn, method)(sql, *args)
        except TimeoutError as exc:
            raise self._not_answering(conn, exc) from exc
        except asyncpg.PostgresError:
            self._deadlines.answered()  # an error from the server is an answer too
            raise
        finally:
            await self._release(conn)
        self._deadlines.answered()
        return result

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        return await self._one("fetch", sql, args)

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        return await self._one("fetchrow", sql, args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._one("fetchval", sql, args)

    async def execute(self, sql: str, *args: Any) -> str:
        return await self._one("execute", sql, args)


def make_background_engine(url: str, settings: Settings) -> Engine:
    """A small synchronous SQLAlchemy pool for what runs off the event loop: background
    threads (the guard's block-list refresh and event writer) and the few synchronous
    admin routes. Never used by the request path; its 4 connections come on top of the
    request pool's."""
    return create_engine(
        url,
        pool_size=2,
        max_overflow=2,
        pool_pre_ping=True,  # rare use: a ping per checkout is fine here
        pool_recycle=settings.db_pool_recycle_seconds,
        pool_timeout=settings.db_pool_timeout_seconds,
        connect_args={
            "options": (
                f"-c statement_timeout={settings.db_statement_timeout_ms}"
                f" -c lock_timeout={settings.db_lock_timeout_ms}"
            ),
            "application_name": "tracetrack-app-background",
            "connect_timeout": settings.db_connect_timeout_seconds,
        },
    )


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
