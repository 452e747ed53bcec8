"""`tracetrack <command>`: each service registers its own subcommands.

Command modules keep imports light at module level (heavy imports happen in
the handlers) so `tracetrack --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
