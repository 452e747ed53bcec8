"""How the app answers errors: one documented JSON shape per kind, never the input.

- 4xx from HTTPException: `{"detail": "reason"}` (schemas.ErrorOut).
- 422, from request validation and from domain rules alike:
  `{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}` (FastAPI's
  HTTPValidationError). The rejected input is never echoed back: it may be a password,
  megabytes long, or not serialisable at all (NaN, an unpaired surrogate), and a 500
  while rendering a 422 would page on-call for a client's typo.
- 409 when a concurrent write won a race past our own checks: a plain reason; the
  constraint name goes to the log, never SQL details to the client.
- 503 when the database is down or the pool is exhausted, with Retry-After; when it did
  not answer in time (app/db_deadline.py), Retry-After 5 and tracetrack_db_timeouts_total.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import asyncpg
from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from app.db import UNAVAILABLE_ERRORS, PoolExhausted, statement_deadline_seconds
from app.db_deadline import timeout_kind
from app.guard import guard_of
from app.metrics import DB_TIMEOUTS

log = logging.getLogger(__name__)

# Retry-After of a 503 for a database timeout.
TIMEOUT_RETRY_AFTER_SECONDS = 5

# Enough to fix a request; a 1000-item bulk body with every item wrong stays small.
MAX_ERRORS = 20
# A location element is a field name or index, but extra keys are client-chosen.
MAX_LOC_CHARS = 64


def printable(text: str, limit: int = MAX_LOC_CHARS) -> str:
    """`text` shortened to `limit` characters, unpaired surrogates escaped, so it
    always encodes as UTF-8 JSON."""
    short = text if len(text) <= limit else text[: limit - 1] + "…"
    return short.encode("utf-8", "backslashreplace").decode("utf-8")


def _loc(loc: Sequence[Any]) -> list[str | int]:
    return [p if isinstance(p, int) else printable(str(p)) for p in loc]


def validation_detail(errors: Sequence[Any]) -> list[dict[str, Any]]:
    detail = [
        {"loc": _loc(e["loc"]), "msg": printable(str(e["msg"]), 300), "type": str(e["type"])}
        for e in errors[:MAX_ERRORS]
    ]
    if len(errors) > MAX_ERRORS:
        detail.append(
            {
                "loc": ["body"],
                "msg": f"{len(errors) - MAX_ERRORS} more problem(s) not listed",
                "type": "too_many_errors",
            }
        )
    return detail


def unprocessable(
    msg: str, *loc: str | int, where: str = "body", kind: str = "value_error"
) -> HTTPException:
    """A domain rule's 422, in the same shape as a validation error; `where` is body,
    query or path, as in FastAPI's own locations."""
    return HTTPException(422, [{"loc": [where, *loc], "msg": msg, "type": kind}])


class AllowedMethods:
    """The methods each path serves, from the OpenAPI document (built on first use).

    Starlette answers 405 with the `Allow` of the first route matching the path, which
    lists only that route's method when GET and POST on one path are separate routes
    (RFC 9110: Allow lists every method the resource supports).
    """

    def __init__(self, app: FastAPI) -> None:
        self._app = app
        self._paths: list[tuple[re.Pattern[str], frozenset[str]]] | None = None

    def _build(self) -> list[tuple[re.Pattern[str], frozenset[str]]]:
        paths = []
        # Literal paths first: /api/bags/bulk is that resource, even though the
        # template /api/bags/{qr_id} matches it too.
        items = sorted(self._app.openapi().get("paths", {}).items(), key=lambda i: "{" in i[0])
        for template, item in items:
            methods = {m.upper() for m in item if m in _HTTP_METHODS}
            if "GET" in methods:
                methods.add("HEAD")  # Starlette serves HEAD wherever it serves GET
            paths.append((compile_path(template)[0], frozenset(methods)))
        return paths

    def for_path(self, path: str) -> list[str]:
        if self._paths is None:
            self._paths = self._build()
        for pattern, methods in self._paths:
            if pattern.match(path):
                return sorted(methods)
        return []


_HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def add_error_handlers(app: FastAPI) -> None:
    allowed = AllowedMethods(app)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(req: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:
            methods = allowed.for_path(req.url.path)
            if methods:
                exc.headers = {**(exc.headers or {}), "Allow": ", ".join(methods)}
        return await http_exception_handler(req, exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(req: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if guard := guard_of(req):
            # Counts SQL/script/traversal signatures in what was refused (app/guard/signatures.py).
            guard.inspect_rejected(req, errors)
        return JSONResponse({"detail": validation_detail(errors)}, status_code=422)

    async def database_unavailable(req: Request, exc: Exception) -> JSONResponse:
        kind = timeout_kind(exc)
        if kind is not None:
            # Bounded by app/db_deadline.py: answered at once, counted, and the client
            # told when to come back (a database in trouble is rarely fine a second later).
            DB_TIMEOUTS.labels(kind).inc()
            log.warning("database timeout (%s): %s", kind, str(exc).strip())
            limit = statement_deadline_seconds(req.app.state.settings)
            return JSONResponse(
                {
                    "detail": f"database did not answer in time ({kind.replace('_', ' ')},"
                    f" limit {limit:g} s), retry shortly"
                },
                status_code=503,
                headers={"Retry-After": str(TIMEOUT_RETRY_AFTER_SECONDS)},
            )
        if isinstance(exc, PoolExhausted):
            log.error("%s", exc)
            detail = "server busy: no database connection free, retry shortly"
        else:
            log.error("database unavailable: %s: %s", type(exc).__name__, exc)
            detail = "database unavailable, retry shortly"
        return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": "1"})

    # A lock wait cut by lock_timeout is not an "unavailable" class in asyncpg.
    for error in (*UNAVAILABLE_ERRORS, asyncpg.LockNotAvailableError):
        app.add_exception_handler(error, database_unavailable)

    @app.exception_handler(asyncpg.IntegrityConstraintViolationError)
    async def integrity(
        req: Request, exc: asyncpg.IntegrityConstraintViolationError
    ) -> JSONResponse:
        # A concurrent insert won the race past our own existence check. The client
        # learns what to do; the constraint (never the SQL or its DETAIL) is logged.
        log.warning(
            "integrity conflict on %s %s: constraint %s",
            req.method,
            req.url.path,
            getattr(exc, "constraint_name", None) or "unknown",
        )
        return JSONResponse(
            {"detail": "conflicts with a concurrent change to the same data; reload and retry"},
            status_code=409,
        )
