"""Scrape latency of a running exporter, for `make bench`."""

from __future__ import annotations

import statistics
import time
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.stats import percentile
from common import metric_names as names
from exporter.server import TIMEOUT_HEADER


def measure_scrape(
    url: str, n: int, timeout_seconds: float = 10.0, warmup: int = 3, warmup_seconds: float = 3.0
) -> dict[str, Any]:
    """Time `n` sequential GETs of `url` (the exporter's /metrics) as Prometheus sends them.

    Measures the steady state Prometheus sees: first the exporter is scraped for at least
    `warmup` times and `warmup_seconds` (connections open, today's counts sealed by the
    background recount a first scrape starts). Returns n, p50_ms, p99_ms, mean_ms, max_ms,
    warmup_scrapes, first_scrape_ms and collectors_down (collectors with up 0 in the last
    scrape: a figure measured while a collector timed out is not the figure).
    """
    if n < 1:
        raise ValueError("n must be >= 1")
    headers = {TIMEOUT_HEADER: str(timeout_seconds)}
    timings: list[float] = []
    with httpx.Client(timeout=timeout_seconds + 5, headers=headers) as client:
        started = time.perf_counter()
        client.get(url).raise_for_status()
        first_ms = (time.perf_counter() - started) * 1000
        warmed = 1
        while warmed < warmup or time.perf_counter() - started < warmup_seconds:
            client.get(url).raise_for_status()
            warmed += 1
            time.sleep(0.05)
        body = ""
        for _ in range(n):
            started = time.perf_counter()
            r = client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
            r.raise_for_status()
            body = r.text
    down = sorted(
        s.labels["collector"]
        for family in text_string_to_metric_families(body)
        if family.name == names.COLLECTOR_UP
        for s in family.samples
        if s.value != 1
    )
    timings.sort()
    return {
        "n": n,
        "p50_ms": percentile(timings, 50),
        "p99_ms": percentile(timings, 99),
        "mean_ms": statistics.fmean(timings),
        "max_ms": timings[-1],
        "warmup_scrapes": warmed,
        "first_scrape_ms": first_ms,
        "collectors_down": down,
    }
