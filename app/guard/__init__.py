"""Security monitoring inside the app (docs/architecture.md §11).

What it watches and does, each in its own module:

- identity.py: who the client is (socket peer, or X-Forwarded-For through
  TRUSTED_PROXY_HOPS trusted proxies only; the user a bearer token names);
- blocks.py: IP blocks with expiry (PostgreSQL), checked from memory: 403 before
  authentication and body parsing;
- ratelimit.py: per client and route class, `limits` in Redis, spent locally first;
- lockout.py: failed logins per account and per IP, growing lockouts that expire;
- scans.py: suspicious scanning patterns;
- signatures.py: injection signatures in rejected input (counted, never blocking);
- events.py: security events (PostgreSQL + JSON lines) and the JSON access log;
- autoblock.py: optional automatic blocks for clients that keep tripping the rules;
- middleware.py: the two ASGI layers app/middleware.py places in the stack;
- routes.py, commands.py: the admin API and `tracetrack security ...`.

`Guard` below ties them together; `create_app` keeps one in `app.state.guard`.
See docs/security.md for what an operator does with it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request

from app.guard.blocks import BlockList
from app.guard.events import ACCESS_FILE, Event, EventLog, JsonLines
from app.guard.identity import TokenUsers, client_ip
from app.guard.lockout import LoginGuard
from app.guard.metrics import GuardMetrics, default_metrics
from app.guard.ratelimit import RateLimiter, policies
from app.guard.scans import ScanWatch
from app.guard.shared import AsyncShared, SyncShared
from app.guard.signatures import scan_validation_errors
from app.security import TokenCodec
from common.settings import Settings

__all__ = ["Event", "Guard", "guard_of"]


class Guard:
    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session] | None,
        tokens: TokenCodec,
        *,
        metrics: GuardMetrics | None = None,
        log_dir: Path | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or default_metrics()
        self.trusted_hops = settings.trusted_proxy_hops
        self.events = EventLog(
            sessions,
            log_dir,
            on_dropped=self.metrics.events_dropped.inc,
            retention_days=settings.security_event_retention_days,
        )
        self.access_log = JsonLines(
            log_dir / ACCESS_FILE if log_dir and settings.access_log != "off" else None
        )
        self.log_all_requests = settings.access_log == "all"
        self.blocks = BlockList(sessions, settings.block_refresh_seconds)
        self.blocks.on_refresh.append(self.metrics.blocked_clients.set)
        self.shared = SyncShared(settings.redis_url)
        self.ashared = AsyncShared(settings.redis_url)
        self.limiter = RateLimiter(policies(settings), self.ashared)
        self.logins = LoginGuard(self.shared, settings, self.metrics, self.events.record)
        self.scans = ScanWatch(self.ashared, settings, self.metrics, self.events.record)
        self.token_users = TokenUsers(tokens)
        if settings.auto_block and sessions is not None:
            from app.guard.autoblock import AutoBlocker

            self.events.listeners.append(AutoBlocker(settings, sessions, self.blocks).on_event)

    @classmethod
    def for_app(
        cls, settings: Settings, sessions: sessionmaker[Session], tokens: TokenCodec
    ) -> Guard:
        return cls(settings, sessions, tokens, log_dir=settings.resolved_var_dir() / "log")

    def start(self) -> None:
        try:
            self.blocks.refresh()  # before the first request, not a refresh interval later
        except Exception:  # noqa: BLE001 - the refresher thread retries and says why
            pass
        self.blocks.start()
        self.events.start()

    def stop(self) -> None:
        self.blocks.stop()
        self.events.stop()
        self.access_log.close()

    # --- what routes and handlers call ------------------------------------------------
    def client_ip(self, request: Request) -> str:
        state = request.scope.get("state") or {}
        return state.get("client_ip") or client_ip(request.scope, self.trusted_hops)

    def record(self, request: Request, event: str, status: int | None, **detail: Any) -> None:
        """Record a security event about this request (never pass secrets in `detail`)."""
        state = request.scope.get("state") or {}
        self.events.record(
            Event(
                event,
                self.client_ip(request),
                state.get("username"),
                request.url.path[:200],
                status,
                detail,
                time.time(),
            )
        )

    def inspect_rejected(self, request: Request, errors: Any) -> None:
        """Count and record injection signatures in input validation refused (422)."""
        for kind, fields in scan_validation_errors(errors).items():
            self.metrics.injection_attempts.labels(kind).inc()
            self.record(request, "injection_attempt", 422, kind=kind, fields=fields)

    def billed_bag_scanned(self, request: Request, qr_id: str, status: int) -> None:
        """The billing rule refused (or flagged) a scan of a billed bag: count it."""
        state = request.scope.get("state") or {}
        self.scans.billed_bag(qr_id, state.get("username"), self.client_ip(request), status)


def guard_of(request: Request) -> Guard | None:
    """The app's guard, or None when TRACETRACK_GUARD_ENABLED=false."""
    return getattr(request.app.state, "guard", None)
