"""The directory prometheus_client's multiprocess mode shares between workers.

Imports nothing of prometheus_client at module level (see the package docstring).
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import signal
import sys
import threading
from pathlib import Path

from common.settings import Settings

log = logging.getLogger(__name__)

ENV = "PROMETHEUS_MULTIPROC_DIR"
DIR_PREFIX = "prometheus-multiproc-"
# Besides prometheus_client's *.db files, the shared active-users store lives there.
ACTIVE_USERS_FILE = "active-users.sqlite"


def prepare_multiprocess(settings: Settings) -> Path:
    """Create (or empty) the shared directory and export it to the workers to come.

    Called in the parent process before any import of app.metrics. A directory given
    in settings is emptied of metric files only (never of anything else); the default
    one is private to this process (`var/prometheus-multiproc-<pid>`), removed at exit
    (SIGTERM included), or by the next start if this process is killed. Counters
    restart at 0 with every `tracetrack app`, as Prometheus expects of a restart.
    """
    if settings.prometheus_multiproc_dir is not None:
        path = settings.prometheus_multiproc_dir.resolve()
        path.mkdir(parents=True, exist_ok=True)
        _empty_metric_files(path)
    else:
        var_dir = settings.resolved_var_dir()
        _remove_dead_siblings(var_dir)
        path = var_dir / f"{DIR_PREFIX}{os.getpid()}"
        if path.exists():  # a dead run with our (reused) pid
            shutil.rmtree(path)
        path.mkdir()
        atexit.register(shutil.rmtree, path, True)
        _exit_cleanly_on_sigterm()
    os.environ[ENV] = str(path)
    return path


def serve_multiprocess_here() -> None:
    """Make this very process write its metrics to the shared directory.

    prometheus_client picks its value class at import, and with one worker uvicorn
    serves from the process that ran the CLI, which imported every command module
    before the directory was set. Metrics are created later (per app, or lazily), so
    switching the class now puts them in the shared directory, as prometheus_client's
    own tests do. Only `tracetrack app` with one worker calls this: it is process-wide.
    """
    values = sys.modules.get("prometheus_client.values")
    if values is not None and os.environ.get(ENV):
        values.ValueClass = values.get_value_class()  # type: ignore[attr-defined]


def _empty_metric_files(path: Path) -> None:
    for f in path.glob("*.db"):
        f.unlink(missing_ok=True)
    for f in path.glob("compaction.*"):  # app/instrumentation/compaction.py's lock and journal
        f.unlink(missing_ok=True)
    for f in path.glob(ACTIVE_USERS_FILE + "*"):
        f.unlink(missing_ok=True)


def _remove_dead_siblings(var_dir: Path) -> None:
    for d in var_dir.glob(DIR_PREFIX + "*"):
        pid = d.name.removeprefix(DIR_PREFIX)
        if d.is_dir() and pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(d, ignore_errors=True)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _exit_cleanly_on_sigterm() -> None:
    """Let SIGTERM run atexit handlers (removing the directory).

    uvicorn handles SIGTERM itself while serving, then restores the previous handler
    and raises the signal again; with the default handler the process would die
    without running atexit. Only installed where nobody else handles SIGTERM.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _raise_system_exit)


def _raise_system_exit(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)
