from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path

from app import repository as repo
from app.deps import BillerDep, CacheDep, DbDep, UserDep
from app.errors import unprocessable
from app.idempotency import IdempotencyDep
from app.metrics import BILLS_CREATED
from app.openapi_responses import AUTHENTICATED, WITH_BODY, responses
from app.routes.bags import bag_cache_key
from app.schemas import BILL_PATTERN, BillIn, BillOut

router = APIRouter(prefix="/api/bills", tags=["bills"], responses=responses(*AUTHENTICATED))


@router.post("", response_model=BillOut, status_code=201, responses=responses(409, *WITH_BODY))
async def create_bill(
    body: BillIn, db: DbDep, cache: CacheDep, user: BillerDep, idem: IdempotencyDep
) -> Any:
    try:
        async with idem.transaction(db) as conn:
            await repo.create_bill(conn, body.bill_number, user.user_id, body.bag_qr_ids)
            bill = BillOut.model_validate(await repo.bill_dict(conn, body.bill_number))
            await idem.save(conn, 201, bill)
    except repo.Conflict as exc:
        raise HTTPException(409, str(exc)) from exc
    except repo.NotFound as exc:
        raise unprocessable(str(exc), "bag_qr_ids") from exc
    BILLS_CREATED.inc()
    if body.bag_qr_ids:
        await cache.delete(*(bag_cache_key(q) for q in body.bag_qr_ids))
    return bill


# `:path` because a bill number may contain "/" (BILL_PATTERN), e.g. INV/2024/17.
@router.get("/{bill_number:path}", response_model=BillOut, responses=responses(404))
async def get_bill(
    bill_number: Annotated[str, Path(pattern=BILL_PATTERN)], db: DbDep, _user: UserDep
) -> Any:
    bill = await repo.bill_dict(db, bill_number)
    if bill is None:
        raise HTTPException(404, f"bill {bill_number!r} not found")
    return bill
