from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response

from app import repository as repo
from app.cache import Cache
from app.cursors import BadCursor, decode_bag_cursor
from app.db import Database
from app.deps import BagWriterDep, DbDep, UserDep
from app.errors import unprocessable
from app.idempotency import IdempotencyDep
from app.metrics import BAGS_CREATED
from app.openapi_responses import AUTHENTICATED, WITH_BODY, responses
from app.responses import json_bytes, model_response
from app.schemas import (
    QR_PATTERN,
    QR_PREFIX_PATTERN,
    BagIn,
    BagOut,
    BagPage,
    BulkBagsIn,
    BulkBagsOut,
)
from app.vocabulary import BagStatus, BagType

router = APIRouter(prefix="/api/bags", tags=["bags"], responses=responses(*AUTHENTICATED))
QrPath = Annotated[str, Path(pattern=QR_PATTERN)]


def bag_cache_key(qr_id: str) -> str:
    return f"bag:{qr_id}"


def bag_json(row: dict[str, Any]) -> bytes:
    """A bag as the JSON bytes `GET /api/bags/{qr_id}` answers and the cache keeps."""
    bag = BagOut.model_validate(row)
    return bag.__pydantic_serializer__.to_json(bag)


async def _insert(conn: repo.Db, bags: list[BagIn]) -> int:
    try:
        return await repo.create_bags(conn, [b.model_dump() for b in bags])
    except repo.Conflict as exc:
        raise HTTPException(409, str(exc)) from exc
    except repo.NotFound as exc:
        raise unprocessable(str(exc), "parent_qr_id") from exc
    except ValueError as exc:
        raise unprocessable(str(exc), "parent_qr_id") from exc


@router.post("", response_model=BagOut, status_code=201, responses=responses(409, *WITH_BODY))
async def create_bag(body: BagIn, db: DbDep, _user: BagWriterDep, idem: IdempotencyDep) -> Response:
    async with idem.transaction(db) as conn:
        created = await _insert(conn, [body])
        bag = bag_json(await repo.bag_dict(conn, body.qr_id))  # type: ignore[arg-type]
        await idem.save(conn, 201, bag)
    BAGS_CREATED.inc(created)
    return json_bytes(bag, 201)


@router.post(
    "/bulk", response_model=BulkBagsOut, status_code=201, responses=responses(409, *WITH_BODY)
)
async def create_bags_bulk(
    body: BulkBagsIn, db: DbDep, _user: BagWriterDep, idem: IdempotencyDep
) -> BulkBagsOut:
    async with idem.transaction(db) as conn:
        out = BulkBagsOut(created=await _insert(conn, body.bags))
        await idem.save(conn, 201, out)
    BAGS_CREATED.inc(out.created)
    return out


@router.get("/{qr_id}", response_model=BagOut, responses=responses(404))
async def get_bag(qr_id: QrPath, request: Request, _user: UserDep) -> Response:
    # The busiest route takes its backends from the app, not as dependencies: each
    # dependency FastAPI resolves costs ~10 µs of CPU, a fifth of a cached lookup's own work.
    db: Database = request.app.state.db
    cache: Cache = request.app.state.cache
    key = bag_cache_key(qr_id)
    raw = await cache.get_raw(key)
    if raw is None:
        bag = await repo.bag_dict(db, qr_id)
        if bag is None:
            raise HTTPException(404, f"bag {qr_id!r} not found")
        raw = bag_json(bag)
        await cache.set_raw(key, raw)
    return json_bytes(raw)


@router.get("", response_model=BagPage, responses=responses(400))
async def search_bags(
    db: DbDep,
    _user: UserDep,
    q: Annotated[str | None, Query(pattern=QR_PREFIX_PATTERN, description="QR id prefix")] = None,
    status: BagStatus | None = None,
    type: BagType | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    try:
        after = decode_bag_cursor(cursor) if cursor else None
    except BadCursor as exc:
        raise HTTPException(400, str(exc)) from exc
    rows, next_cursor = await repo.search_bags(db, q, status, type, limit, after)
    return model_response(BagPage.model_validate({"items": rows, "next_cursor": next_cursor}))
