"""The guard's admin API and its validation-error hook.

- `GET /analytics/api/security?since=1h`: recent security events, the top offending
  IPs and accounts, and the active blocks (admins);
- `GET|POST|DELETE /api/security/blocks`: list, add (`{"network", "for", "reason"}`)
  and lift (`?network=`) IP blocks, as `tracetrack security block|unblock|list` do;
- `POST /api/security/unlock`: end a login lockout (`{"username"}` or `{"ip"}`).
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.deps import AdminDep, SessionDep
from app.errors import unprocessable
from app.guard import Guard
from app.guard.blocks import BadNetwork, active_blocks, add_block, lift_block
from app.guard.events import recent_events, top_offenders
from app.guard.lockout import ACCOUNT, CLIENT_IP
from app.openapi_responses import AUTHENTICATED, WITH_BODY, responses
from app.schemas import Text

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
MAX_BLOCK = timedelta(days=3650)


def parse_duration(text: str) -> timedelta:
    """`30s`, `15m`, `1h`, `7d`, `1h30m` -> timedelta (ValueError naming the format)."""
    match = _DURATION.match(text.strip())
    if not text.strip() or match is None or not any(match.groups()):
        raise ValueError(f"{text!r} is not a duration; write e.g. 30m, 1h, 7d or 1h30m")
    d, h, m, s = (int(g) if g else 0 for g in match.groups())
    try:
        value = timedelta(days=d, hours=h, minutes=m, seconds=s)
    except OverflowError:  # more days than timedelta holds: far past the limit below
        value = MAX_BLOCK + MAX_BLOCK
    if value.total_seconds() <= 0 or value > MAX_BLOCK:
        raise ValueError(f"{text!r}: a duration must be between 1 s and 10 years")
    return value


def _guard(request: Request) -> Guard:
    guard: Guard | None = getattr(request.app.state, "guard", None)
    if guard is None:
        raise HTTPException(503, "the security guard is off (TRACETRACK_GUARD_ENABLED=false)")
    return guard


class BlockIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    network: str = Field(min_length=1, max_length=49, description="address or CIDR network")
    duration: str = Field("1h", alias="for", max_length=32, description="e.g. 30m, 1h, 7d")
    reason: Text = Field(min_length=1, max_length=500)


class UnlockIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Text | None = Field(None, min_length=1, max_length=64)  # as LoginIn's
    ip: str | None = Field(None, min_length=1, max_length=45)

    @field_validator("ip")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise ValueError("not an IP address (e.g. 203.0.113.7)") from None
        return value

    @model_validator(mode="after")
    def _one(self) -> UnlockIn:
        if (self.username is None) == (self.ip is None):
            raise ValueError("give exactly one of username or ip")
        return self


# 503 also when the guard is off (TRACETRACK_GUARD_ENABLED=false).
router = APIRouter(tags=["security"], responses=responses(*AUTHENTICATED))


@router.get("/analytics/api/security")
def security_overview(
    request: Request,
    db: SessionDep,
    _admin: AdminDep,
    since: Annotated[str, Query(max_length=32, description="e.g. 1h, 24h, 7d")] = "1h",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    try:
        start = datetime.now(UTC) - parse_duration(since)
    except ValueError as exc:
        raise unprocessable(str(exc), "since", where="query") from exc
    guard = _guard(request)
    guard.events.flush()  # this worker's newest events, not half a second later
    top = top_offenders(db, start)
    return {
        "since": start.isoformat(),
        "events": recent_events(db, start, limit=limit),
        "top_ips": top["ips"],
        "top_accounts": top["accounts"],
        "blocks": [b.as_dict() for b in active_blocks(db)],
    }


@router.get("/api/security/blocks")
def list_blocks(db: SessionDep, _admin: AdminDep) -> list[dict[str, Any]]:
    return [b.as_dict() for b in active_blocks(db)]


@router.post("/api/security/blocks", status_code=201, responses=responses(*WITH_BODY))
def block(request: Request, body: BlockIn, db: SessionDep, admin: AdminDep) -> dict[str, Any]:
    guard = _guard(request)
    try:
        duration = parse_duration(body.duration)
        added = add_block(db, body.network, duration, body.reason, admin.username)
    except BadNetwork as exc:
        raise unprocessable(str(exc), "network") from exc
    except ValueError as exc:
        raise unprocessable(str(exc), "for") from exc
    guard.blocks.refresh()
    guard.record(
        request, "block_added", 201, network=added.network, expires=added.expires_at.isoformat()
    )
    return added.as_dict()


@router.delete("/api/security/blocks", responses=responses(404))
def unblock(
    request: Request,
    db: SessionDep,
    admin: AdminDep,
    network: Annotated[str, Query(min_length=1, max_length=49)],
) -> dict[str, Any]:
    guard = _guard(request)
    try:
        lifted = lift_block(db, network, admin.username)
    except BadNetwork as exc:
        raise unprocessable(str(exc), "network", where="query") from exc
    if not lifted:
        raise HTTPException(404, f"no active block of {network}")
    guard.blocks.refresh()
    guard.record(request, "block_lifted", 200, network=network)
    return {"lifted": lifted}


@router.post("/api/security/unlock", responses=responses(*WITH_BODY))
def unlock(request: Request, body: UnlockIn, _admin: AdminDep) -> dict[str, Any]:
    guard = _guard(request)
    scope, who = (ACCOUNT, body.username) if body.username else (CLIENT_IP, body.ip)
    assert who is not None
    was_locked = guard.logins.unlock(scope, who)
    guard.record(request, "lockout_lifted", 200, scope=scope, target=who)
    return {"scope": scope, "target": who, "was_locked": was_locked}


def install_guard(app: FastAPI) -> None:
    """Mount the admin API. (Rejected input reaches `Guard.inspect_rejected` from the
    app's validation-error handler, app/errors.py.)"""
    app.include_router(router)
