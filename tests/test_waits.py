"""tooling.procs.wait_until and ManagedProcess.wait_ready: the one way the suite waits.

A wait that times out names what it waited for and why the last try failed; a wait on
a service gives up as soon as the service has died and shows its log; a service that
never became ready is stopped, not left running.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tooling.procs import ManagedProcess, wait_until


def test_returns_what_the_check_found() -> None:
    answers = iter([None, [], ["found"]])
    assert wait_until(lambda: next(answers), 60, "a non-empty answer", interval=0.01) == ["found"]


def test_a_timeout_names_the_last_error() -> None:
    attempts: list[int] = []

    def check() -> bool:
        attempts.append(1)
        raise ConnectionRefusedError(f"nobody listens (attempt {len(attempts)})")

    with pytest.raises(TimeoutError) as err:
        wait_until(check, 0.1, "the sink", interval=0.01)
    assert "waiting for the sink" in str(err.value)
    last = f"last error: ConnectionRefusedError: nobody listens (attempt {len(attempts)})"
    assert last in str(err.value)
    assert isinstance(err.value.__cause__, ConnectionRefusedError)


def test_a_timeout_names_the_last_false_answer() -> None:
    with pytest.raises(TimeoutError) as err:
        wait_until(lambda: 0, 0.1, "three deliveries", interval=0.01)
    assert "the check was still false (last answer: 0)" in str(err.value)
    with pytest.raises(TimeoutError) as err:
        wait_until(lambda: False, 0.1, "three deliveries", interval=0.01)
    assert str(err.value).endswith("the check was still false")


def test_an_error_then_a_false_answer_reports_the_false_answer() -> None:
    """The reason given is the last try's, not a stale exception from before (the
    timeout leaves room for many tries after the first, even on a busy machine)."""
    answers: list[object] = [OSError("refused"), []]

    def check() -> object:
        a = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(a, Exception):
            raise a
        return a

    with pytest.raises(TimeoutError) as err:
        wait_until(check, 3, "the list", interval=0.05)
    assert "last answer: []" in str(err.value) and "refused" not in str(err.value)


def _python(tmp_path: Path, name: str, code: str) -> ManagedProcess:
    return ManagedProcess(name, [sys.executable, "-c", code], tmp_path / f"{name}.log")


def test_a_wait_on_a_process_that_died_stops_at_once_with_its_log(tmp_path: Path) -> None:
    proc = _python(
        tmp_path, "crasher", "import sys; print('config error: no such file'); sys.exit(3)"
    )
    proc.start()
    try:
        with pytest.raises(RuntimeError) as err:
            # A long timeout: only the process' death can end this wait in time.
            wait_until(lambda: False, 600, "the crasher to answer", process=proc)
    finally:
        proc.stop()
    assert "crasher exited while waiting for the crasher to answer" in str(err.value)
    assert "config error: no such file" in str(err.value)


def test_wait_ready_stops_a_process_that_never_became_ready(tmp_path: Path) -> None:
    proc = _python(
        tmp_path, "sleeper", "import time; print('starting', flush=True); time.sleep(600)"
    )
    proc.start()
    try:
        wait_until(lambda: "starting" in proc.log_path.read_text(), 60, "the sleeper's first line")
        with pytest.raises(TimeoutError) as err:
            proc.wait_ready(lambda: False, timeout=0.5)
        assert not proc.alive(), "a service that failed to start was left running"
        assert "sleeper to be ready" in str(err.value)
        assert "starting" in str(err.value)  # its log tail
    finally:
        proc.stop()


def test_wait_ready_returns_the_process_once_ready(tmp_path: Path) -> None:
    marker = tmp_path / "ready"
    code = f"import pathlib, time; pathlib.Path({str(marker)!r}).touch(); time.sleep(600)"
    proc = _python(tmp_path, "service", code)
    try:
        assert proc.start().wait_ready(marker.exists, timeout=60) is proc
        assert proc.alive()
    finally:
        proc.stop()
