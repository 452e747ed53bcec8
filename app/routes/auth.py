from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException

from app import repository as repo
from app.deps import AdminDep, SessionDep, get_tokens
from app.schemas import LoginIn, TokenOut, UserIn, UserOut
from app.security import Principal, TokenCodec, hash_password, verify_password

router = APIRouter(prefix="/api", tags=["auth"])


@router.post("/auth/login", response_model=TokenOut)
def login(
    body: LoginIn, db: SessionDep, tokens: Annotated[TokenCodec, Depends(get_tokens)]
) -> TokenOut:
    user = repo.user_by_name(db, body.username)
    db.close()  # give the connection back before the deliberately slow hash check
    if not verify_password(body.password, user.password_hash if user else None) or user is None:
        raise HTTPException(401, "wrong username or password")
    token, ttl = tokens.issue(Principal(user.id, user.username, user.role))
    return TokenOut(access_token=token, expires_in=ttl, role=user.role)  # type: ignore[arg-type]


@router.post("/users", response_model=UserOut, status_code=201)
def create_user(body: UserIn, db: SessionDep, _admin: AdminDep) -> UserOut:
    try:
        user = repo.create_user(db, body.username, hash_password(body.password), body.role)
    except repo.Conflict as exc:
        raise HTTPException(409, str(exc)) from exc
    db.commit()
    return UserOut(
        id=user.id,
        username=user.username,
        role=user.role,  # type: ignore[arg-type]
        created_at=user.created_at,
    )
