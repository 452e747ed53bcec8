from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool

from app import repository as repo
from app.deps import DbDep, RevocationDep, TokensDep, UserDep
from app.guard import guard_of
from app.guard.lockout import Lockout
from app.guard.ratelimit import retry_after_header
from app.openapi_responses import GUARDED, WITH_BODY, responses
from app.schemas import LoginIn, TokenOut
from app.security import Principal, verify_password

router = APIRouter(prefix="/api", tags=["auth"])
# Both may be refused by the guard (403 blocked client, 429) and need the database.
_COMMON = (*GUARDED, 503)


def _locked_out(lockout: Lockout) -> HTTPException:
    return HTTPException(
        429, lockout.message(), headers={"Retry-After": retry_after_header(lockout.retry_after)}
    )


@router.post(
    "/auth/login",
    response_model=TokenOut,
    responses=responses(*_COMMON, 401, *WITH_BODY),
)
async def login(request: Request, body: LoginIn, db: DbDep, tokens: TokensDep) -> TokenOut:
    guard = guard_of(request)
    ip = guard.client_ip(request) if guard else ""
    # The guard's login counters are synchronous (app/guard/lockout.py): a login is rare
    # and pays a thread for its hash check anyway.
    if guard and (lockout := await run_in_threadpool(guard.logins.locked, body.username, ip)):
        raise _locked_out(lockout)
    user = await repo.user_by_name(db, body.username)
    # The deliberately slow hash check runs in a thread, holding no connection.
    hashed = user["password_hash"] if user is not None else None
    if not await run_in_threadpool(verify_password, body.password, hashed) or user is None:
        reason = "bad_password" if user else "unknown_user"
        if guard and (
            lockout := await run_in_threadpool(guard.logins.failed, body.username, ip, reason)
        ):
            raise _locked_out(lockout)
        raise HTTPException(401, "wrong username or password")
    if user["disabled_at"] is not None:
        raise HTTPException(403, "this account is disabled; ask an admin")
    if guard:
        await run_in_threadpool(guard.logins.succeeded, body.username)
    principal = Principal(user["id"], user["username"], user["role"], user["token_version"])
    token, ttl = tokens.issue(principal)
    return TokenOut(access_token=token, expires_in=ttl, role=user["role"])


@router.post("/auth/logout", status_code=204, responses=responses(*_COMMON, 401))
async def logout(user: UserDep, db: DbDep, revocation: RevocationDep) -> Response:
    """Revokes every token of the calling user (all of their sessions)."""
    await repo.revoke_tokens(db, user.user_id)
    revocation.forget(user.user_id)
    return Response(status_code=204)
