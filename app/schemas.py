"""Request and response bodies. Validation here gives clients a 422 naming the field."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.vocabulary import BagType, Role, SettableBagStatus

QR_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$"
QR_PREFIX_PATTERN = r"^[A-Za-z0-9_\-]{1,64}$"
BILL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_\-/]{0,63}$"
BILLED_BY_BILLING = "Only adding a bag to a bill (POST /api/bills) marks it billed."
MAX_BULK = 1000
QrId = Annotated[str, Field(pattern=QR_PATTERN)]
USERNAME_PATTERN = r"^[A-Za-z0-9_.@\-]+$"

# PostgreSQL's text types cannot hold NUL, and a lone surrogate cannot be encoded as
# UTF-8: either would fail in the database driver, far from the field that carried it.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(value: str) -> str:
    """The value unchanged, or ValueError naming the character PostgreSQL cannot store."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return value
    if found.group() == "\x00":
        raise ValueError("must not contain the NUL character (U+0000)")
    raise ValueError("must not contain an unpaired surrogate (U+D800 to U+DFFF)")


# Free text that reaches the database, trimmed of surrounding whitespace.
Text = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(storable)]
# A secret is kept exactly as typed: "pw   " and "pw" are different passwords.
Secret = Annotated[str, AfterValidator(storable)]


class Strict(BaseModel):
    # strict: JSON's 0 is not false and "1" is not true; the documented types only.
    model_config = ConfigDict(extra="forbid", strict=True)


class LoginIn(Strict):
    username: Text = Field(min_length=1, max_length=64)
    password: Secret = Field(min_length=1, max_length=256)


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    role: Role


class UserIn(Strict):
    username: str = Field(min_length=3, max_length=64, pattern=USERNAME_PATTERN)
    password: Secret = Field(min_length=8, max_length=256)
    role: Role


class UserPatch(Strict):
    role: Role | None = None
    disabled: bool | None = Field(
        None, description="true: the user can no longer log in and their tokens stop working"
    )


class UserOut(BaseModel):
    id: int
    username: str
    role: Role
    created_at: datetime
    disabled: bool = False


class BagIn(Strict):
    qr_id: str = Field(pattern=QR_PATTERN)
    bag_type: BagType
    parent_qr_id: str | None = Field(None, pattern=QR_PATTERN)
    status: SettableBagStatus = Field("created", description=BILLED_BY_BILLING)
    location: Text | None = Field(None, max_length=128)


class BulkBagsIn(Strict):
    bags: list[BagIn] = Field(min_length=1, max_length=MAX_BULK)


class BagOut(BaseModel):
    qr_id: str
    bag_type: BagType
    parent_qr_id: str | None
    status: str
    location: str | None
    created_at: datetime
    updated_at: datetime


class BagPage(BaseModel):
    items: list[BagOut]
    next_cursor: str | None


class BulkBagsOut(BaseModel):
    created: int


class ScanIn(Strict):
    qr_id: str = Field(pattern=QR_PATTERN)
    location: Text = Field(min_length=1, max_length=128)
    status: SettableBagStatus | None = Field(None, description=BILLED_BY_BILLING)


class ScanOut(BaseModel):
    id: int
    qr_id: str
    username: str
    location: str
    scanned_at: datetime


class ScanPage(BaseModel):
    items: list[ScanOut]
    next_cursor: str | None


class BillIn(Strict):
    bill_number: str = Field(pattern=BILL_PATTERN)
    bag_qr_ids: list[QrId] = Field(default_factory=list, max_length=MAX_BULK)


class BillOut(BaseModel):
    bill_number: str
    status: str
    created_by: str
    created_at: datetime
    bag_qr_ids: list[str]


class ErrorOut(BaseModel):
    detail: str
