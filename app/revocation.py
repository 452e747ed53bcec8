"""Tokens that die with their user: revocation without a database round trip per request.

Each user has a token version (users.token_version); every token carries the version
it was issued with. Logout, a role change and disabling bump the version, so every
token issued before stops working; deleting the user removes the row, which does the
same. A request checks its token against the user's current state, kept per worker in
memory for `ttl` seconds (Settings.token_state_ttl_seconds) and read from PostgreSQL
on a miss: one indexed lookup per active user per `ttl`, never one per request.

A revocation made through this worker (logout, PATCH or DELETE /api/users) takes effect
at once here, and within `ttl` on every other worker, replica, and after `tracetrack
user disable`. That bound is stated in docs/api.md.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from cachetools import TTLCache

from app.security import Principal, TokenCodec, TokenError


@dataclass(frozen=True)
class UserState:
    token_version: int
    role: str
    active: bool


class TokenRevocation:
    """`authenticate(token)`: the token's principal, if its user still stands behind it."""

    def __init__(
        self,
        tokens: TokenCodec,
        load: Callable[[int], Awaitable[UserState | None]],
        ttl: float,
        max_users: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tokens = tokens
        self._load = load
        # None is cached too: a deleted user's tokens keep failing without a lookup each.
        self._states: TTLCache[int, UserState | None] = TTLCache(max_users, ttl, timer=clock)

    async def authenticate(self, token: str) -> Principal:
        principal = self._tokens.verify(token)
        state = await self.state(principal.user_id)
        if state is None:
            raise TokenError("token revoked: the user no longer exists")
        if not state.active:
            raise TokenError("token revoked: the account is disabled")
        if principal.token_version != state.token_version or principal.role != state.role:
            raise TokenError("token revoked (logout or role change); log in again")
        return principal

    async def state(self, user_id: int) -> UserState | None:
        try:
            return self._states[user_id]
        except KeyError:
            pass
        state = await self._load(user_id)  # on the event loop: no thread hop
        self._states[user_id] = state
        return state

    def forget(self, user_id: int) -> None:
        """Drop the cached state after changing it, so this worker sees the change now."""
        self._states.pop(user_id, None)
