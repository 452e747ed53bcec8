"""Typed dependencies shared by the routers (docs/architecture.md §10: thin routers)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy.orm import Session

from app.cache import Cache
from app.db import Database
from app.revocation import TokenRevocation
from app.security import Principal, TokenCodec, TokenError

# Every dependency here is `async def` on purpose: FastAPI runs a sync dependency in the
# thread pool, and each such hop costs 70-90 µs of CPU per request for work of a few µs.


async def get_db(request: Request) -> Database:
    # The pool, not a connection: a read holds a connection only while its statement
    # runs (a cache hit never takes one), a write for its transaction (app/db.py).
    return request.app.state.db


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A synchronous SQLAlchemy session, for the few admin routes that are `def` (they run
    in the thread pool anyway); the request path uses `DbDep`."""
    session = request.app.state.sessionmaker()
    try:
        yield session
    finally:
        session.close()


async def get_cache(request: Request) -> Cache:
    return request.app.state.cache


async def get_tokens(request: Request) -> TokenCodec:
    return request.app.state.tokens


async def get_revocation(request: Request) -> TokenRevocation:
    return request.app.state.revocation


class _BearerUser(HTTPBearer):
    """The request's user, from its bearer token: 401 without a valid one.

    One dependency that is also the OpenAPI security scheme (still named HTTPBearer), where
    `HTTPBearer` plus a function taking its credentials were two: every request
    authenticates, and each dependency FastAPI resolves costs ~10-15 µs of CPU."""

    def __init__(self) -> None:
        super().__init__(scheme_name="HTTPBearer", auto_error=False)

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
        if not token or scheme.lower() != "bearer":
            raise HTTPException(
                401,
                "missing bearer token; log in at POST /api/auth/login",
                headers={"WWW-Authenticate": "Bearer"},
            )
        revocation: TokenRevocation = request.app.state.revocation
        try:
            principal = await revocation.authenticate(token)
        except TokenError as exc:
            raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from exc
        # Read by the instrumentation middleware (active users) after the response.
        request.state.user_id = principal.user_id
        return principal


current_user = _BearerUser()


def require_role(*roles: str) -> Callable[[Principal], Awaitable[Principal]]:
    async def check(user: Annotated[Principal, Depends(current_user)]) -> Principal:
        if user.role not in roles:
            raise HTTPException(
                403, f"role {user.role!r} may not do this; needs one of {', '.join(roles)}"
            )
        return user

    return check


DbDep = Annotated[Database, Depends(get_db)]
SessionDep = Annotated[Session, Depends(get_session)]
TokensDep = Annotated[TokenCodec, Depends(get_tokens)]
CacheDep = Annotated[Cache, Depends(get_cache)]
RevocationDep = Annotated[TokenRevocation, Depends(get_revocation)]
UserDep = Annotated[Principal, Depends(current_user)]
AdminDep = Annotated[Principal, Depends(require_role("admin"))]
BagWriterDep = Annotated[Principal, Depends(require_role("admin", "dispatcher"))]
BillerDep = Annotated[Principal, Depends(require_role("admin", "biller"))]
