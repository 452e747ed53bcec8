"""Fault injection on real processes: freeze (SIGSTOP) a process tree, fill a disk.

PostgreSQL's backends call setsid(), so signalling the postmaster's process group
misses them: `frozen` stops the postmaster and every descendant by PID, and always
resumes them, so a failing test never leaves a stopped server behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psutil


def process_tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


@contextmanager
def frozen(pid: int) -> Iterator[list[psutil.Process]]:
    """SIGSTOP `pid` and its descendants for the duration of the block, then SIGCONT."""
    procs = process_tree(pid)
    stopped: list[psutil.Process] = []
    try:
        for p in procs:
            try:
                p.suspend()
                stopped.append(p)
            except psutil.NoSuchProcess:
                pass
        yield stopped
    finally:
        for p in stopped:
            try:
                p.resume()
            except psutil.NoSuchProcess:
                pass
