"""The exporter's HTTP endpoint: `/metrics` answered within Prometheus' scrape timeout.

Prometheus sends X-Prometheus-Scrape-Timeout-Seconds with every scrape; past it,
Prometheus has given up and the answer is wasted, so collectors get that budget minus
a margin for rendering and the network.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric

from exporter.scrape import Scraper

log = logging.getLogger(__name__)

TIMEOUT_HEADER = "X-Prometheus-Scrape-Timeout-Seconds"
# A scrape timeout is at most the scrape interval: an hour is past any real one, and a
# header of 1e308 overflowed the sockets' timeouts in every collector.
MAX_SCRAPE_TIMEOUT = 3600.0


class BadScrapeTimeout(ValueError):
    pass


def scrape_budget(header: str | None, default_timeout: float) -> float:
    """Seconds the collectors may use: the client's timeout minus a margin (10 %, 50-500 ms)."""
    if header is None or not header.strip():
        timeout = default_timeout
    else:
        try:
            timeout = float(header)
        except ValueError:
            raise BadScrapeTimeout(
                f"{TIMEOUT_HEADER} must be a number of seconds, got {header!r}"
            ) from None
        if not math.isfinite(timeout) or timeout <= 0:
            raise BadScrapeTimeout(
                f"{TIMEOUT_HEADER} must be a positive number of seconds, got {header!r}"
            )
    timeout = min(timeout, MAX_SCRAPE_TIMEOUT)
    margin = min(0.5, max(0.05, timeout * 0.1))
    return max(0.0, timeout - margin)


class _Families:
    """What prometheus_client's encoders expect of a registry: `collect()`."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return iter(self._families)


LANDING = b"""<html><head><title>TraceTrack exporter</title></head><body>
<h1>TraceTrack exporter</h1><p><a href="/metrics">/metrics</a></p></body></html>
"""


class ExporterHTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a slow scrape must not keep the process alive at shutdown

    def __init__(self, address: tuple[str, int], scraper: Scraper, default_timeout: float) -> None:
        self.scraper = scraper
        self.default_timeout = default_timeout
        super().__init__(address, _Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _Handler(BaseHTTPRequestHandler):
    server: ExporterHTTPServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, a keep-alive client's
    # delayed ACK would hold the body back ~40 ms.
    disable_nagle_algorithm = True

    def do_HEAD(self) -> None:  # `curl -I`: the GET's status and headers (see _send)
        self.do_GET()

    def _not_allowed(self) -> None:
        self._send(405, b"only GET and HEAD\n", "text/plain; charset=utf-8", {"Allow": "GET, HEAD"})

    # http.server answers other methods 501, a server error for a client's mistake.
    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/metrics":
            self._metrics()
        elif path == "/healthz":
            self._send(200, b"ok\n", "text/plain; charset=utf-8")
        elif path == "/":
            self._send(200, LANDING, "text/html; charset=utf-8")
        else:
            self._send(
                404,
                f"not found: {path[:100]}; metrics are at /metrics\n".encode(),
                "text/plain; charset=utf-8",
            )

    def _metrics(self) -> None:
        try:
            budget = scrape_budget(self.headers.get(TIMEOUT_HEADER), self.server.default_timeout)
        except BadScrapeTimeout as exc:
            self._send(400, f"{exc}\n".encode(), "text/plain; charset=utf-8")
            return
        try:
            families = self.server.scraper.scrape(budget)
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            body = encoder(_Families(families))
        except Exception:  # the scraper should not raise; answer 500 rather than hang up
            log.exception("scrape failed")
            self._send(500, b"scrape failed; see the exporter's log\n", "text/plain; charset=utf-8")
            return
        self._send(200, body, content_type)

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)
