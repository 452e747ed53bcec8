"""Fault injection on real processes: freeze (SIGSTOP) a process tree, fill a disk;
and what a careful client does after a fault (`retry_scan`).

PostgreSQL's backends call setsid(), so signalling the postmaster's process group
misses them: `frozen` stops the postmaster and every descendant by PID, and always
resumes them, so a failing test never leaves a stopped server behind.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
import pytest


def retry_scan(
    client: httpx.Client, key: str, body: dict[str, str], deadline: float
) -> httpx.Response:
    """POST the scan again with its Idempotency-Key until it is not a 503, following
    Retry-After (at most 1 s between tries), until `deadline` (time.monotonic()): after
    the database is back, a worker's stall breaker may fail fast until its next probe,
    and a busy host may miss a deadline again. Every 503 must carry Retry-After."""
    while True:
        r = client.post("/api/scans", json=body, headers={"Idempotency-Key": key})
        if r.status_code != 503 or time.monotonic() > deadline:
            return r
        assert "Retry-After" in r.headers, r.text
        time.sleep(min(float(r.headers["Retry-After"]), 1.0))


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
