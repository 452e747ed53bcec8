from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response

from app import repository as repo
from app.cache import Cache
from app.cursors import BadCursor, decode_scan_cursor
from app.db import Database
from app.deps import BagWriterDep, DbDep, UserDep
from app.guard import guard_of
from app.idempotency import IdempotencyDep
from app.metrics import SCANS
from app.openapi_responses import AUTHENTICATED, WITH_BODY, responses
from app.responses import model_response
from app.routes.bags import bag_cache_key
from app.schemas import QR_PATTERN, ScanIn, ScanOut, ScanPage

router = APIRouter(prefix="/api", tags=["scans"], responses=responses(*AUTHENTICATED))


@router.post(
    "/scans", response_model=ScanOut, status_code=201, responses=responses(404, *WITH_BODY)
)
async def record_scan(
    request: Request, body: ScanIn, user: BagWriterDep, idem: IdempotencyDep
) -> Response:
    # Backends from the app rather than as dependencies, as on the lookup route: each
    # dependency FastAPI resolves costs ~10 µs of CPU on the busiest write.
    db: Database = request.app.state.db
    cache: Cache = request.app.state.cache
    if idem.key is None:  # one statement in autocommit: no BEGIN/COMMIT round trips
        scan = await repo.record_scan(db, body.qr_id, user.user_id, body.location, body.status)
        out = _scan_out(body, user.username, scan)
    else:
        async with idem.transaction(db) as conn:
            scan = await repo.record_scan(
                conn, body.qr_id, user.user_id, body.location, body.status
            )
            out = _scan_out(body, user.username, scan)
            await idem.save(conn, 201, out)
    await cache.delete(bag_cache_key(body.qr_id))
    SCANS.inc()
    if guard := guard_of(request):
        await guard.scans.ascanned(
            body.qr_id, body.location, user.user_id, user.username, guard.client_ip(request)
        )
        if scan is not None and scan["bag_billed"]:
            guard.billed_bag_scanned(request, body.qr_id, 201)
    return model_response(out, 201)


def _scan_out(body: ScanIn, username: str, scan: dict[str, Any] | None) -> ScanOut:
    if scan is None:
        raise HTTPException(404, f"bag {body.qr_id!r} not found")
    return ScanOut(
        id=scan["id"],
        qr_id=body.qr_id,
        username=username,
        location=body.location,
        scanned_at=scan["scanned_at"],
    )


def _parse_scan_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        return decode_scan_cursor(cursor)
    except BadCursor as exc:
        raise HTTPException(400, str(exc)) from exc


@router.get("/bags/{qr_id}/scans", response_model=ScanPage, responses=responses(400, 404))
async def bag_scans(
    qr_id: Annotated[str, Path(pattern=QR_PATTERN)],
    db: DbDep,
    _user: UserDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    before = _parse_scan_cursor(cursor) if cursor else None
    page = await repo.bag_scans(db, qr_id, limit, before)
    if page is None:
        raise HTTPException(404, f"bag {qr_id!r} not found")
    rows, next_cursor = page
    return model_response(ScanPage.model_validate({"items": rows, "next_cursor": next_cursor}))
