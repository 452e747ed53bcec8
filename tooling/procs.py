"""Start and stop the real binaries (redis-server, prometheus, alertmanager, our
services) on free ports, each stopped by its PID.

Used by `tracetrack up` and by the test fixtures, so nothing either starts
outlives it: every child is started by `spawn`, which asks the kernel to signal it
when its parent dies (a `kill -9` of pytest or of `tracetrack up` included).
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx

_T = TypeVar("_T")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(
    check: Callable[[], _T],
    timeout: float,
    what: str,
    interval: float = 0.05,
    *,
    process: ManagedProcess | None = None,
) -> _T:
    """Poll `check` until it returns something true, and return that; past `timeout`
    seconds raise TimeoutError naming `what` and the last exception `check` raised (an
    exception means "not yet") or its last false answer.

    With `process`, give up as soon as it has exited (RuntimeError), and end either
    error with its log tail: a service that died is not one that is slow.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    last_value: object = None
    while True:
        if process is not None and not process.alive():
            raise RuntimeError(
                f"{process.name} exited while waiting for {what}; log:\n{process.log_tail()}"
            )
        try:
            value = check()
            if value:
                return value
            last_error, last_value = None, value
        except Exception as exc:  # noqa: BLE001 - not yet; reported if it never succeeds
            last_error = exc
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    log = "" if process is None else f"; {process.name} log:\n{process.log_tail()}"
    raise TimeoutError(
        f"timed out after {timeout:g}s waiting for {what}; {_last(last_error, last_value)}{log}"
    ) from last_error


def _last(error: BaseException | None, value: object = None) -> str:
    if error is not None:
        return f"last error: {type(error).__name__}: {error}"
    if value is None or value is False:
        return "the check was still false"
    return f"the check was still false (last answer: {value!r})"


def http_ok(url: str) -> Callable[[], bool]:
    def check() -> bool:
        return httpx.get(url, timeout=1.0).status_code == 200

    return check


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise FileNotFoundError(
            f"{name} not found on PATH; run `make install` (it apt-installs the Debian package)"
        )
    return path


# --- children that die with their parent ----------------------------------------------

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    # Resolved once here, not in the forked child (which should call as little as it can).
    prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    return prctl


_prctl = _load_prctl()


def die_with_parent(
    death_signal: int, then: Callable[[], None] | None = None
) -> Callable[[], None] | None:
    """A preexec function: run `then` (e.g. dropping privileges), then have the kernel
    send `death_signal` to the child when the thread that forked it exits.

    Order matters: a change of user or group clears the parent-death signal, so it
    is set last. If the parent died before that, the child signals itself."""
    if _prctl is None:
        return then
    prctl, parent = _prctl, os.getpid()

    def preexec() -> None:
        if then is not None:
            then()
        if prctl(_PR_SET_PDEATHSIG, death_signal, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:
            os.kill(os.getpid(), death_signal)

    return preexec


class _Forker:
    """Forks every child from one thread that lives as long as the process.

    The parent-death signal fires when the *thread* that forked the child exits,
    not the process: a child started from a fixture's worker thread, an executor or
    a request handler would be killed as soon as that thread ended."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], concurrent.futures.Future[Any]]]
        self._thread: threading.Thread | None = None
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        # A forked child has none of its parent's other threads.
        self._lock = threading.Lock()
        self._thread = None

    def call(self, fn: Callable[[], _T]) -> _T:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._jobs = queue.SimpleQueue()
                self._thread = threading.Thread(
                    target=self._run, args=(self._jobs,), name="procs-forker", daemon=True
                )
                self._thread.start()
            future: concurrent.futures.Future[_T] = concurrent.futures.Future()
            self._jobs.put((fn, future))
        return future.result()

    @staticmethod
    def _run(
        jobs: queue.SimpleQueue[tuple[Callable[[], Any], concurrent.futures.Future[Any]]],
    ) -> None:
        while True:
            fn, future = jobs.get()
            try:
                future.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, raised there
                future.set_exception(exc)


_forker = _Forker()


def spawn(
    args: Sequence[str],
    *,
    death_signal: int = signal.SIGTERM,
    preexec_fn: Callable[[], None] | None = None,
    **popen_kwargs: Any,
) -> subprocess.Popen[Any]:
    """`subprocess.Popen(args, ...)` for a child that gets `death_signal` when this
    process dies, however it dies. Use the child's own clean-stop signal, so that a
    supervisor (uvicorn with workers, `tracetrack up`) stops its children in turn."""
    preexec = die_with_parent(death_signal, preexec_fn)
    return _forker.call(lambda: subprocess.Popen(args, preexec_fn=preexec, **popen_kwargs))


class ManagedProcess:
    """A child process we own: started in its own process group, logged to a
    file, stopped by PID (`stop_signal`, then SIGKILL after `grace` seconds), and
    sent `stop_signal` by the kernel if we die first."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        preexec_fn: Callable[[], None] | None = None,
        stop_signal: int = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.args = list(args)
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.preexec_fn = preexec_fn
        self.stop_signal = stop_signal
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} not started"
        return self.proc.pid

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        full_env = {**os.environ, **(self.env or {})}
        try:
            self.proc = spawn(
                self.args,
                death_signal=self.stop_signal,
                preexec_fn=self.preexec_fn,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=full_env,
                cwd=self.cwd,
                start_new_session=True,
            )
        finally:
            log.close()
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, check: Callable[[], object], timeout: float = 30.0) -> ManagedProcess:
        """Wait until `check` passes; if it never does (or the process dies), stop the
        process before raising, so a failed start leaves nothing running."""
        try:
            wait_until(check, timeout, f"{self.name} to be ready", process=self)
        except BaseException:
            self.stop()
            raise
        return self

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def kill9(self) -> None:
        """Simulate a crash: SIGKILL the whole process group, no cleanup."""
        if self.alive():
            os.killpg(self.pid, signal.SIGKILL)
            self.proc.wait()  # type: ignore[union-attr]

    def stop(self, grace: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, self.stop_signal)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()

    def __enter__(self) -> ManagedProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# The `tracetrack` console script installed beside this interpreter (the venv's, or the
# environment `pip install .` filled).
TRACETRACK = str(Path(sys.executable).with_name("tracetrack"))


def start_tracetrack(
    command: str,
    log: Path,
    env: Mapping[str, str],
    *,
    args: Sequence[str] = (),
    port: int | None = None,
    name: str | None = None,
    ready: str = "/healthz",
    timeout: float = 60.0,
) -> tuple[ManagedProcess, int]:
    """`tracetrack COMMAND --port PORT ARGS` as a child on a free port (or `port`),
    logged to `log`; returned once GET `ready` answers 200 (stopped if it never does)."""
    port = port or free_port()
    proc = ManagedProcess(
        name or f"{command}:{port}",
        [TRACETRACK, command, "--port", str(port), *args],
        log,
        env=dict(env),
    ).start()
    proc.wait_ready(http_ok(f"http://127.0.0.1:{port}{ready}"), timeout=timeout)
    return proc, port


def redis_process(workdir: Path, port: int, host: str = "127.0.0.1") -> ManagedProcess:
    """A redis-server with no persistence, on `port`, working in `workdir`."""
    workdir.mkdir(parents=True, exist_ok=True)
    args = [
        require_binary("redis-server"),
        "--port",
        str(port),
        "--bind",
        host,
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(workdir),
        "--protected-mode",
        "no",
    ]
    return ManagedProcess("redis-server", args, workdir / "redis.log")


def start_redis(workdir: Path, port: int | None = None) -> tuple[ManagedProcess, int]:
    port = port or free_port()
    proc = redis_process(workdir, port).start()
    proc.wait_ready(lambda: port_open(port), timeout=15)
    return proc, port


# Prometheus re-sends firing alerts every 10 s (default 1 m), so an alert it stops
# sending, the Watchdog of a dead Prometheus included, expires in Alertmanager after
# 4 x 10 s instead of 4 minutes: the dead man's switch's 2-minute promise rests on it.
PROMETHEUS_ALERT_FLAGS = ("--rules.alert.resend-delay=10s",)


def prometheus_process(
    config_file: Path,
    datadir: Path,
    port: int,
    extra_args: Sequence[str] = (),
    host: str = "127.0.0.1",
) -> ManagedProcess:
    """Debian's `prometheus` binary with its TSDB in `datadir`; `/-/reload` enabled."""
    return _prometheus_family(
        "prometheus",
        "prometheus",
        "--storage.tsdb.path",
        config_file,
        datadir,
        f"{host}:{port}",
        ["--web.enable-lifecycle", *_unless_given(PROMETHEUS_ALERT_FLAGS, extra_args), *extra_args],
    )


def _unless_given(defaults: Sequence[str], given: Sequence[str]) -> list[str]:
    """The default flags the caller did not set itself (kingpin refuses a flag twice)."""
    names = {a.split("=", 1)[0] for a in given}
    return [d for d in defaults if d.split("=", 1)[0] not in names]


def alertmanager_process(
    config_file: Path,
    datadir: Path,
    port: int,
    extra_args: Sequence[str] = (),
    host: str = "127.0.0.1",
    cluster_port: int | None = None,
    peers: Sequence[str] = (),
) -> ManagedProcess:
    """Debian's `prometheus-alertmanager`: single node (no cluster listener), or with
    `cluster_port` a member of a gossip cluster that joins `peers` ("host:port")."""
    if cluster_port is None:
        cluster = ["--cluster.listen-address="]
    else:
        cluster = [
            f"--cluster.listen-address={host}:{cluster_port}",
            # Loopback is not a private address: Alertmanager will not guess it.
            f"--cluster.advertise-address={host}:{cluster_port}",
            *(f"--cluster.peer={peer}" for peer in peers),
        ]
    return _prometheus_family(
        "alertmanager",
        "prometheus-alertmanager",
        "--storage.path",
        config_file,
        datadir,
        f"{host}:{port}",
        [*cluster, *extra_args],
    )


def _prometheus_family(
    name: str,
    binary: str,
    storage_flag: str,
    config_file: Path,
    datadir: Path,
    listen: str,
    extra_args: Sequence[str],
) -> ManagedProcess:
    """The flags Prometheus and Alertmanager share; data and log in `datadir`."""
    datadir.mkdir(parents=True, exist_ok=True)
    args = [
        require_binary(binary),
        f"--config.file={config_file}",
        f"{storage_flag}={datadir}",
        f"--web.listen-address={listen}",
        *extra_args,
    ]
    return ManagedProcess(name, args, datadir / f"{name}.log")
