"""`tracetrack exporter`: the dedicated Prometheus exporter."""

from __future__ import annotations

import argparse

from common.cliargs import port_or_any
from common.topology import EXPORTER_PORT


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("exporter", help="serve host, PostgreSQL, business and Redis metrics")
    p.add_argument(
        "--host", default=None, help="bind address (default TRACETRACK_HOST or 127.0.0.1)"
    )
    p.add_argument(
        "--port",
        type=port_or_any,
        default=None,
        help=f"port (default EXPORTER_PORT or {EXPORTER_PORT}; 0: any free one)",
    )
    p.set_defaults(func=run_exporter)


def run_exporter(args: argparse.Namespace) -> int:
    import logging
    import signal
    import sys

    from pydantic import ValidationError

    from common.pgserver import resolve_database_url
    from common.settings import Settings, settings_error
    from exporter.scrape import Scraper
    from exporter.server import ExporterHTTPServer
    from exporter.service import ConfigError, build_collectors
    from exporter.settings import ExporterSettings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    log = logging.getLogger("exporter")
    try:
        settings, xsettings = Settings(), ExporterSettings()
    except ValidationError as exc:
        print(f"error: {settings_error(exc)}", file=sys.stderr)
        return 2

    database_url: str | None = None
    database_error = ""
    try:
        database_url = resolve_database_url(settings.database_url, settings.resolved_var_dir())
    except Exception as exc:  # noqa: BLE001 - host and Redis metrics are still worth serving
        database_error = f"could not start or find the database: {exc}"
        log.error("%s; database collectors will report up 0", database_error)

    try:
        scraper = Scraper(build_collectors(settings, xsettings, database_url, database_error))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    host = args.host or settings.host
    port = args.port if args.port is not None else settings.exporter_port
    try:
        server = ExporterHTTPServer((host, port), scraper, xsettings.default_scrape_timeout_seconds)
    except OSError as exc:
        print(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1

    def stop(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)  # even when started with SIGINT ignored (nohup, &)
    names = ", ".join(c.name for c in scraper.collectors)
    print(
        f"TraceTrack exporter: http://{host}:{server.port}/metrics  (collectors: {names})",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        scraper.close()
    return 0
