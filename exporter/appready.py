"""The app's readiness, as Prometheus cannot see it: `GET /readyz` on each app.

Series:
    tracetrack_app_ready{app}   gauge   1 when the app answered /readyz 200 within the
                                        scrape deadline, else 0 (503, refused, timeout)

`app` is the probed address (host:port), one series per URL in
TRACETRACK_EXPORTER_APP_URLS. Only built when that is set (`tracetrack up` and the
compose file set it). A dead app is also `up == 0` on its own scrape target; this
series says whether a running app can serve, which its own /metrics cannot tell
(they answer while PostgreSQL is down).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from common import metric_names as names
from exporter.collector import Deadline

PROBE_SHARE = 0.8


def app_label(url: str) -> str:
    """host:port, never the URL's user and password (a label is public to every
    Prometheus reader, Grafana and federation)."""
    return (urlsplit(url).netloc or url).rpartition("@")[2]


class AppReadinessCollector:
    name = "app"

    def __init__(self, urls: Sequence[str]) -> None:
        self.urls = [u.rstrip("/") for u in urls]
        self._client = httpx.Client(follow_redirects=False)
        self._pool = ThreadPoolExecutor(max(1, len(self.urls)), thread_name_prefix="app-ready")

    def _ready(self, url: str, timeout: float) -> int:
        try:
            return int(self._client.get(f"{url}/readyz", timeout=timeout).status_code == 200)
        except httpx.HTTPError:
            return 0

    def collect(self, deadline: Deadline) -> list[Metric]:
        # Give up on a slow app before the scrape does: a hung app is `ready 0`, not a
        # failed collector (whose alert would blame the exporter).
        timeout = max(0.01, deadline.remaining() * PROBE_SHARE)
        family = GaugeMetricFamily(
            names.APP_READY,
            "1 when the app answered GET /readyz with 200 within the scrape deadline, else 0.",
            labels=["app"],
        )
        results = self._pool.map(lambda u: self._ready(u, timeout), self.urls)
        for url, ready in zip(self.urls, results, strict=True):
            family.add_metric([app_label(url)], ready)
        return [family]

    def down_families(self) -> list[Metric]:
        return []

    def close(self) -> None:
        self._client.close()
        self._pool.shutdown(wait=False)
