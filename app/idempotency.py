"""`Idempotency-Key` on the API's POSTs: a retried write is stored once.

A client that timed out, or got a 503 while the database was stuck, cannot know
whether its write was committed (a COMMIT sent just before the database froze lands
when it wakes). Sending the same `Idempotency-Key` with the retry makes that safe:

- first request with a key: the key is claimed inside the request's own transaction,
  and the answer is stored in that transaction before it commits; the write and its
  answer are committed together or not at all;
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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.deps import SessionDep, UserDep

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
RETENTION = timedelta(hours=24)
PURGE_EVERY_SECONDS = 600.0

# Claim the key, or take it over when the stored one expired. RETURNING a row means
# this request owns the key until its transaction ends; a concurrent claim of the same
# key waits on the row lock meanwhile.
_CLAIM = text(
    """
    INSERT INTO idempotency_keys (user_id, key, request_hash)
    VALUES (:user_id, :key, :request_hash)
    ON CONFLICT (user_id, key) DO UPDATE
        SET request_hash = EXCLUDED.request_hash, status_code = NULL, response = NULL,
            created_at = now()
        WHERE idempotency_keys.created_at < now() - make_interval(secs => :retention)
    RETURNING 1
    """
)
_STORED = text(
    "SELECT request_hash, status_code, response FROM idempotency_keys"
    " WHERE user_id = :user_id AND key = :key"
)
_SAVE = text(
    "UPDATE idempotency_keys SET status_code = :status_code, response = :response"
    " WHERE user_id = :user_id AND key = :key"
)
_PURGE = text(
    "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => :retention)"
)


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
    """This request's key (None without the header). Routes end their write with
    `idem.commit(db, status_code, answer)` instead of `db.commit()`."""

    user_id: int
    key: str | None
    fingerprint: str = ""

    def claim(self, db: Session) -> None:
        """Own the key in this transaction, or raise Replay / a 422."""
        if self.key is None:
            return
        params = {"user_id": self.user_id, "key": self.key}
        claimed = db.execute(
            _CLAIM,
            {**params, "request_hash": self.fingerprint, "retention": RETENTION.total_seconds()},
        ).first()
        if claimed is not None:
            return
        stored = db.execute(_STORED, params).one()
        db.rollback()  # nothing of this request is written; free the connection's snapshot
        if stored.request_hash != self.fingerprint:
            raise _header_error(
                f"{HEADER} {self.key!r} was already used with a different request;"
                " use a new key for a new request"
            )
        if stored.status_code is None:  # not reachable: answers commit with their claim
            raise HTTPException(409, f"the request with {HEADER} {self.key!r} is not finished")
        raise Replay(stored.status_code, json.loads(stored.response or "null"))

    def commit(self, db: Session, status_code: int, answer: Any) -> None:
        """Store `answer` (a pydantic model or JSON-able value) with the key, and commit
        it together with the request's writes."""
        if self.key is not None:
            body = answer.model_dump(mode="json") if hasattr(answer, "model_dump") else answer
            db.execute(
                _SAVE,
                {
                    "user_id": self.user_id,
                    "key": self.key,
                    "status_code": status_code,
                    "response": json.dumps(body, default=str),
                },
            )
        db.commit()


async def idempotency(request: Request, db: SessionDep, user: UserDep) -> Idempotency:
    raw = request.headers.get(HEADER)
    if raw is None:
        return Idempotency(user.user_id, None)
    idem = Idempotency(
        user.user_id,
        valid_key(raw),
        request_hash(request.method, request.url.path, await request.body()),
    )
    await run_in_threadpool(idem.claim, db)
    return idem


IdempotencyDep = Annotated[Idempotency, Depends(idempotency)]


def purge_expired(sessionmaker: Callable[[], Session]) -> int:
    """Delete keys past RETENTION; returns how many."""
    with sessionmaker() as db:
        result: Any = db.execute(_PURGE, {"retention": RETENTION.total_seconds()})
        n = result.rowcount
        db.commit()
    return int(n or 0)


async def purge_periodically(
    sessionmaker: Callable[[], Session], every: float = PURGE_EVERY_SECONDS
) -> None:
    """The app's background task (every worker runs one; the deletes do not conflict)."""
    while True:
        await asyncio.sleep(every)
        try:
            n = await run_in_threadpool(purge_expired, sessionmaker)
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
