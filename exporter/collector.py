"""What every collector is: a name, `collect(deadline)` returning fresh metric families,
and the families to publish when it could not collect (backend down or too slow)."""

from __future__ import annotations

import time
from typing import Protocol

from prometheus_client.metrics_core import Metric


class Deadline:
    """A point on the monotonic clock by which a scrape must have answered."""

    def __init__(self, seconds_from_now: float) -> None:
        self.at = time.monotonic() + seconds_from_now

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())


class CollectorError(Exception):
    """The backend is unreachable or not ready; the message says why (it is logged)."""


class Collector(Protocol):
    name: str  # the `collector` label of tracetrack_exporter_collector_up

    def collect(self, deadline: Deadline) -> list[Metric]:
        """Build fresh families; raise (anything) when the backend cannot be read."""
        ...

    def down_families(self) -> list[Metric]:
        """Families to publish instead when collect failed or missed the deadline."""
        ...

    def close(self) -> None:
        """Release connections (at shutdown)."""
        ...
