from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Response

from app import repository as repo
from app.deps import RevocationDep, SessionDep, UserDep, get_tokens
from app.schemas import LoginIn, TokenOut
from app.security import Principal, TokenCodec, verify_password

router = APIRouter(prefix="/api", tags=["auth"])


@router.post("/auth/login", response_model=TokenOut)
def login(
    body: LoginIn, db: SessionDep, tokens: Annotated[TokenCodec, Depends(get_tokens)]
) -> TokenOut:
    user = repo.user_by_name(db, body.username)
    db.close()  # give the connection back before the deliberately slow hash check
    if not verify_password(body.password, user.password_hash if user else None) or user is None:
        raise HTTPException(401, "wrong username or password")
    if user.disabled_at is not None:
        raise HTTPException(403, "this account is disabled; ask an admin")
    token, ttl = tokens.issue(Principal(user.id, user.username, user.role, user.token_version))
    return TokenOut(access_token=token, expires_in=ttl, role=user.role)  # type: ignore[arg-type]


@router.post("/auth/logout", status_code=204)
def logout(user: UserDep, db: SessionDep, revocation: RevocationDep) -> Response:
    """Revokes every token of the calling user (all of their sessions)."""
    repo.revoke_tokens(db, user.user_id)
    db.commit()
    revocation.forget(user.user_id)
    return Response(status_code=204)
