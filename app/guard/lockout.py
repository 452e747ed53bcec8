"""Failed logins and lockouts (OWASP Authentication Cheat Sheet).

Failures are counted per account and per client IP over `login_failure_window_seconds`.
Past `login_max_failures_per_account` failures, logins to that account are refused
with 429 and Retry-After; past `login_max_failures_per_ip`, logins from that IP to any
account are (credential stuffing). A lockout lasts `lockout_base_seconds`, doubled for
each lockout in a row (remembered for `lockout_memory_seconds`) up to
`lockout_max_seconds`, and then expires by itself: no attacker can impose a permanent
lock on a user, and `tracetrack security unlock USER` ends one at once.

While locked, the password is not even checked (the right one is refused too), which
also spares the server the deliberately slow hash. Unknown user names are counted and
locked like real ones, so lockouts tell nobody which accounts exist.

Counters live in the shared storage (Redis, else this process's memory:
app/guard/shared.py), so every worker and replica sees the same failures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from app.guard.events import Event
from app.guard.metrics import GuardMetrics
from app.guard.shared import SyncBackend, SyncShared
from common.settings import Settings

ACCOUNT, CLIENT_IP = "account", "client_ip"


@dataclass(frozen=True)
class Lockout:
    scope: str  # ACCOUNT | CLIENT_IP
    retry_after: float  # seconds

    def message(self) -> str:
        whom = "this account" if self.scope == ACCOUNT else "your address"
        return (
            f"too many failed logins for {whom}; try again in {max(1, round(self.retry_after))} s"
        )


def _key(kind: str, scope: str, who: str) -> str:
    return f"login:{kind}:{scope}:{who}"


class LoginGuard:
    def __init__(
        self,
        shared: SyncShared,
        settings: Settings,
        metrics: GuardMetrics,
        record: Callable[[Event], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._shared = shared
        self._settings = settings
        self._metrics = metrics
        self._record = record
        self._clock = clock
        self._max = {
            ACCOUNT: settings.login_max_failures_per_account,
            CLIENT_IP: settings.login_max_failures_per_ip,
        }

    # --- before checking the password --------------------------------------------
    def locked(self, username: str, ip: str) -> Lockout | None:
        """The lockout in force for this login, if any (the longer of the two scopes)."""
        now = self._clock()
        until = self._shared.run(
            lambda b: {
                scope: self._lock_expiry(b, scope, who)
                for scope, who in ((ACCOUNT, username), (CLIENT_IP, ip))
            }
        )
        scope, latest = max(until.items(), key=lambda kv: kv[1])
        if latest <= now:
            return None
        self._metrics.login_failures.labels("locked_out").inc()
        self._record(
            Event(
                "login_refused_locked",
                ip,
                username,
                "/api/auth/login",
                429,
                {"scope": scope, "retry_after_s": round(latest - now)},
            )
        )
        return Lockout(scope, latest - now)

    @staticmethod
    def _lock_expiry(backend: SyncBackend, scope: str, who: str) -> float:
        key = _key("lock", scope, who)
        if backend.storage.get(key) <= 0:
            return 0.0
        return backend.storage.get_expiry(key)

    # --- after checking it ---------------------------------------------------------
    def failed(self, username: str, ip: str, reason: str) -> Lockout | None:
        """Count a failure (`reason`: bad_password | unknown_user); start a lockout when
        this one crosses a threshold, and return it."""
        self._metrics.login_failures.labels(reason).inc()
        window = self._settings.login_failure_window_seconds
        counts = self._shared.run(
            lambda b: {
                scope: b.storage.incr(_key("failures", scope, who), window)
                for scope, who in ((ACCOUNT, username), (CLIENT_IP, ip))
            }
        )
        self._record(
            Event(
                "login_failed",
                ip,
                username,
                "/api/auth/login",
                401,
                {"reason": reason, "failures": counts[ACCOUNT], "window_s": window},
            )
        )
        started = None
        for scope, who in ((ACCOUNT, username), (CLIENT_IP, ip)):
            if counts[scope] >= self._max[scope]:
                lock = self._lock(scope, who, counts[scope])
                self._record(
                    Event(
                        f"{scope}_locked",
                        ip,
                        username,
                        "/api/auth/login",
                        429,
                        {"failures": counts[scope], "locked_for_s": round(lock.retry_after)},
                    )
                )
                if started is None or lock.retry_after > started.retry_after:
                    started = lock
        return started

    def _lock(self, scope: str, who: str, failures: int) -> Lockout:
        s = self._settings

        def lock(b: SyncBackend) -> float:
            level = b.storage.incr(_key("level", scope, who), s.lockout_memory_seconds)
            seconds = min(s.lockout_max_seconds, s.lockout_base_seconds * 2 ** (level - 1))
            b.storage.clear(_key("lock", scope, who))
            b.storage.incr(_key("lock", scope, who), int(seconds))
            # A fresh budget once the lock expires; the next lockout lasts twice as long.
            b.storage.clear(_key("failures", scope, who))
            return float(seconds)

        seconds = self._shared.run(lock)
        self._metrics.lockouts.labels(scope).inc()
        return Lockout(scope, seconds)

    def succeeded(self, username: str) -> None:
        """A successful login wipes the account's failures (not its IP's, nor its run of
        lockouts: an attacker who also knows one password gains nothing on the others)."""
        self._shared.run(lambda b: b.storage.clear(_key("failures", ACCOUNT, username)))

    def unlock(self, scope: str, who: str) -> bool:
        """End a lockout now and forget its failures and its run. True if one was active."""
        return unlock(self._shared, scope, who)


def unlock(shared: SyncShared, scope: str, who: str) -> bool:
    """End the lockout of an account or a client IP (and forget its failures and its run
    of lockouts) in the shared storage. True if one was active."""

    def clear(b: SyncBackend) -> bool:
        was = b.storage.get(_key("lock", scope, who)) > 0
        for kind in ("lock", "failures", "level"):
            b.storage.clear(_key(kind, scope, who))
        return was

    return shared.run(clear)
