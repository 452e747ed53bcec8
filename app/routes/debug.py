"""Fault injection for alerting tests; mounted only with TRACETRACK_DEBUG_ENDPOINTS=1.

They let a test push the real app over a threshold (slow responses, 5xx) without
mocks. Never enable them in production.
"""

import asyncio
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

router = APIRouter(prefix="/api/debug", tags=["debug"])


@router.get("/slow")
async def slow(seconds: Annotated[float, Query(ge=0, le=30)] = 1.0) -> dict[str, float]:
    # Sleeps in the app, not in PostgreSQL: a slow answer must not be cut short by the
    # statement timeout (5 s) that bounds every real query, nor hold a pooled connection.
    await asyncio.sleep(seconds)
    return {"slept": seconds}


@router.get("/error")
def error() -> None:
    raise HTTPException(500, "deliberate error from /api/debug/error")
