"""GET /notifications: recent deliveries, outbox counts and the Watchdog's state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from alert_bridge.deps import Authorized, BridgeError, ServiceDep
from alert_bridge.providers.base import display_recipient
from alert_bridge.store import DONE_STATUSES, OPEN_STATUSES

router = APIRouter()


@router.get("/notifications", dependencies=[Authorized])
async def notifications(
    service: ServiceDep, limit: int = 100, status: str | None = None
) -> JSONResponse:
    if not 1 <= limit <= 1000:
        raise BridgeError(400, "limit must be between 1 and 1000")
    valid = (*OPEN_STATUSES, *DONE_STATUSES)
    if status is not None and status not in valid:
        raise BridgeError(400, f"unknown status {status!r}; expected one of {', '.join(valid)}")
    rows, counts, wd = await run_in_threadpool(
        lambda: (
            service.store.recent(limit, status),
            service.store.counts_by_status(),
            service.watchdog.state(),
        )
    )
    return JSONResponse(
        {"counts": counts, "watchdog": wd, "deliveries": [_present(r) for r in rows]}
    )


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts else None


def _present(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["recipient"] = display_recipient(row["channel"], row["recipient"])
    for field in ("created_at", "next_attempt_at", "sent_at"):
        out[field] = _iso(row[field])
    if row["status"] in DONE_STATUSES:
        out["next_attempt_at"] = None
    return out
