"""Rate limits per client and route class, kept by `limits` in Redis, spent locally first.

A client is the user its bearer token names, else its IP address; the route class
is `login`, `writes` (POST, PUT, PATCH, DELETE) or `reads` (everything else). Each
(class, client) has a sliding-window budget (limits' SlidingWindowCounter) shared
by every worker and replica through Redis (app/guard/shared.py).

Local first: a Redis round trip per request would cost more CPU than the whole
guard's budget (< 50 µs a request), so each worker counts a client's hits in memory
and hands them to Redis in one `hit(cost=n)` when it holds `batch` of them or a
second has passed, whichever comes first. `batch` is 1 % of the limit (at least 1),
so a tight limit is checked on every request and a generous one is at most
`workers x batch` hits late. Once Redis says a budget is spent, the worker refuses
that client locally until the window frees up, with no further round trips: a flood
costs a dictionary lookup per request.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from limits import RateLimitItem, parse_many

from app.guard.shared import AsyncBackend, AsyncShared
from common.settings import Settings

LOGIN, WRITES, READS = "login", "writes", "reads"
LOGIN_PATHS = frozenset({"/api/auth/login", "/analytics/login"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Probes and scrapes are not clients' work: never limited.
EXEMPT_PATHS = frozenset({"/metrics", "/healthz", "/readyz", "/livez"})
FLUSH_SECONDS = 1.0
# Above this many tracked clients, idle ones are forgotten (their unsent hits, at most
# one batch each, with them).
MAX_TRACKED = 100_000


def route_class(method: str, path: str) -> str | None:
    if path in EXEMPT_PATHS:
        return None
    if method in WRITE_METHODS:
        return LOGIN if path in LOGIN_PATHS else WRITES
    return READS


@dataclass
class Policy:
    route_class: str
    item: RateLimitItem
    batch: int

    @property
    def window_seconds(self) -> int:
        return int(self.item.get_expiry())

    def describe(self) -> str:
        return f"{self.item.amount} per {self.window_seconds} s"


def policies(settings: Settings) -> dict[str, Policy]:
    configured = {
        LOGIN: settings.rate_limit_login,
        WRITES: settings.rate_limit_writes,
        READS: settings.rate_limit_reads,
    }
    out = {}
    for klass, text in configured.items():
        item = parse_many(text)[0]
        out[klass] = Policy(klass, item, max(1, item.amount // 100))
    return out


class _Client:
    __slots__ = ("pending", "flushed_at", "refused_until")

    def __init__(self, now: float) -> None:
        self.pending = 0
        self.flushed_at = now
        self.refused_until = 0.0


class RateLimiter:
    def __init__(
        self,
        policies: dict[str, Policy],
        shared: AsyncShared,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.policies = policies
        self._shared = shared
        self._clock = clock
        self._clients: dict[tuple[str, str], _Client] = {}

    async def hit(self, klass: str, client: str) -> float | None:
        """Spend one request of `client`'s `klass` budget: None if allowed, else the
        seconds until it may try again."""
        now = self._clock()
        key = (klass, client)
        state = self._clients.get(key)
        if state is None:
            if len(self._clients) >= MAX_TRACKED:
                self._forget_idle(now)
            state = self._clients[key] = _Client(now)
        if state.refused_until > now:
            return state.refused_until - now
        state.pending += 1
        policy = self.policies[klass]
        if state.pending < policy.batch and now - state.flushed_at < FLUSH_SECONDS:
            return None
        cost, state.pending, state.flushed_at = state.pending, 0, now
        allowed, reset_at = await self._shared.run(
            lambda backend: self._spend(backend, policy, client, cost)
        )
        if allowed:
            return None
        state.refused_until = max(reset_at, now + 1.0)
        return state.refused_until - now

    @staticmethod
    async def _spend(
        backend: AsyncBackend, policy: Policy, client: str, cost: int
    ) -> tuple[bool, float]:
        if await backend.moving.hit(policy.item, policy.route_class, client, cost=cost):
            return True, 0.0
        stats = await backend.moving.get_window_stats(policy.item, policy.route_class, client)
        return False, stats.reset_time

    async def clear(self, klass: str, client: str) -> None:
        """Give `client` a fresh `klass` budget (tests; an admin's reset)."""
        self._clients.pop((klass, client), None)
        policy = self.policies[klass]
        await self._shared.run(
            lambda backend: backend.moving.clear(policy.item, policy.route_class, client)
        )

    def _forget_idle(self, now: float) -> None:
        horizon = now - max(p.window_seconds for p in self.policies.values())
        self._clients = {
            k: c
            for k, c in self._clients.items()
            if c.refused_until > now or c.flushed_at > horizon
        }
        if len(self._clients) >= MAX_TRACKED:
            self._clients.clear()


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
