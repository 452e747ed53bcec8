"""Request and response bodies. Validation here gives clients a 422 naming the field."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

QR_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$"
QR_PREFIX_PATTERN = r"^[A-Za-z0-9_\-]{1,64}$"
BILL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_\-/]{0,63}$"
Role = Literal["admin", "dispatcher", "biller"]
BagType = Literal["parent", "child"]
BagStatus = Literal["created", "in_transit", "delivered", "billed", "lost"]
MAX_BULK = 1000
QrId = Annotated[str, Field(pattern=QR_PATTERN)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class LoginIn(Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    role: Role


class UserIn(Strict):
    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.@\-]+$")
    password: str = Field(min_length=8, max_length=256)
    role: Role


class UserOut(BaseModel):
    id: int
    username: str
    role: Role
    created_at: datetime


class BagIn(Strict):
    qr_id: str = Field(pattern=QR_PATTERN)
    bag_type: BagType
    parent_qr_id: str | None = Field(None, pattern=QR_PATTERN)
    status: BagStatus = "created"
    location: str | None = Field(None, max_length=128)


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
    location: str = Field(min_length=1, max_length=128)
    status: BagStatus | None = None


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
