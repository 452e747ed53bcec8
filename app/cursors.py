"""Keyset-pagination cursors: opaque to clients, validated on the way back in.

A cursor is base64 of what the next page starts after: a bag's qr_id, or a scan's
(scanned_at, id). Clients can send anything, so decoding checks that the contents are
values the database accepts (a qr_id of the documented pattern, an aware timestamp, an
id in BIGINT range): a forged cursor is a 400, never a DataError or a NUL in a query.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime

from app.schemas import QR_PATTERN

_QR = re.compile(QR_PATTERN)
_BIGINT_MAX = 2**63 - 1


class BadCursor(ValueError):
    def __init__(self) -> None:
        super().__init__("cursor is not one this API returned; start again without it")


def _encode(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def _decode(cursor: str) -> str:
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        return raw.decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadCursor() from exc


def encode_bag_cursor(qr_id: str) -> str:
    return _encode(qr_id)


def decode_bag_cursor(cursor: str) -> str:
    qr_id = _decode(cursor)
    if not _QR.fullmatch(qr_id):
        raise BadCursor()
    return qr_id


def encode_scan_cursor(scanned_at: datetime, scan_id: int) -> str:
    return _encode(f"{scanned_at.isoformat()}|{scan_id}")


def decode_scan_cursor(cursor: str) -> tuple[datetime, int]:
    ts, sep, raw_id = _decode(cursor).partition("|")
    if not sep or not raw_id.isascii() or not raw_id.isdigit():
        raise BadCursor()
    try:
        scanned_at = datetime.fromisoformat(ts)
        # In UTC, as the API wrote it; an offset pushing it out of range is forged.
        in_utc = scanned_at.astimezone(UTC) if scanned_at.tzinfo else None
    except (ValueError, OverflowError) as exc:
        raise BadCursor() from exc
    scan_id = int(raw_id)
    if in_utc is None or not 1 <= scan_id <= _BIGINT_MAX:
        raise BadCursor()
    return in_utc, scan_id
