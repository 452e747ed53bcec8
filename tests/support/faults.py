"""Fault injection on real processes: freeze (SIGSTOP) a process tree, fill a disk.

PostgreSQL's backends call setsid(), so signalling the postmaster's process group
misses them: `frozen` stops the postmaster and every descendant by PID, and always
resumes them, so a failing test never leaves a stopped server behind.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest


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


class SmallDisk:
    """A directory on a tmpfs of its own (root only), which a test fills to ENOSPC and
    frees again: a real full disk under the process writing there."""

    CHUNK = 64 * 1024

    def __init__(self, path: Path, size_bytes: int = 8 * 1024 * 1024) -> None:
        self.path = path
        self.size_bytes = size_bytes
        self.mounted = False
        self._filler = path / "filler.bin"

    def mount(self) -> SmallDisk:
        self.path.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0 or shutil.which("mount") is None:
            pytest.skip("a small tmpfs needs root (mount -t tmpfs); run the fault tests as root")
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={self.size_bytes}", "tmpfs", str(self.path)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        self.mounted = True
        return self

    def fill(self) -> None:
        """Write until the filesystem is full (not one byte left)."""
        fd = os.open(self._filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            for size in (self.CHUNK, 4096, 1):
                block = b"\0" * size
                try:
                    while True:
                        os.write(fd, block)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
        finally:
            os.close(fd)

    def free(self) -> None:
        self._filler.unlink(missing_ok=True)

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True)
            self.mounted = False

    def __enter__(self) -> SmallDisk:
        return self.mount()

    def __exit__(self, *exc: object) -> None:
        self.unmount()
