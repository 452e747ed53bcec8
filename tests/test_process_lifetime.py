"""Nothing a test or `tracetrack up` starts outlives it, even when it is killed -9.

tooling.procs.spawn gives every child a parent-death signal, forked from a thread that
lives as long as the process; tests/support/leaks.py fails a pytest run that leaves a
process behind, and its reaper stops what a killed pytest left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil

from tooling.checkout import ROOT
from tooling.procs import spawn, wait_until

# Starts a child the way fixtures do (from a worker thread that then ends, and one
# demoted to another user like PostgreSQL), prints the children's PIDs, then waits to die.
PARENT = textwrap.dedent("""
    import os, pwd, signal, sys, threading, time
    from pathlib import Path
    from tooling.procs import ManagedProcess

    pids = []
    def start(name, preexec=None):
        proc = ManagedProcess(
            name, ["sleep", "600"], Path(sys.argv[1]) / f"{name}.log", preexec_fn=preexec
        ).start()
        pids.append(proc.pid)

    worker = threading.Thread(target=start, args=("from-a-thread",))
    worker.start()
    worker.join()
    nobody = pwd.getpwnam("nobody")
    def demote():
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)
    start("demoted", demote if os.geteuid() == 0 else None)
    print(*pids, flush=True)
    time.sleep(600)
""")


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_children_die_when_their_parent_is_killed(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2
        # The thread that started the first one has ended: its child is still there.
        assert not any(gone(pid) for pid in pids)
        parent.kill()
        parent.wait()
        wait_until(lambda: all(gone(pid) for pid in pids), 30, "the orphans to die")
    finally:
        parent.kill()
        parent.wait()


LEAKY_TEST = textwrap.dedent("""
    import subprocess

    def test_leaves_a_process_behind():
        subprocess.Popen(["sleep", "600"])
""")


def test_a_run_that_leaves_a_process_behind_fails_and_names_it(tmp_path: Path) -> None:
    (tmp_path / "test_leaky.py").write_text(LEAKY_TEST)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        + ["-p", "tests.support.leaks", "--rootdir", str(tmp_path), str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "1 passed" in out
    assert "1 process(es) outlived the tests" in out
    assert "started during test_leaky.py::test_leaves_a_process_behind: sleep 600" in out


def test_the_reaper_stops_what_a_killed_pytest_left(tmp_path: Path) -> None:
    started = tmp_path / "started"
    (tmp_path / "test_killed.py").write_text(
        textwrap.dedent(f"""
        import os, subprocess, time
        from pathlib import Path

        def test_killed_midway():
            # start_new_session: not even a signal to pytest's group reaches it
            child = subprocess.Popen(["sleep", "600"], start_new_session=True)
            Path({str(started)!r}).write_text(str(child.pid))
            time.sleep(600)
        """)
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    pytest_run = spawn(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        + ["-p", "tests.support.leaks", "--rootdir", str(tmp_path), str(tmp_path)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: started.exists() and started.read_text() != "", 120, "the test")
        child = int(started.read_text())
        assert not gone(child)
        os.kill(pytest_run.pid, signal.SIGKILL)
        pytest_run.wait()
        wait_until(lambda: gone(child), 60, "the reaper to stop the orphan")
    finally:
        pytest_run.kill()
        pytest_run.wait()


# A user of the shared embedded PostgreSQL (as `tracetrack up` is, with its guardian
# when argv[2] says so): prints the server's PID and its own, exits at a line on stdin.
EMBEDDED_USER = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from common.pgserver import embedded_database_url, embedded_datadir
    from tooling.pg_guardian import guard

    var = Path(sys.argv[1])
    embedded_database_url(var)
    if sys.argv[2] == "guarded":
        guard(embedded_datadir(var))
    postmaster = (embedded_datadir(var) / "postmaster.pid").read_text().split()[0]
    print(postmaster, os.getpid(), flush=True)
    sys.stdin.readline()
""")


def test_the_embedded_database_stops_with_its_last_user_even_one_killed(tmp_path: Path) -> None:
    def user(mode: str) -> subprocess.Popen[str]:
        return spawn(
            [sys.executable, "-c", EMBEDDED_USER, str(tmp_path / "var"), mode],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def started(proc: subprocess.Popen[str]) -> tuple[int, int]:
        assert proc.stdout is not None
        server, pid = proc.stdout.readline().split()
        return int(server), int(pid)

    up = user("guarded")
    other = up  # started once the server is (two first users would both initdb)
    try:
        server, up_pid = started(up)
        other = user("plain")
        assert started(other)[0] == server  # one shared server
        handles = tmp_path / "var" / "pg" / ".handle_pids.json"
        up.kill()  # no exit handler runs
        up.wait()
        wait_until(lambda: str(up_pid) not in handles.read_text(), 60, "the guardian")
        assert not gone(server), "stopped while another user still had it"
        assert other.stdin is not None
        other.stdin.write("bye\n")
        other.stdin.flush()
        other.wait(60)
        # The other user was the last one (the killed one no longer counts): it stopped it.
        wait_until(lambda: gone(server), 60, "the embedded PostgreSQL to stop")
    finally:
        for proc in {up, other}:
            proc.kill()
            proc.wait()
