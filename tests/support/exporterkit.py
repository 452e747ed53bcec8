"""Run the exporter in tests (in-process on a free port, or as `tracetrack exporter`) and
read its output as Prometheus would."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg2
from prometheus_client.parser import text_string_to_metric_families

from common.settings import Settings
from exporter.business import utc_now
from exporter.pg import libpq_dsn
from exporter.scrape import Scraper
from exporter.server import TIMEOUT_HEADER
from exporter.service import build_collectors, start_server
from exporter.settings import ExporterSettings
from tooling.procs import ManagedProcess, free_port, start_tracetrack

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples_: Samples, name: str, **labels: str) -> float:
    return samples_[(name, frozenset(labels.items()))]


def types(text: str) -> dict[str, str]:
    """Metric name -> type, from the `# TYPE` lines of the text format."""
    out = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            out[name] = kind
    return out


def scrape(base_url: str, timeout: float | None = 10.0) -> tuple[str, Samples]:
    headers = {TIMEOUT_HEADER: str(timeout)} if timeout is not None else {}
    r = httpx.get(f"{base_url}/metrics", headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    return r.text, samples(r.text)


def up(samples_: Samples, collector: str) -> float:
    return value(samples_, "tracetrack_exporter_collector_up", collector=collector)


@contextmanager
def running_exporter(
    database_url: str | None,
    redis_url: str | None = None,
    timezone: str = "UTC",
    clock: Callable[[], datetime] = utc_now,
    **xsettings: Any,
) -> Iterator[str]:
    """The exporter's real HTTP server on a free port in this process; yields its base URL."""
    settings = Settings(database_url=database_url, redis_url=redis_url, timezone=timezone)
    scraper = Scraper(
        build_collectors(settings, ExporterSettings(**xsettings), database_url, clock=clock)
    )
    server = start_server("127.0.0.1", 0, scraper, default_timeout=10.0)
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        server.server_close()
        scraper.close()


def start_exporter_process(
    workdir: Path,
    database_url: str,
    redis_url: str | None = None,
    env: dict[str, str] | None = None,
) -> tuple[ManagedProcess, int]:
    """`tracetrack exporter` as a subprocess on a free port, ready to scrape."""
    port = free_port()
    full_env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url or "",
        "TRACETRACK_VAR_DIR": str(workdir),
        **(env or {}),
    }
    return start_tracetrack(
        "exporter", workdir / f"exporter-{port}.log", full_env, port=port, timeout=30
    )


def sql(database_url: str, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    """Run one statement in its own autocommitted connection; rows if it returns any."""
    conn = psycopg2.connect(libpq_dsn(database_url))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()
