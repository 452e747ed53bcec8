"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import anyio.to_thread
from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from app import idempotency
from app import repository as repo
from app.analytics import router as analytics_router
from app.cache import Cache
from app.db import Database, make_background_engine, make_sessionmaker, migrate
from app.errors import add_error_handlers
from app.middleware import install_middleware
from app.revocation import TokenRevocation, UserState
from app.routes import auth, bags, bills, health, scans, users
from app.security import TokenCodec, secret_key
from common.pgserver import resolve_database_url
from common.settings import Settings

log = logging.getLogger(__name__)


async def warm_cache(app: FastAPI, n: int) -> int:
    """Preload the bags in motion (repository.hot_bags), so the first lookups after a deploy hit."""
    if n <= 0:
        return 0
    rows = await repo.hot_bags(app.state.db, n)
    await app.state.cache.set_many_raw(
        {bags.bag_cache_key(r["qr_id"]): bags.bag_json(r) for r in rows}
    )
    return len(rows)


async def load_user_state(db: Database, user_id: int) -> UserState | None:
    row = await repo.user_state(db, user_id)
    return UserState(*row) if row else None


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    database_url = resolve_database_url(settings.database_url, settings.resolved_var_dir())
    db = Database(database_url, settings, workers=settings.app_workers)
    # Background threads and the few admin routes that are still synchronous (app/guard).
    background = make_background_engine(database_url, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Only password hashing, the guard's login counters and a few admin routes use
        # anyio's thread pool; size it so a login burst cannot take every thread.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.app_threads
        if settings.migrate_on_start:
            await run_in_threadpool(migrate, database_url)
        await db.open()
        await app.state.cache.start()
        try:
            warmed = await warm_cache(app, settings.cache_warm_entries)
            log.info("cache warmed with %d bags (%s)", warmed, app.state.cache.backend)
        except Exception as exc:  # noqa: BLE001 - a cold cache is not a reason to refuse traffic
            log.warning("cache warming skipped: %s", exc)
        if guard is not None:
            guard.start()
        purger = asyncio.create_task(idempotency.purge_periodically(db))
        yield
        purger.cancel()
        if guard is not None:
            await guard.scans.flush()  # the scans still waiting to be counted
            guard.stop()
        await app.state.cache.close()
        await db.close()
        background.dispose()

    app = FastAPI(
        title="TraceTrack",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs" if settings.api_docs else None,
        redoc_url="/redoc" if settings.api_docs else None,
    )
    app.state.settings = settings
    app.state.db = db
    app.state.sessionmaker = make_sessionmaker(background)
    app.state.cache = Cache(
        settings.redis_url, ttl=settings.cache_ttl_seconds, max_entries=settings.cache_max_entries
    )
    app.state.tokens = TokenCodec(secret_key(settings), settings.token_ttl_seconds)
    app.state.revocation = TokenRevocation(
        app.state.tokens,
        partial(load_user_state, db),
        ttl=settings.token_state_ttl_seconds,
    )
    guard = None
    if settings.guard_enabled:
        from app.guard import Guard

        guard = app.state.guard = Guard.for_app(settings, app.state.sessionmaker, app.state.tokens)

    # The busiest routers first: a request is matched against the routes in this order.
    for router in (
        bags.router,
        scans.router,
        health.router,
        auth.router,
        users.router,
        bills.router,
        analytics_router,
    ):
        app.include_router(router)
    if guard is not None:
        from app.guard.routes import install_guard

        # After the hot routes: the router tries routes in order, and these are rare.
        install_guard(app)
    if settings.debug_endpoints:
        from app.routes import debug

        app.include_router(debug.router)

    add_error_handlers(app)
    idempotency.install(app)
    install_middleware(app, settings, db)
    return app


def app_from_env() -> FastAPI:
    """Uvicorn factory for worker processes: settings come from the environment."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return create_app(Settings())
