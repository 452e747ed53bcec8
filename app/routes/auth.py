from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from app import repository as repo
from app.deps import RevocationDep, SessionDep, UserDep, get_tokens
from app.guard import guard_of
from app.guard.lockout import Lockout
from app.guard.ratelimit import retry_after_header
from app.schemas import LoginIn, TokenOut
from app.security import Principal, TokenCodec, verify_password

router = APIRouter(prefix="/api", tags=["auth"])


def _locked_out(lockout: Lockout) -> HTTPException:
    return HTTPException(
        429, lockout.message(), headers={"Retry-After": retry_after_header(lockout.retry_after)}
    )


@router.post(
    "/auth/login",
    response_model=TokenOut,
    responses={429: {"description": "too many failed logins: locked out for Retry-After s"}},
)
def login(
    request: Request,
    body: LoginIn,
    db: SessionDep,
    tokens: Annotated[TokenCodec, Depends(get_tokens)],
) -> TokenOut:
    guard = guard_of(request)
    ip = guard.client_ip(request) if guard else ""
    if guard and (lockout := guard.logins.locked(body.username, ip)):
        db.close()
        raise _locked_out(lockout)
    user = repo.user_by_name(db, body.username)
    db.close()  # give the connection back before the deliberately slow hash check
    if not verify_password(body.password, user.password_hash if user else None) or user is None:
        reason = "bad_password" if user else "unknown_user"
        if guard and (lockout := guard.logins.failed(body.username, ip, reason)):
            raise _locked_out(lockout)
        raise HTTPException(401, "wrong username or password")
    if user.disabled_at is not None:
        raise HTTPException(403, "this account is disabled; ask an admin")
    if guard:
        guard.logins.succeeded(body.username)
    token, ttl = tokens.issue(Principal(user.id, user.username, user.role, user.token_version))
    return TokenOut(access_token=token, expires_in=ttl, role=user.role)  # type: ignore[arg-type]


@router.post("/auth/logout", status_code=204)
def logout(user: UserDep, db: SessionDep, revocation: RevocationDep) -> Response:
    """Revokes every token of the calling user (all of their sessions)."""
    repo.revoke_tokens(db, user.user_id)
    db.commit()
    revocation.forget(user.user_id)
    return Response(status_code=204)
