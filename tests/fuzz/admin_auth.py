"""Schemathesis hooks (SCHEMATHESIS_HOOKS=tests.fuzz.admin_auth): an admin bearer token.

Fuzzing calls every operation, logout included, and logout revokes the token it was
called with. So the token is minted here with the app's secret key and the admin's
current token version, and minted again whenever a request answers 401.
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from sqlalchemy import create_engine, text

from app.security import Principal, TokenCodec

ADMIN = os.environ.get("FUZZ_ADMIN", "root")


@schemathesis.auth(refresh_interval=60)
class AdminToken:
    def __init__(self) -> None:
        self._engine = create_engine(os.environ["FUZZ_DATABASE_URL"], pool_size=1)
        self._tokens = TokenCodec(os.environ["TRACETRACK_SECRET_KEY"], 3600)

    def get(self, case: Any, ctx: Any) -> str:
        with self._engine.connect() as conn:
            user_id, role, version = conn.execute(
                text("SELECT id, role, token_version FROM users WHERE username = :u"),
                {"u": ADMIN},
            ).one()
        return self._tokens.issue(Principal(user_id, ADMIN, role, version))[0]

    def set(self, case: Any, data: str, ctx: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}
