"""bench/cpu.py counts a process's CPU even after the thread that used it has exited
(anyio's worker threads do, 10 s after a login's password hash)."""

from __future__ import annotations

import subprocess
import sys

from bench.cpu import CpuMeter, process_cpu_seconds, tree_cpu_seconds

# A thread burns CPU and exits; the process then says how much and waits to be read.
CHILD = """
import sys, threading, time
def burn():
    start = time.thread_time()
    while time.thread_time() - start < 0.2:
        pass
t = threading.Thread(target=burn)
t.start()
t.join()
print(time.process_time(), flush=True)
sys.stdin.read()
"""


def test_a_thread_that_exited_still_counts() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        used = float(child.stdout.readline())  # the child's own count, the thread included
        assert used >= 0.2
        seen = process_cpu_seconds(child.pid)
        assert seen is not None and seen >= used
        assert tree_cpu_seconds(child.pid) >= used
    finally:
        child.communicate("")
    assert process_cpu_seconds(child.pid) is None  # reaped: gone


def test_meter_counts_a_thread_that_exits_during_the_measurement() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.readline()\n" + CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        meter = CpuMeter({"child": child.pid})
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write("go\n")
        child.stdin.flush()
        child.stdout.readline()  # the thread has burnt 0.2 s and exited
        assert meter.used()["child"] >= 0.2
    finally:
        child.communicate("")
