"""`tracetrack security block|unblock|list|events|unlock`: the operator's side of the guard.

They work on what every app worker and replica shares: blocks and events in
PostgreSQL (DATABASE_URL), lockouts in Redis (REDIS_URL). The apps pick a new block
up within TRACETRACK_BLOCK_REFRESH_SECONDS (2 s by default).
"""

from __future__ import annotations

import argparse
import getpass
import ipaddress
import json
import sys
from datetime import UTC, datetime
from typing import Any

from common.cliargs import int_range


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("security", help="IP blocks, lockouts and security events")
    ssub = p.add_subparsers(dest="security_command", required=True)

    b = ssub.add_parser("block", help="refuse an address or a CIDR network (403) for a while")
    b.add_argument("network", help="e.g. 203.0.113.7 or 203.0.113.0/24")
    b.add_argument("--for", dest="duration", default="1h", help="e.g. 30m, 1h, 7d (default 1h)")
    b.add_argument("--reason", required=True, help="why: shown to whoever reviews the block")
    b.set_defaults(func=block)

    u = ssub.add_parser("unblock", help="lift the active block of an address or network")
    u.add_argument("network")
    u.set_defaults(func=unblock)

    ls = ssub.add_parser("list", help="the active blocks")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    ls.set_defaults(func=list_blocks)

    e = ssub.add_parser("events", help="recent security events, newest first")
    e.add_argument("--since", default="1h", help="e.g. 15m, 1h, 7d (default 1h)")
    e.add_argument("--kind", help="only this kind (login_failed, rate_limited, ...)")
    e.add_argument("--limit", type=int_range(1, 100_000), default=100)
    e.add_argument("--json", action="store_true", help="one JSON object per line")
    e.set_defaults(func=events)

    k = ssub.add_parser("unlock", help="end a login lockout now")
    who = k.add_mutually_exclusive_group(required=True)
    who.add_argument("user", nargs="?", help="the account")
    who.add_argument("--ip", type=ip_address, help="a client address locked out across accounts")
    k.set_defaults(func=unlock)


def ip_address(text: str) -> str:
    """An IP address as the guard writes it (else argparse names --ip, exit 2)."""
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IP address") from None


def _operator() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no login name in a container: still say where from
        return "cli"


def _sessions():
    from app.commands import _settings_and_url
    from app.db import make_background_engine, make_sessionmaker, migrate

    settings, url = _settings_and_url()
    migrate(url)
    engine = make_background_engine(url, settings)
    return settings, make_sessionmaker(engine)


def _record(sessions: Any, kind: str, network: str) -> None:
    """The security event of an operator's block or unblock, stored at once."""
    from app.guard.events import Event, EventLog

    log = EventLog(sessions, None)
    log.record(Event(kind, None, _operator(), "cli", None, {"network": network}))
    log.flush()


def shown(value: object) -> str:
    """Text from the outside (a username, a path, a reason) as a terminal shows it: control
    characters escaped, so an attacker's login name can neither drive the operator's
    terminal (escape sequences) nor print a forged event line (a newline)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(value))


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def block(args: argparse.Namespace) -> int:
    from app.guard.blocks import BadNetwork, add_block
    from app.guard.routes import parse_duration

    try:
        duration = parse_duration(args.duration)
    except ValueError as exc:
        return _fail(f"--for: {exc}")
    _settings, sessions = _sessions()
    try:
        with sessions() as db:
            added = add_block(db, args.network, duration, args.reason, _operator())
    except (BadNetwork, ValueError) as exc:
        return _fail(str(exc))
    _record(sessions, "block_added", added.network)
    print(f"blocked {added.network} until {added.expires_at.isoformat()} ({args.reason})")
    return 0


def unblock(args: argparse.Namespace) -> int:
    from app.guard.blocks import BadNetwork, lift_block

    _settings, sessions = _sessions()
    try:
        with sessions() as db:
            lifted = lift_block(db, args.network, _operator())
    except BadNetwork as exc:
        return _fail(str(exc))
    if not lifted:
        print(f"no active block of {args.network}", file=sys.stderr)
        return 1
    _record(sessions, "block_lifted", args.network)
    print(f"unblocked {args.network}")
    return 0


def list_blocks(args: argparse.Namespace) -> int:
    from app.guard.blocks import active_blocks, expires_in

    _settings, sessions = _sessions()
    with sessions() as db:
        blocks = active_blocks(db)
    if args.json:
        for b in blocks:
            print(json.dumps(b.as_dict()))
        return 0
    if not blocks:
        print("no active blocks")
        return 0
    print(f"{'NETWORK':<22} {'EXPIRES IN':>10}  {'SOURCE':<6} {'BY':<16} REASON")
    for b in blocks:
        left = int(expires_in(b))
        human = (
            f"{left // 3600}h{left % 3600 // 60:02d}m"
            if left >= 3600
            else f"{left // 60}m{left % 60:02d}s"
        )
        by, reason = shown(b.created_by), shown(b.reason)
        print(f"{b.network:<22} {human:>10}  {b.source:<6} {by:<16} {reason}")
    return 0


def events(args: argparse.Namespace) -> int:
    from app.guard.events import recent_events
    from app.guard.routes import parse_duration

    try:
        since = datetime.now(UTC) - parse_duration(args.since)
    except ValueError as exc:
        return _fail(f"--since: {exc}")
    _settings, sessions = _sessions()
    with sessions() as db:
        rows = recent_events(db, since, kind=args.kind, limit=args.limit)
    if args.json:
        for r in rows:
            print(json.dumps(r))
        return 0
    if not rows:
        print(f"no security events since {since.isoformat(timespec='seconds')}")
        return 0
    for r in rows:
        detail = " ".join(f"{shown(k)}={shown(v)}" for k, v in (r["detail"] or {}).items())
        count = f" x{r['count']}" if r["count"] > 1 else ""
        print(
            f"{r['time'][:19]}  {r['kind']:<22}{count:<6} ip={shown(r['client_ip'] or '-')}"
            f" user={shown(r['user'] or '-')} route={shown(r['route'] or '-')}"
            f" status={r['status'] or '-'} {detail}"
        )
    return 0


def unlock(args: argparse.Namespace) -> int:
    from app.guard.lockout import ACCOUNT, CLIENT_IP
    from app.guard.lockout import unlock as unlock_in
    from app.guard.shared import SyncShared
    from common.settings import Settings

    settings = Settings()
    scope, who = (CLIENT_IP, args.ip) if args.ip else (ACCOUNT, args.user)
    if not settings.redis_url:
        return _fail(
            "REDIS_URL is not set: lockouts live in each app worker's memory, where this"
            " command cannot reach them; they expire by themselves (at most"
            f" {settings.lockout_max_seconds} s), or an admin can POST /api/security/unlock"
        )
    shared = SyncShared(settings.redis_url)
    was = unlock_in(shared, scope, who)
    if not shared.on_redis:
        return _fail("Redis (REDIS_URL) does not answer; nothing was unlocked")
    print(
        f"unlocked {scope} {who}"
        if was
        else f"{scope} {who} was not locked out (its failures are cleared)"
    )
    return 0
