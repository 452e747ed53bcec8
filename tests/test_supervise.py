"""`tracetrack up` keeps its services running (tooling/supervise.py): real processes that
crash or are killed are restarted with a backoff and a line each; a crash loop is given
up with the reason; stopping stops all. Time comes from an injected clock."""

from __future__ import annotations

import io
import sys
from pathlib import Path

from tooling.procs import ManagedProcess, wait_until
from tooling.supervise import RestartPolicy, Supervisor


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def python(name: str, code: str, tmp_path: Path) -> ManagedProcess:
    return ManagedProcess(name, [sys.executable, "-c", code], tmp_path / f"{name}.log")


def test_backoff_doubles_up_to_the_cap() -> None:
    p = RestartPolicy(initial_backoff=1, max_backoff=30)
    assert [p.backoff(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_a_killed_service_is_restarted_and_the_others_keep_running(tmp_path: Path) -> None:
    out, clock = io.StringIO(), Clock()
    sup = Supervisor(out, RestartPolicy(initial_backoff=2), clock)
    sleeper = "import time\nwhile True: time.sleep(1)"
    redis = sup.add(python("redis", sleeper, tmp_path).start())
    app = sup.add(python("app", sleeper, tmp_path).start())
    try:
        first_pid = redis.pid
        redis.kill9()
        clock.now += 60  # it had run a while: not a crash loop
        sup.check()
        assert "[up] redis was killed by SIGKILL after 60.0s; restarting in 2s" in out.getvalue()
        assert not redis.alive() and app.alive()
        clock.now += 1
        sup.check()
        assert not redis.alive()  # still in its backoff
        clock.now += 1
        sup.check()
        assert redis.alive() and redis.pid != first_pid
        assert f"[up] redis restarted (pid {redis.pid}, restart 1)" in out.getvalue()
        assert app.alive()
    finally:
        sup.stop()
    assert not redis.alive() and not app.alive()


def test_a_crash_loop_backs_off_then_is_given_up_with_the_reason(tmp_path: Path) -> None:
    out, clock = io.StringIO(), Clock()
    policy = RestartPolicy(initial_backoff=1, max_backoff=4, stable_after=10, give_up_after=4)
    sup = Supervisor(out, policy, clock)
    crasher = "import sys; print('bad config: EXPORTER_PORT'); sys.exit(3)"
    proc = sup.add(python("exporter", crasher, tmp_path).start())
    delays = []
    try:
        for _ in range(10):
            wait_until(lambda: not proc.alive(), 20, "the crash")
            clock.now += 0.5
            sup.check()  # notices the exit
            service = sup.services[0]
            if service.gave_up:
                break
            assert service.restart_at is not None
            delays.append(service.restart_at - clock.now)
            clock.now = service.restart_at
            sup.check()  # starts it again
        text = out.getvalue()
        assert delays == [1, 2, 4]  # doubling, capped at max_backoff
        assert text.count("[up] exporter exited with code 3 after") == 4
        assert "giving up: it exited with code 3 4 times in a row, each within 10s" in text
        assert "bad config: EXPORTER_PORT" in text  # the log tail says why
        clock.now += 100
        sup.check()
        assert not proc.alive()  # left down
    finally:
        sup.stop()


def test_a_long_run_resets_the_crash_count(tmp_path: Path) -> None:
    out, clock = io.StringIO(), Clock()
    policy = RestartPolicy(initial_backoff=1, stable_after=10, give_up_after=2)
    sup = Supervisor(out, policy, clock)
    proc = sup.add(python("bridge", "import sys; sys.exit(1)", tmp_path).start())
    try:
        for _ in range(3):  # three crashes, each after a long run: never given up
            wait_until(lambda: not proc.alive(), 20, "the exit")
            clock.now += 60
            sup.check()
            assert sup.services[0].gave_up is None
            assert sup.services[0].quick_crashes == 1
            clock.now += 1
            sup.check()
        assert out.getvalue().count("restarting in 1s") == 3
    finally:
        sup.stop()
