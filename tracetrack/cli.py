"""`tracetrack <command>`: each service registers its own subcommands.

Command modules keep imports light at module level (heavy imports happen in
the handlers) so `tracetrack --help` stays fast. Bad input gets one line naming it and a
non-zero exit, never a traceback: a command line that is not UTF-8 text is refused here,
options check their ranges in argparse (common/cliargs.py), each command reports what it
expects to go wrong, and anything else is reported here in one line.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

# Each module exposes `register(subparsers)` adding its subcommands; a subcommand
# sets `func(args) -> int` as its default.
COMMAND_MODULES = (
    "app.commands",
    "app.guard.commands",
    "exporter.commands",
    "alert_bridge.commands",
    "tracetrack.up",
    "reports.commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tracetrack", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def argv_problem(argv: Sequence[str]) -> str | None:
    """What is wrong with a command line no command can take: bytes that are not UTF-8
    (Python hands them over as lone surrogates, which PostgreSQL, a terminal or a log
    cannot store) or a NUL character. Named by the option they belong to."""
    for i, arg in enumerate(argv):
        if "=" in arg and arg.startswith("--"):
            where = arg.split("=", 1)[0]
        elif i and argv[i - 1].startswith("-") and argv[i - 1] != "-":
            where = argv[i - 1]
        else:
            where = f"argument {i + 1}"
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            try:
                shown = os.fsencode(arg)  # the bytes as given
            except UnicodeEncodeError:
                shown = arg.encode("utf-8", "backslashreplace")
            return f"{where}: {shown!r} is not valid UTF-8 text"
        if "\x00" in arg:
            return f"{where}: {arg!r} contains a NUL character"
    return None


def describe(exc: BaseException) -> str:
    """One line for an error no command expected: its kind and the first line of its
    message (a database driver's own, not SQLAlchemy's wrapper with its SQL)."""
    from pydantic import ValidationError

    inner = getattr(exc, "orig", None) or exc
    if isinstance(inner, ValidationError):  # settings
        from common.settings import settings_error

        return settings_error(inner)
    lines = [line.strip() for line in str(inner).splitlines() if line.strip()]
    module = type(inner).__module__.split(".")[0]
    kind = "database" if module in ("sqlalchemy", "psycopg2", "asyncpg") else type(inner).__name__
    return f"{kind}: {lines[0] if lines else type(inner).__name__}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    problem = argv_problem(argv)
    if problem:
        print(f"tracetrack: error: {problem}", file=sys.stderr)
        return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if os.environ.get("TRACETRACK_DEBUG"):
            raise
        print(f"tracetrack {args.command}: error: {describe(exc)}", file=sys.stderr)
        print("(TRACETRACK_DEBUG=1 shows where it failed)", file=sys.stderr)
        return 1
