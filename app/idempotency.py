"""`Idempotency-Key` on the API's POSTs: a retried write is stored once.

A client that timed out, or got a 503 while the database was stuck, cannot know
whether its write was committed (a COMMIT sent just before the database froze lands
when it wakes). Sending the same `Idempotency-Key` with the retry makes that safe:

- first request with a key: the key is claimed inside the request's own transaction
  (`async with idem.transaction(db) as conn:`), and the answer is stored in that
  transaction before it commits (`await idem.save(conn, status, answer)`); the write
  and its answer are committed together or not at all;
- the same key and the same request again (same method, path and JSON body): the
  first answer is returned, status and body, with `Idempotent-Replayed: true`, and
  nothing new is stored;
- the same key with another request: 422 naming the header;
- the same key while the first request is still running: the retry waits for it (the
  claim is a row lock), then gets its answer, or runs itself if the first one failed.

Keys are per user (one user cannot read another's answers) and are kept for
`RETENTION`; a request that fails (4xx, 5xx) stores nothing, so its retry runs again.
Without the header a POST behaves as before. This follows the IETF draft
"The Idempotency-Key HTTP Header Field" and Stripe's API.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from app.db import Database
from app.deps import UserDep
from app.repository import Db

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
RETENTION = timedelta(hours=24)
PURGE_EVERY_SECONDS = 600.0

# Claim the key, or take it over when the stored one expired. RETURNING a row means
# this request owns the key until its transaction ends; a concurrent claim of the same
# key waits on the row lock meanwhile.
_CLAIM = """
    INSERT INTO idempotency_keys (user_id, key, request_hash)
    VALUES ($1, $2, $3)
    ON CONFLICT (user_id, key) DO UPDATE
        SET request_hash = EXCLUDED.request_hash, status_code = NULL, response = NULL,
            created_at = now()
        WHERE idempotency_keys.created_at < now() - make_interval(secs => $4)
    RETURNING 1
"""
_STORED = (
    "SELECT request_hash, status_code, response FROM idempotency_keys"
    " WHERE user_id = $1 AND key = $2"
)
_SAVE = (
    "UPDATE idempotency_keys SET status_code = $3, response = $4 WHERE user_id = $1 AND key = $2"
)
_PURGE = "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)"


class Replay(Exception):
    """The stored answer to an earlier request with the same key: sent as it was."""

    def __init__(self, status_code: int, body: Any) -> None:
        super().__init__(status_code)
        self.status_code = status_code
        self.body = body


def _header_error(msg: str) -> HTTPException:
    # The shape of every 422 (app/errors.py), located at the header.
    return HTTPException(422, [{"loc": ["header", HEADER], "msg": msg, "type": "value_error"}])


def valid_key(key: str) -> str:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise _header_error(
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters (a UUID is ideal)"
        )
    return key


def request_hash(method: str, path: str, body: bytes) -> str:
    """What makes two requests "the same": method, path and the JSON body's content
    (key order and whitespace do not matter)."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
    except ValueError:
        canonical = body.decode("utf-8", "backslashreplace")
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


@dataclass
class Idempotency:
    """This request's key (None without the header). Routes write inside
    `async with idem.transaction(db) as conn:` and end with `await idem.save(conn, ...)`."""

    user_id: int
    key: str | None
    fingerprint: str = ""

    @asynccontextmanager
    async def transaction(self, db: Database) -> AsyncIterator[Db]:
        """A transaction that owns the key (if any): raises Replay or a 422 when the key
        was used before, having written nothing."""
        async with db.transaction() as conn:
            await self._claim(conn)
            yield conn

    async def _claim(self, conn: Db) -> None:
        if self.key is None:
            return
        claimed = await conn.fetchval(
            _CLAIM, self.user_id, self.key, self.fingerprint, RETENTION.total_seconds()
        )
        if claimed is not None:
            return
        stored = await conn.fetchrow(_STORED, self.user_id, self.key)
        assert stored is not None  # the conflicting row, locked until this transaction ends
        if stored["request_hash"] != self.fingerprint:
            raise _header_error(
                f"{HEADER} {self.key!r} was already used with a different request;"
                " use a new key for a new request"
            )
        if stored["status_code"] is None:  # not reachable: answers commit with their claim
            raise HTTPException(409, f"the request with {HEADER} {self.key!r} is not finished")
        raise Replay(stored["status_code"], json.loads(stored["response"] or "null"))

    async def save(self, conn: Db, status_code: int, answer: Any) -> None:
        """Store `answer` (JSON bytes, a pydantic model or a JSON-able value) with the key, inside the
        transaction, so it commits together with the request's writes."""
        if self.key is None:
            return
        if isinstance(answer, bytes):  # already the JSON the response sends
            stored = answer.decode()
        else:
            body = answer.model_dump(mode="json") if hasattr(answer, "model_dump") else answer
            stored = json.dumps(body, default=str)
        await conn.execute(_SAVE, self.user_id, self.key, status_code, stored)


async def idempotency(request: Request, user: UserDep) -> Idempotency:
    raw = request.headers.get(HEADER)
    if raw is None:
        return Idempotency(user.user_id, None)
    return Idempotency(
        user.user_id,
        valid_key(raw),
        request_hash(request.method, request.url.path, await request.body()),
    )


IdempotencyDep = Annotated[Idempotency, Depends(idempotency)]


async def purge_expired(db: Database) -> int:
    """Delete keys past RETENTION; returns how many."""
    status = await db.execute(_PURGE, RETENTION.total_seconds())
    return int(status.rsplit(" ", 1)[-1] or 0)  # "DELETE <n>"


async def purge_periodically(db: Database, every: float = PURGE_EVERY_SECONDS) -> None:
    """The app's background task (every worker runs one; the deletes do not conflict)."""
    while True:
        await asyncio.sleep(every)
        try:
            n = await purge_expired(db)
        except Exception as exc:  # noqa: BLE001 - the database may be down; try next time
            log.warning("could not purge expired idempotency keys: %s", exc)
        else:
            if n:
                log.info("purged %d idempotency keys older than %s", n, RETENTION)


def install(app: FastAPI) -> None:
    """Answer a replay with the stored status and body."""

    @app.exception_handler(Replay)
    async def replay(_req: Request, exc: Replay) -> JSONResponse:
        return JSONResponse(
            exc.body, status_code=exc.status_code, headers={REPLAYED_HEADER: "true"}
        )
