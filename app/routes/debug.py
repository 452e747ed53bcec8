"""Fault injection for alerting tests; mounted only with TRACETRACK_DEBUG_ENDPOINTS=1.

They let a test push the real app over a threshold (slow responses, 5xx) without
mocks. Never enable them in production.
"""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import text

from app.deps import SessionDep

router = APIRouter(prefix="/api/debug", tags=["debug"])


@router.get("/slow")
def slow(db: SessionDep, seconds: Annotated[float, Query(ge=0, le=30)] = 1.0) -> dict[str, float]:
    db.execute(text("SELECT pg_sleep(:s)"), {"s": seconds})
    return {"slept": seconds}


@router.get("/error")
def error() -> None:
    raise HTTPException(500, "deliberate error from /api/debug/error")
