"""argparse types for `tracetrack` options: a value out of range is refused by argparse
with the option's name and the accepted range (exit 2), before any work starts, instead
of failing later inside a socket call, PostgreSQL or the seeder."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def int_range(low: int, high: int) -> Callable[[str], int]:
    """An integer from `low` to `high`, both included."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range ({low} to {high})")
        return value

    parse.__name__ = "integer"  # argparse names the type in its own messages
    return parse


def float_range(low: float, high: float) -> Callable[[str], float]:
    """A finite number from `low` to `high`, both included (no nan, no inf)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is out of range ({low:g} to {high:g})")
        return value

    parse.__name__ = "number"
    return parse


def listen_problem(host: str, port: int) -> str | None:
    """Why a server cannot listen on host:port before it tries (uvicorn says only
    "[Errno -2] Name or service not known", naming neither), else None."""
    import socket

    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        return f"cannot listen on {host}:{port}: {reason} (--host or TRACETRACK_HOST)"
    return None


port = int_range(1, 65535)
# 0 asks the system for a free port (a service that can print the one it got).
port_or_any = int_range(0, 65535)
