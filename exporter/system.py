"""Host CPU, memory and disk usage from psutil, without ever blocking the scrape.

Series:
    tracetrack_cpu_usage_ratio                 gauge  busy share of all CPUs over the last >= 1 s
    tracetrack_memory_usage_ratio              gauge  (total - available) / total
    tracetrack_disk_usage_ratio{mountpoint}    gauge  used / (used + free), as df shows it
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import psutil
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from common import metric_names as names
from exporter.collector import Deadline


def _total(times: Any) -> float:
    # guest time is already counted in user/nice on Linux (psutil does the same).
    return float(sum(times)) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)


def _busy(times: Any) -> float:
    return float(_total(times) - times.idle - getattr(times, "iowait", 0.0))


class CpuSampler:
    """CPU usage from the difference of two cpu_times() readings.

    `cpu_percent(interval=1)` would sleep a second inside the scrape. Instead each call
    compares with the reading kept from an earlier call; readings closer together than
    `min_window` reuse the last ratio, so back-to-back scrapes (several Prometheus
    servers, a bench) do not produce noisy few-millisecond windows.
    """

    def __init__(
        self,
        min_window: float = 1.0,
        read: Callable[[], Any] = psutil.cpu_times,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read, self._clock, self._min_window = read, clock, min_window
        self._lock = threading.Lock()
        self._prev, self._prev_at = read(), clock()
        self._ratio: float | None = None

    def ratio(self) -> float:
        with self._lock:
            now = self._clock()
            if self._ratio is not None and now - self._prev_at < self._min_window:
                return self._ratio
            cur = self._read()
            total = _total(cur) - _total(self._prev)
            if total <= 0:  # no clock tick since the last reading
                return self._ratio if self._ratio is not None else 0.0
            ratio = min(1.0, max(0.0, (_busy(cur) - _busy(self._prev)) / total))
            self._prev, self._prev_at, self._ratio = cur, now, ratio
            return ratio


def default_mountpoints() -> list[str]:
    mounts = sorted({p.mountpoint for p in psutil.disk_partitions(all=False)})
    return mounts or ["/"]


class SystemCollector:
    name = "system"

    def __init__(
        self, mountpoints: Sequence[str] | None = None, cpu: CpuSampler | None = None
    ) -> None:
        self.mountpoints = list(mountpoints) if mountpoints else default_mountpoints()
        self.cpu = cpu or CpuSampler()

    def collect(self, deadline: Deadline) -> list[Metric]:
        cpu = GaugeMetricFamily(
            names.CPU_USAGE,
            "Share of CPU time spent busy (not idle or "
            "iowait), all CPUs, over the last second or more.",
        )
        cpu.add_metric([], self.cpu.ratio())

        vm = psutil.virtual_memory()
        mem = GaugeMetricFamily(
            names.MEMORY_USAGE, "Share of memory in use: (total - available) / total."
        )
        mem.add_metric([], (vm.total - vm.available) / vm.total if vm.total else 0.0)

        disk = GaugeMetricFamily(
            names.DISK_USAGE,
            "Share of the filesystem's space in use: used / (used + free), as df shows it.",
            labels=["mountpoint"],
        )
        for mp in self.mountpoints:
            usage = psutil.disk_usage(mp)
            size = usage.used + usage.free
            disk.add_metric([mp], usage.used / size if size else 0.0)
        return [cpu, mem, disk]

    def down_families(self) -> list[Metric]:
        return []

    def close(self) -> None:
        pass
