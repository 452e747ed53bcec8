"""`tracetrack app | user | db | seed`: the app's subcommands."""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from app.vocabulary import ROLES
from common.cliargs import float_range, int_range, listen_problem, port
from common.topology import APP_PORT


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("app", help="serve the TraceTrack API")
    p.add_argument(
        "--host", default=None, help="bind address (default TRACETRACK_HOST or 127.0.0.1)"
    )
    p.add_argument("--port", type=port, default=None, help=f"port (default APP_PORT or {APP_PORT})")
    p.add_argument(
        "--workers", type=int_range(1, 256), default=None, help="worker processes (default 1)"
    )
    p.set_defaults(func=run_app)

    p = sub.add_parser("user", help="manage users")
    usub = p.add_subparsers(dest="user_command", required=True)
    add = usub.add_parser("add", help="create a user")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (else prompt)",
    )
    add.set_defaults(func=add_user)
    for verb, helptext in (
        ("disable", "disable a user: no more logins, and their tokens stop working"),
        ("enable", "re-enable a disabled user (they log in again)"),
    ):
        cmd = usub.add_parser(verb, help=helptext)
        cmd.add_argument("name")
        cmd.set_defaults(func=set_user_disabled, disable=verb == "disable")

    p = sub.add_parser("db", help="database schema")
    dsub = p.add_subparsers(dest="db_command", required=True)
    up = dsub.add_parser("upgrade", help="migrate the schema to the newest revision")
    up.set_defaults(func=db_upgrade)

    p = sub.add_parser("seed", help="load realistic demo data with COPY")
    p.add_argument(
        "--bags",
        type=int_range(0, 1_000_000_000),
        required=True,
        help="number of bags (5,000,000+)",
    )
    p.add_argument("--scans-per-bag", type=float_range(0, 100), default=1.0)
    p.add_argument("--users", type=int_range(0, 1_000_000), default=50)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=seed)


def _settings_and_url():
    from common.pgserver import resolve_database_url
    from common.settings import Settings

    settings = Settings()
    return settings, resolve_database_url(settings.database_url, settings.resolved_var_dir())


def run_app(args: argparse.Namespace) -> int:
    import uvicorn

    from common.settings import Settings

    settings = Settings()
    host = args.host or settings.host
    port = args.port or settings.app_port
    if problem := listen_problem(host, port):  # before the database starts
        print(f"error: {problem}", file=sys.stderr)
        return 2
    settings, url = _settings_and_url()
    workers = args.workers or settings.app_workers
    # Workers are fresh processes configured from the environment: hand them what the
    # parent resolved (the embedded database URL, the worker count for pool sizing).
    os.environ["DATABASE_URL"] = url
    os.environ["APP_WORKERS"] = str(workers)
    if settings.metrics_enabled:
        from app.instrumentation import prepare_multiprocess

        prepare_multiprocess(settings)
        if workers == 1:
            from app.instrumentation.multiproc import serve_multiprocess_here

            serve_multiprocess_here()
    # Imported only now: they define metrics, and prometheus_client picks its value
    # class at first import, so the multiprocess directory must be set before that
    # (with one worker uvicorn serves from this very process).
    from app.db import migrate
    from app.security import secret_key

    if settings.migrate_on_start:
        migrate(url)
    secret_key(settings)  # generate it once here, not racing in N workers
    print(f"TraceTrack app: http://{host}:{port}  (workers: {workers})", flush=True)
    uvicorn.run(
        "app.main:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
        # uvicorn would otherwise believe X-Forwarded-For from loopback peers and hand
        # the app a client address any local caller can choose. The app's guard reads
        # that header itself, through TRUSTED_PROXY_HOPS proxies only (app/guard/identity.py).
        proxy_headers=False,
        timeout_graceful_shutdown=10,
        # Longer than clients' and proxies' idle reuse, so a busy server doesn't close
        # a keep-alive connection just as the client sends on it (RemoteDisconnected).
        timeout_keep_alive=75,
    )
    return 0


def add_user(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from app import repository as repo
    from app.schemas import UserIn
    from app.users import add_user as create

    if args.password_stdin:
        try:
            password = sys.stdin.buffer.readline().decode("utf-8").rstrip("\n")
        except UnicodeDecodeError:
            print("error: password: standard input is not valid UTF-8 text", file=sys.stderr)
            return 2
    else:
        try:
            password = getpass.getpass(f"password for {args.name}: ")
        except EOFError:
            print("error: password: no input (use --password-stdin to pipe one)", file=sys.stderr)
            return 2
    try:
        body = UserIn(username=args.name, password=password, role=args.role)
    except ValidationError as exc:
        for err in exc.errors():
            print(f"error: {err['loc'][0]}: {err['msg']}", file=sys.stderr)
        return 2
    _settings, url = _settings_and_url()
    try:
        create(url, body.username, body.password, body.role)
    except repo.Conflict as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"created {body.role} {body.username}")
    return 0


def set_user_disabled(args: argparse.Namespace) -> int:
    from app.users import set_disabled

    settings, url = _settings_and_url()
    if not set_disabled(url, args.name, args.disable):
        print(f"error: no user named {args.name!r}", file=sys.stderr)
        return 1
    if args.disable:
        print(
            f"disabled {args.name}: their tokens stop working within "
            f"{settings.token_state_ttl_seconds:g} s"
        )
    else:
        print(f"enabled {args.name}: they can log in again")
    return 0


def db_upgrade(_args: argparse.Namespace) -> int:
    from app.db import migrate

    _settings, url = _settings_and_url()
    migrate(url)
    print("database is at the newest revision")
    return 0


def seed(args: argparse.Namespace) -> int:
    from app.db import migrate
    from app.seed import seed_database

    _settings, url = _settings_and_url()
    migrate(url)
    stats = seed_database(
        url,
        bags=args.bags,
        scans_per_bag=args.scans_per_bag,
        users=args.users,
        progress=not args.no_progress,
    )
    print(stats.summary())
    return 0
