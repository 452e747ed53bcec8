from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query

from app import repository as repo
from app.cursors import BadCursor, decode_bag_cursor
from app.deps import BagWriterDep, CacheDep, SessionDep, UserDep
from app.errors import unprocessable
from app.idempotency import Idempotency, IdempotencyDep
from app.metrics import BAGS_CREATED
from app.schemas import (
    QR_PATTERN,
    QR_PREFIX_PATTERN,
    BagIn,
    BagOut,
    BagPage,
    BagStatus,
    BagType,
    BulkBagsIn,
    BulkBagsOut,
)

router = APIRouter(prefix="/api/bags", tags=["bags"])
QrPath = Annotated[str, Path(pattern=QR_PATTERN)]


def bag_cache_key(qr_id: str) -> str:
    return f"bag:{qr_id}"


def _insert(db: SessionDep, bags: list[BagIn]) -> int:
    try:
        created = repo.create_bags(db, [b.model_dump() for b in bags])
    except repo.Conflict as exc:
        raise HTTPException(409, str(exc)) from exc
    except repo.NotFound as exc:
        raise unprocessable(str(exc), "parent_qr_id") from exc
    except ValueError as exc:
        raise unprocessable(str(exc), "parent_qr_id") from exc
    return created


def _committed(db: SessionDep, idem: Idempotency, created: int, answer: Any) -> None:
    idem.commit(db, 201, answer)
    BAGS_CREATED.inc(created)


@router.post("", response_model=BagOut, status_code=201)
def create_bag(
    body: BagIn, db: SessionDep, _user: BagWriterDep, idem: IdempotencyDep
) -> dict[str, Any]:
    created = _insert(db, [body])
    bag = BagOut.model_validate(repo.bag_dict(db, body.qr_id)).model_dump(mode="json")
    _committed(db, idem, created, bag)
    return bag


@router.post("/bulk", response_model=BulkBagsOut, status_code=201)
def create_bags_bulk(
    body: BulkBagsIn, db: SessionDep, _user: BagWriterDep, idem: IdempotencyDep
) -> BulkBagsOut:
    out = BulkBagsOut(created=_insert(db, body.bags))
    _committed(db, idem, out.created, out)
    return out


@router.get("/{qr_id}", response_model=BagOut)
def get_bag(qr_id: QrPath, db: SessionDep, cache: CacheDep, _user: UserDep) -> Any:
    key = bag_cache_key(qr_id)
    cached = cache.get(key)
    if cached is not None:
        return cached
    bag = repo.bag_dict(db, qr_id)
    if bag is None:
        raise HTTPException(404, f"bag {qr_id!r} not found")
    payload = BagOut.model_validate(bag).model_dump(mode="json")
    cache.set(key, payload)
    return payload


@router.get("", response_model=BagPage)
def search_bags(
    db: SessionDep,
    _user: UserDep,
    q: Annotated[str | None, Query(pattern=QR_PREFIX_PATTERN, description="QR id prefix")] = None,
    status: BagStatus | None = None,
    type: BagType | None = None,  # noqa: A002 - the API's parameter name
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> BagPage:
    try:
        after = decode_bag_cursor(cursor) if cursor else None
    except BadCursor as exc:
        raise HTTPException(400, str(exc)) from exc
    rows, next_cursor = repo.search_bags(db, q, status, type, limit, after)
    return BagPage(items=[BagOut.model_validate(r) for r in rows], next_cursor=next_cursor)
