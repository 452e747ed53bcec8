"""Run every collector concurrently and answer by the deadline, whatever they do.

Each collector runs in its own daemon thread. A collector that raises, or has not
finished when the deadline comes, is published with up 0 (plus its `down_families`);
the others are unaffected. A collector still running from an earlier scrape is not
started again: the new scrape waits for that run instead, so a stuck backend costs at
most one thread per collector.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from common import metric_names as names
from exporter.collector import Collector, CollectorError, Deadline

log = logging.getLogger(__name__)

Result = tuple[list[Metric], float]  # families, seconds the collector took


class Scraper:
    def __init__(self, collectors: Sequence[Collector]) -> None:
        seen = [c.name for c in collectors]
        if len(set(seen)) != len(seen):
            raise ValueError(f"collector names must be unique: {seen}")
        self.collectors = list(collectors)
        self._lock = threading.Lock()
        self._running: dict[str, Future[Result]] = {}
        self._was_up: dict[str, bool] = {}

    def _start(self, collector: Collector, deadline: Deadline) -> Future[Result]:
        with self._lock:
            running = self._running.get(collector.name)
            if running is not None and not running.done():
                return running
            future: Future[Result] = Future()
            self._running[collector.name] = future

        def run() -> None:
            started = time.monotonic()
            try:
                families = collector.collect(deadline)
            except BaseException as exc:  # noqa: BLE001 - reported as up 0, never raised
                future.set_exception(exc)
            else:
                future.set_result((families, time.monotonic() - started))

        threading.Thread(target=run, name=f"collector-{collector.name}", daemon=True).start()
        return future

    def scrape(self, budget_seconds: float) -> list[Metric]:
        """Fresh families of every collector plus up/duration, within `budget_seconds`."""
        deadline = Deadline(budget_seconds)
        started = time.monotonic()
        futures = [(c, self._start(c, deadline)) for c in self.collectors]

        up = GaugeMetricFamily(
            names.COLLECTOR_UP,
            "1 when the collector read its backend within the scrape deadline, else 0.",
            labels=["collector"],
        )
        duration = GaugeMetricFamily(
            names.COLLECTOR_DURATION,
            "Seconds the collector took (the time waited, when it missed the deadline).",
            labels=["collector"],
        )
        out: list[Metric] = []
        for collector, future in futures:
            try:
                families, took = future.result(timeout=deadline.remaining())
                error: BaseException | None = None
            except FutureTimeout:
                families, took = collector.down_families(), time.monotonic() - started
                error = CollectorError(f"no answer within the {budget_seconds:.2f}s scrape budget")
            except BaseException as exc:  # noqa: BLE001 - any failure is this collector's up 0
                families, took = collector.down_families(), time.monotonic() - started
                error = exc
            ok = error is None
            self._log_transition(collector.name, error)
            out.extend(families)
            up.add_metric([collector.name], 1 if ok else 0)
            duration.add_metric([collector.name], took)
        return [*out, up, duration]

    def close(self) -> None:
        for collector in self.collectors:
            try:
                collector.close()
            except Exception:
                log.debug("closing collector %s failed", collector.name, exc_info=True)

    def _log_transition(self, name: str, error: BaseException | None) -> None:
        # Log changes only: a backend down for an hour should not write a line per scrape.
        was = self._was_up.get(name)
        self._was_up[name] = error is None
        if error is None:
            if was is False:
                log.info("collector %s is up again", name)
        elif was is not False:
            if isinstance(error, CollectorError):
                log.warning("collector %s is down: %s", name, error)
            else:  # a bug, not a backend problem: keep the traceback
                log.error("collector %s failed", name, exc_info=error)
