"""Nothing the test suite starts may outlive it (pytest plugin, from the root conftest).

Every process the session starts inherits `TRACETRACK_TEST_SESSION=<token>` (unique to
the session) and `TRACETRACK_TEST_NODEID=<the test being set up>` in its environment,
so its descendants are recognisable wherever they end up: a daemonised server or an
orphan re-parented to init still carries them.

- At the end of the session, after every fixture has been torn down, a process still
  carrying the token fails the run: the report names it, its command line and the test
  that started it, and it is then killed (so the leak does not pile up on CI).
- A reaper process (tests/support/reaper.py) started at session start does the same
  killing after pytest has exited, however that happened (`kill -9`, a timeout), for
  whatever the children's parent-death signal (tooling.procs.spawn) did not reach.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

SESSION_MARK = "TRACETRACK_TEST_SESSION"
TEST_MARK = "TRACETRACK_TEST_NODEID"
# Stopping is asynchronous for some services (a uvicorn worker after its master, a
# PostgreSQL backend after its client): what is gone within this long was not leaked.
SETTLE_SECONDS = 20.0

_token: str | None = None


def pytest_sessionstart(session: pytest.Session) -> None:
    global _token
    _token = uuid.uuid4().hex
    os.environ[SESSION_MARK] = _token
    reaper_env = {k: v for k, v in os.environ.items() if k not in (SESSION_MARK, TEST_MARK)}
    # Not through tooling.procs.spawn: the reaper must outlive pytest to do its job.
    subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("reaper.py")),
            str(os.getpid()),
            SESSION_MARK,
            _token,
        ],
        env=reaper_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    os.environ[TEST_MARK] = item.nodeid


def _ours() -> list[psutil.Process]:
    """Live processes carrying this session's token, other than pytest itself."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.pid == os.getpid() or proc.environ().get(SESSION_MARK) != _token:
                continue
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def _describe(proc: psutil.Process) -> str:
    try:
        with proc.oneshot():
            started_by = proc.environ().get(TEST_MARK, "(session start)")
            cmd = " ".join(proc.cmdline())[:200]
            return f"pid {proc.pid} (ppid {proc.ppid()}), started during {started_by}: {cmd}"
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return f"pid {proc.pid} (exited while being described)"


def leftovers(settle: float = SETTLE_SECONDS) -> list[psutil.Process]:
    deadline = time.monotonic() + settle
    while True:
        left = _ours()
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.5)


@pytest.hookimpl(trylast=True)  # after the runner's own sessionfinish tore fixtures down
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _token is None:
        return
    left = leftovers()
    if not left:
        return
    lines = [_describe(p) for p in left]
    for proc in left:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            continue
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_sep("=", f"{len(lines)} process(es) outlived the tests", red=True)
        for line in lines:
            reporter.write_line(line)
        reporter.write_line("(killed now; every child must be stopped by whoever started it)")
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
