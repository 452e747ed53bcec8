"""User administration (admins only): create, change role, disable, delete.

Changing a role, disabling and deleting revoke the user's tokens (app/revocation.py).
"""

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Response
from fastapi.concurrency import run_in_threadpool

from app import repository as repo
from app.deps import AdminDep, DbDep, RevocationDep
from app.openapi_responses import AUTHENTICATED, WITH_BODY, responses
from app.schemas import USERNAME_PATTERN, UserIn, UserOut, UserPatch
from app.security import hash_password

router = APIRouter(prefix="/api/users", tags=["users"], responses=responses(*AUTHENTICATED))
# The last admin locking themselves out would leave nobody to undo it.
SELF_LOCKOUT = "an admin cannot disable, demote or delete their own account; ask another admin"
UsernamePath = Annotated[str, Path(min_length=3, max_length=64, pattern=USERNAME_PATTERN)]


def _out(user: Any) -> UserOut:
    return UserOut(
        id=user["id"],
        username=user["username"],
        role=user["role"],
        created_at=user["created_at"],
        disabled=user["disabled_at"] is not None,
    )


@router.post("", response_model=UserOut, status_code=201, responses=responses(409, *WITH_BODY))
async def create_user(body: UserIn, db: DbDep, _admin: AdminDep) -> UserOut:
    hashed = await run_in_threadpool(hash_password, body.password)  # slow on purpose
    try:
        user = await repo.create_user(db, body.username, hashed, body.role)
    except repo.Conflict as exc:
        raise HTTPException(409, str(exc)) from exc
    return _out(user)


@router.patch("/{username}", response_model=UserOut, responses=responses(404, 409, *WITH_BODY))
async def update_user(
    username: UsernamePath,
    body: UserPatch,
    db: DbDep,
    revocation: RevocationDep,
    admin: AdminDep,
) -> UserOut:
    """Change the role and/or disable (or re-enable) the user. Either revokes every
    token the user holds: they log in again, with the new role."""
    if username == admin.username and (body.disabled or body.role not in (None, "admin")):
        raise HTTPException(409, SELF_LOCKOUT)
    user = await repo.update_user(db, username, role=body.role, disabled=body.disabled)
    if user is None:
        raise HTTPException(404, f"user {username!r} not found")
    revocation.forget(user["id"])
    return _out(user)


@router.delete("/{username}", status_code=204, responses=responses(404, 409))
async def delete_user(
    username: UsernamePath, db: DbDep, revocation: RevocationDep, admin: AdminDep
) -> Response:
    """Delete a user who made no scans or bills (409 otherwise: disable them instead)."""
    if username == admin.username:
        raise HTTPException(409, SELF_LOCKOUT)
    try:
        async with db.transaction() as conn:
            user_id = await repo.delete_user(conn, username)
    except repo.Conflict as exc:
        raise HTTPException(409, str(exc)) from exc
    if user_id is None:
        raise HTTPException(404, f"user {username!r} not found")
    revocation.forget(user_id)
    return Response(status_code=204)
