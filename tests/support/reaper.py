"""Stops what a pytest session left running once pytest is gone, however it ended.

Run as a script by tests/support/leaks.py at session start, in a session of its own
(so a Ctrl-C to pytest's process group does not reach it) and without the session's
mark in its environment (so it never finds itself):

    python reaper.py <pytest pid> <mark variable> <token>

It waits for the pytest process to exit, then sends SIGTERM to every process whose
environment carries `<mark variable>=<token>` (everything the session started, its
grandchildren and daemonised processes included: they inherit the environment), and
SIGKILL to those still alive 10 s later. The token is unique to the session, so other
sessions' processes on the same machine are never touched.
"""

from __future__ import annotations

import os
import select
import sys

import psutil

GRACE_SECONDS = 10.0


def marked(mark: str, token: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.pid != os.getpid() and proc.environ().get(mark) == token:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def wait_for_exit(pid: int) -> None:
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    select.select([fd], [], [])  # a pidfd becomes readable when the process exits
    os.close(fd)


def main(argv: list[str]) -> int:
    pid, mark, token = int(argv[1]), argv[2], argv[3]
    wait_for_exit(pid)
    left = marked(mark, token)
    for proc in left:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(left, timeout=GRACE_SECONDS)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            continue
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
