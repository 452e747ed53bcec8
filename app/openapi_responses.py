"""What the OpenAPI document says each route may answer besides its success.

Every status the app gives is documented with its body, so a client (and schemathesis,
which `make test` runs over /openapi.json) can rely on the document. The 422 of
request validation is added by FastAPI itself; domain 422s use the same shape.

Answered by layers in front of every route (app/middleware.py): 403 for a blocked
client, 429 from rate limits, and 413 for a body over the limit, so routers list
those with the ones their handlers give.
"""

from __future__ import annotations

from typing import Any

from app.schemas import ErrorOut

_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "string"}}}

RESPONSES: dict[int, dict[str, Any]] = {
    400: {
        "model": ErrorOut,
        "description": "A cursor this API did not return, or a body that is not UTF-8 JSON",
    },
    401: {
        "model": ErrorOut,
        "description": "Missing, invalid, expired or revoked bearer token; or wrong credentials",
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
    },
    403: {
        "model": ErrorOut,
        "description": "The role may not do this, the account is disabled, or the client "
        "address is blocked",
    },
    404: {"model": ErrorOut, "description": "No such resource"},
    409: {"model": ErrorOut, "description": "Conflicts with existing data"},
    413: {"model": ErrorOut, "description": "Request body over the configured size limit"},
    429: {
        "model": ErrorOut,
        "description": "Rate limited or locked out; retry after Retry-After seconds",
        "headers": _RETRY_AFTER,
    },
    503: {
        "model": ErrorOut,
        "description": "Database unavailable or busy; retry after Retry-After seconds",
        "headers": _RETRY_AFTER,
    },
}

# Every route may be refused by the guard in front of it (blocked client, rate limit).
GUARDED = (403, 429)
# Routes behind a bearer token that read or write PostgreSQL.
AUTHENTICATED = (401, *GUARDED, 503)
# Routes taking a JSON body: undecodable (400), over the size limit (413).
WITH_BODY = (400, 413)


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: RESPONSES[code] for code in sorted(set(codes))}


# --- the /analytics pages (browsers: HTML and redirects) ---------------------------------
HTML: dict[str, Any] = {"text/html": {"schema": {"type": "string"}}}
ERROR_JSON: dict[str, Any] = {
    "application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}
}
PAGE_GUARD: dict[int | str, dict[str, Any]] = {
    403: {
        "description": "Not an admin (HTML), or a blocked client (JSON)",
        "content": {**HTML, **ERROR_JSON},
    },
    429: {
        "description": "Rate limited or locked out (JSON, or the login page)",
        "content": {**HTML, **ERROR_JSON},
    },
}
REDIRECT: dict[str, Any] = {
    "description": "Redirect",
    "headers": {"Location": {"schema": {"type": "string"}}},
}
