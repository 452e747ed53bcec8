from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request

from app import repository as repo
from app.cursors import BadCursor, decode_scan_cursor
from app.deps import BagWriterDep, CacheDep, SessionDep, UserDep
from app.guard import guard_of
from app.idempotency import IdempotencyDep
from app.metrics import SCANS
from app.routes.bags import bag_cache_key
from app.schemas import QR_PATTERN, ScanIn, ScanOut, ScanPage

router = APIRouter(prefix="/api", tags=["scans"])


def _bag_id(db: SessionDep, qr_id: str) -> int:
    ids = repo.bag_ids(db, [qr_id])
    if qr_id not in ids:
        raise HTTPException(404, f"bag {qr_id!r} not found")
    return ids[qr_id]


@router.post("/scans", response_model=ScanOut, status_code=201)
def record_scan(
    request: Request,
    body: ScanIn,
    db: SessionDep,
    cache: CacheDep,
    user: BagWriterDep,
    idem: IdempotencyDep,
) -> ScanOut:
    bag_id = _bag_id(db, body.qr_id)
    scan = repo.record_scan(db, bag_id, user.user_id, body.location, body.status)
    out = ScanOut(
        id=scan["id"],
        qr_id=body.qr_id,
        username=user.username,
        location=body.location,
        scanned_at=scan["scanned_at"],
    )
    idem.commit(db, 201, out)
    cache.delete(bag_cache_key(body.qr_id))
    SCANS.inc()
    if guard := guard_of(request):
        guard.scans.scanned(
            body.qr_id, body.location, user.user_id, user.username, guard.client_ip(request)
        )
        if scan["bag_billed"]:
            guard.billed_bag_scanned(request, body.qr_id, 201)
    return out


def _parse_scan_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        return decode_scan_cursor(cursor)
    except BadCursor as exc:
        raise HTTPException(400, str(exc)) from exc


@router.get("/bags/{qr_id}/scans", response_model=ScanPage)
def bag_scans(
    qr_id: Annotated[str, Path(pattern=QR_PATTERN)],
    db: SessionDep,
    _user: UserDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> ScanPage:
    before = _parse_scan_cursor(cursor) if cursor else None
    rows, next_cursor = repo.bag_scans(db, _bag_id(db, qr_id), limit, before)
    return ScanPage(items=[ScanOut.model_validate(r) for r in rows], next_cursor=next_cursor)
