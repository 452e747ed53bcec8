"""Who may see /analytics: admins only.

The JSON API takes the bearer token of POST /api/auth/login (app.deps.AdminDep). The
HTML page is opened by a browser, which cannot send that header, so it also accepts
the same token from an HttpOnly, SameSite=Strict cookie set by the page's own login
form (/analytics/login). The cookie is scoped to /analytics and only ever read by GET
pages, so a cross-site request can neither send it nor change anything with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool

from app import repository as repo
from app.guard import guard_of
from app.guard.lockout import Lockout
from app.guard.ratelimit import retry_after_header
from app.revocation import TokenRevocation
from app.schemas import storable
from app.security import Principal, TokenCodec, TokenError, verify_password

COOKIE = "tracetrack_analytics"
COOKIE_PATH = "/analytics"
MAX_FORM_BYTES = 4096


@dataclass(frozen=True)
class PageAccess:
    principal: Principal | None
    problem: str | None  # why there is no admin principal: "login" | "forbidden"


async def page_access(request: Request) -> PageAccess:
    revocation: TokenRevocation = request.app.state.revocation
    # Read here rather than declared as a security scheme: without credentials a page
    # redirects to the login form instead of answering 401.
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    token = credentials.strip() if scheme.lower() == "bearer" else None
    token = token or request.cookies.get(COOKIE)
    if not token:
        return PageAccess(None, "login")
    try:
        principal = await revocation.authenticate(token)
    except TokenError:
        return PageAccess(None, "login")
    # Read by the instrumentation middleware (active users).
    request.state.user_id = principal.user_id
    if principal.role != "admin":
        return PageAccess(principal, "forbidden")
    return PageAccess(principal, None)


PageAccessDep = Annotated[PageAccess, Depends(page_access)]


class LoginError(Exception):
    status = 401
    headers: dict[str, str] = {}


class LockedOut(LoginError):
    """Too many failed logins (app/guard/lockout.py): 429 with Retry-After."""

    status = 429

    def __init__(self, lockout: Lockout) -> None:
        super().__init__(lockout.message())
        self.headers = {"Retry-After": retry_after_header(lockout.retry_after)}


async def read_form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise LoginError("the form is too large")
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {k: v[0] for k, v in fields.items()}


async def login_admin(
    request: Request, db: repo.Db, username: str, password: str
) -> tuple[str, int]:
    """(token, ttl seconds) for an admin with these credentials, or LoginError saying
    what is wrong."""
    if not username or not password:
        raise LoginError("enter a username and a password")
    try:
        storable(username)
        storable(password)
    except ValueError as exc:
        raise LoginError(f"the username or password {exc}") from exc
    # The same failed-login counting and lockouts as POST /api/auth/login.
    guard = guard_of(request)
    ip = guard.client_ip(request) if guard else ""
    if guard and (lockout := await run_in_threadpool(guard.logins.locked, username, ip)):
        raise LockedOut(lockout)
    user = await repo.user_by_name(db, username)
    ok = await run_in_threadpool(verify_password, password, user["password_hash"] if user else None)
    if not ok or user is None:
        reason = "bad_password" if user else "unknown_user"
        if guard and (
            lockout := await run_in_threadpool(guard.logins.failed, username, ip, reason)
        ):
            raise LockedOut(lockout)
        raise LoginError("wrong username or password")
    if user["disabled_at"] is not None:
        raise LoginError("this account is disabled")
    if guard:
        await run_in_threadpool(guard.logins.succeeded, username)
    if user["role"] != "admin":
        raise LoginError("the analytics dashboard is for admins only")
    tokens: TokenCodec = request.app.state.tokens
    return tokens.issue(
        Principal(user["id"], user["username"], user["role"], user["token_version"])
    )
