"""CPU time used by a process tree, including threads and children that already exited.

Wall-clock throughput on a shared 2-core machine says more about the neighbours than
about the code; CPU seconds per request do not depend on them. A live process's time
is read from its CPU-time clock (clock_getcpuclockid + clock_gettime: nanoseconds, the
same clock as CLOCK_PROCESS_CPUTIME_ID inside it), which sums every thread the process
ever had. Summing the live threads instead (/proc/<pid>/task/*/schedstat) loses a
thread's time when it exits: anyio's worker threads (password hashing at login) leave
after 10 s idle, and a process's CPU "fell" by their hashing time, so a short
measurement read 0. The user/system times in /proc/<pid>/stat include exited threads
but count whole 10 ms clock ticks, too coarse for a few hundred requests of ~100 µs.
A PostgreSQL server forks a backend per connection and those come and go, so a tree's
CPU also counts what its exited children left with their parents (children_user/
children_system, at tick resolution).
"""

from __future__ import annotations

import ctypes
import time

import psutil

_libc = ctypes.CDLL(None, use_errno=True)


def process_cpu_seconds(pid: int) -> float | None:
    """CPU seconds of every thread `pid` ever ran (None if it is gone)."""
    clock = ctypes.c_int()
    if _libc.clock_getcpuclockid(pid, ctypes.byref(clock)) != 0:
        return None  # no such process (ESRCH), or not allowed to see it (EPERM)
    try:
        return time.clock_gettime(clock.value)
    except OSError:  # it exited since
        return None


def tree_cpu_seconds(pid: int) -> float:
    """User+system CPU seconds of `pid` and every descendant, live or reaped."""
    try:
        root = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return 0.0
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:  # a zombie or vanished child: the root still counts
        procs = [root]
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue  # exited (or a zombie) since the listing: its parent holds its time
        own = process_cpu_seconds(p.pid)
        total += (t.user + t.system if own is None else own) + t.children_user + t.children_system
    return total


class CpuMeter:
    """CPU seconds used by named process trees since the last `reset()`."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = dict(pids)
        self._start: dict[str, float] = {}
        self.reset()

    def reset(self) -> None:
        self._start = {name: tree_cpu_seconds(pid) for name, pid in self.pids.items()}

    def used(self) -> dict[str, float]:
        return {
            name: max(0.0, tree_cpu_seconds(pid) - self._start[name])
            for name, pid in self.pids.items()
        }
