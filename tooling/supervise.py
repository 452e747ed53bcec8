"""Keep `tracetrack up`'s services running, the way docker-compose's `restart:` does.

A service that exits is started again after a backoff that doubles with each quick
crash (1 s, 2 s, 4 s, ... up to 30 s); a run that lasted `stable_after` seconds resets
it. Every exit and restart is one line on the console. After `give_up_after` crashes
in a row, each within `stable_after` seconds of its start, the service is left down
with a line that says why and where its log is, and the rest keeps running (a broken
configuration crash-looping forever would only bury the reason). Stopping the
supervisor stops every service, newest first, by PID.

The clock is injectable so that the policy is tested without waiting.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from tooling.procs import ManagedProcess


@dataclass(frozen=True)
class RestartPolicy:
    initial_backoff: float = 1.0
    max_backoff: float = 30.0
    stable_after: float = 30.0  # a run this long was not a crash loop
    give_up_after: int = 5  # quick crashes in a row

    def backoff(self, quick_crashes: int) -> float:
        return float(min(self.max_backoff, self.initial_backoff * 2 ** max(0, quick_crashes - 1)))


def describe_exit(code: int | None) -> str:
    if code is None:
        return "exited"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


@dataclass
class Service:
    proc: ManagedProcess
    started_at: float
    quick_crashes: int = 0
    restarts: int = 0
    restart_at: float | None = None  # when down and waiting for its backoff
    gave_up: str | None = None  # why it is left down
    last_exit: str = ""

    @property
    def name(self) -> str:
        return self.proc.name


@dataclass
class Supervisor:
    out: TextIO
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    clock: Callable[[], float] = time.monotonic
    services: list[Service] = field(default_factory=list)

    def add(self, proc: ManagedProcess) -> ManagedProcess:
        """Track a started process."""
        self.services.append(Service(proc, self.clock()))
        return proc

    def _say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def check(self) -> None:
        """One round: notice exits, start what is due. Call it about once a second."""
        now = self.clock()
        for s in self.services:
            if s.gave_up is not None:
                continue
            if s.restart_at is None:
                if s.proc.alive():
                    continue
                self._exited(s, now)
            elif now >= s.restart_at:
                self._restart(s, now)

    def _exited(self, s: Service, now: float) -> None:
        code = s.proc.proc.returncode if s.proc.proc is not None else None
        ran = now - s.started_at
        s.last_exit = describe_exit(code)
        s.quick_crashes = s.quick_crashes + 1 if ran < self.policy.stable_after else 1
        if s.quick_crashes >= self.policy.give_up_after:
            s.gave_up = (
                f"{s.last_exit} {s.quick_crashes} times in a row, each within"
                f" {self.policy.stable_after:g}s of starting"
            )
            self._say(
                f"[up] {s.name} {s.last_exit} after {ran:.1f}s; giving up: it {s.gave_up}."
                f" The rest keeps running. Its log ({s.proc.log_path}) ends with:\n"
                + _indent(s.proc.log_tail(15))
            )
            return
        delay = self.policy.backoff(s.quick_crashes)
        s.restart_at = now + delay
        self._say(
            f"[up] {s.name} {s.last_exit} after {ran:.1f}s; restarting in {delay:g}s"
            f" (log: {s.proc.log_path})"
        )

    def _restart(self, s: Service, now: float) -> None:
        s.restart_at = None
        s.restarts += 1
        try:
            s.proc.start()
        except OSError as exc:  # the binary vanished, the log dir is unwritable, ...
            s.started_at = now
            self._say(f"[up] {s.name} could not be started: {exc}")
            self._exited(s, now)
            return
        s.started_at = now
        self._say(f"[up] {s.name} restarted (pid {s.proc.pid}, restart {s.restarts})")

    def stop(self) -> None:
        for s in reversed(self.services):
            s.proc.stop()


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines()) or "    (empty)"
