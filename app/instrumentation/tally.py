"""Per-process request tallies, flushed to prometheus_client's values in batches.

In prometheus_client's multiprocess mode (how `tracetrack app` runs) every value write
takes a lock and writes an mmap file: ~2 µs each, five per request (in progress up and
down, histogram bucket and sum, counter) was most of the instrumentation's budget
(docs/architecture.md §7). So the middleware only adds to plain Python ints and
floats here, and `flush()` hands the increase since the last flush to the metrics:

- every `FLUSH_INTERVAL_SECONDS` from a background thread (common/periodic.py),
- at the start of every scrape of this worker's /metrics (what it answers is exact),
- at a clean worker shutdown, before its live gauges are dropped.

Another worker's requests therefore reach a scrape up to one interval late (1 s,
against a 10 s scrape interval); a worker killed with -9 loses at most its last
interval. The metric catalogue does not change: same names, labels and meanings.

Thread safety without a lock on the hot path: only the event loop thread that serves
the app's requests writes the tallies (one writer), and they only ever grow. The
flushers (background thread, scrape thread, shutdown) never reset them: each remembers
what it already handed over and adds the difference. Under the GIL a reader sees each
int or float either before or after a `+=`, never torn, so a request missed by one
flush is in the next. Flushers are serialized by a lock among themselves; the hot path
never takes it. Containers the hot path grows (series, status codes) are copied with
`list(...)` by the flusher, a single C call that the GIL keeps whole.
"""

from __future__ import annotations

import threading
import weakref
from bisect import bisect_left
from typing import Any

from prometheus_client import Gauge

from app.metrics import HttpMetrics
from common.periodic import Periodic

FLUSH_INTERVAL_SECONDS = 1.0

# In-process values: gauge -> the live tallies whose in-flight requests it reports.
_IN_FLIGHT: weakref.WeakKeyDictionary[Gauge, weakref.WeakSet[Tally]] = weakref.WeakKeyDictionary()


def _read_in_flight_at_collect(gauge: Gauge, tally: Tally) -> None:
    """With in-process values the gauge can read the tallies when collected: exact at
    any moment, nothing written per request. (Multiprocess mode reads the workers'
    files, not the gauge object: there `Tally.flush` writes the value.)"""
    tallies = _IN_FLIGHT.get(gauge)
    if tallies is None:
        tallies = _IN_FLIGHT[gauge] = weakref.WeakSet()
        gauge.set_function(lambda: sum(t.in_flight for t in list(tallies)))
    tallies.add(tally)


class Series:
    """One (method, route): its duration histogram and its request counts by status."""

    __slots__ = (
        "bounds",
        "buckets",
        "counts",
        "duration",
        "flushed_buckets",
        "flushed_counts",
        "flushed_sum",
        "method",
        "requests",
        "route",
        "sum",
    )

    def __init__(self, metrics: HttpMetrics, method: str, route: str) -> None:
        self.method = method
        self.route = route
        self.requests = metrics.requests
        self.duration = metrics.duration.labels(method=method, route=route)
        # The histogram's own upper bounds (+Inf last), so an observation lands in the
        # bucket Histogram.observe would pick (the first bound >= it).
        self.bounds: tuple[float, ...] = tuple(self.duration._upper_bounds)
        self.buckets = [0] * len(self.bounds)  # per bucket, not cumulative, as prometheus_client
        self.sum = 0.0
        self.counts: dict[int, int] = {}  # status -> requests
        self.flushed_buckets = [0] * len(self.bounds)
        self.flushed_sum = 0.0
        self.flushed_counts: dict[int, int] = {}

    def record(self, status: int, elapsed: float) -> None:
        """The hot path: a bisect and three additions to plain Python numbers."""
        self.buckets[bisect_left(self.bounds, elapsed)] += 1
        self.sum += elapsed
        counts = self.counts
        counts[status] = counts.get(status, 0) + 1

    def flush(self) -> None:
        """Add what was recorded since the last flush to the metrics (under Tally's lock)."""
        for status, n in list(self.counts.items()):
            delta = n - self.flushed_counts.get(status, 0)
            if delta:
                self._counter(status).inc(delta)
                self.flushed_counts[status] = n
        buckets = list(self.buckets)
        # A request recorded between these two reads is in one and not yet in the other:
        # the next flush evens it out (sum and buckets are each exact over time).
        total = self.sum
        if buckets == self.flushed_buckets and total == self.flushed_sum:
            return
        # Histogram has no public "observe n values": its children's per-bucket values
        # and sum are what observe() itself increments (prometheus_client is pinned).
        child_buckets = self.duration._buckets
        for i, (now, before) in enumerate(zip(buckets, self.flushed_buckets, strict=True)):
            if now != before:
                child_buckets[i].inc(now - before)
        if total != self.flushed_sum:
            self.duration._sum.inc(total - self.flushed_sum)
        self.flushed_buckets = buckets
        self.flushed_sum = total

    def _counter(self, status: int) -> Any:
        return self.requests.labels(method=self.method, route=self.route, status=str(status))


class Tally:
    """What the metrics middleware of one app records, and its flushing."""

    def __init__(
        self,
        metrics: HttpMetrics,
        interval: float = FLUSH_INTERVAL_SECONDS,
        *,
        in_process_values: bool = False,
    ) -> None:
        self._metrics = metrics
        self.in_flight = 0  # requests being served by this process's app right now
        self._flushed_in_flight: int | None = None
        # route template -> method -> Series; the hot path's cache of label children.
        self.series: dict[str, dict[str, Series]] = {}
        self._all: list[Series] = []
        self._lock = threading.Lock()  # among flushers only
        self._loop = Periodic("metrics-flush", interval, self.flush)
        if in_process_values:
            _read_in_flight_at_collect(metrics.in_progress, self)

    def series_for(self, route: str, method: str) -> Series:
        by_method = self.series.get(route)
        if by_method is None:
            by_method = self.series[route] = {}
        series = by_method.get(method)
        if series is None:
            series = by_method[method] = Series(self._metrics, method, route)
            self._all.append(series)
        return series

    def flush(self, leaving: int = 0) -> None:
        """`leaving`: requests of the caller's that are over but still counted in flight
        (a scrape that has its answer), so the gauge does not keep them until next time."""
        with self._lock:
            in_flight = self.in_flight - leaving
            for series in list(self._all):
                series.flush()
            if in_flight != self._flushed_in_flight:
                self._metrics.in_progress.set(in_flight)
                self._flushed_in_flight = in_flight

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        """Stop the background flushes and hand over what is left (clean shutdown)."""
        self._loop.stop()
        self.flush()
