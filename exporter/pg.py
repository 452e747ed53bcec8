"""One PostgreSQL connection per collector, reconnected on demand, every statement
bounded by the scrape deadline (statement_timeout), so a slow or locked database makes
the collector miss one scrape instead of piling up queries."""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Any

import psycopg2
import psycopg2.extensions

from exporter.collector import CollectorError, Deadline

APPLICATION_NAME = "tracetrack-exporter"


def libpq_dsn(sqlalchemy_url: str) -> str:
    """The app's SQLAlchemy URL (postgresql+psycopg2://...) as a libpq connection URI."""
    from sqlalchemy.engine import make_url

    return (
        make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)
    )


class PgConnection:
    def __init__(self, dsn: str | None, unavailable_reason: str = "") -> None:
        self.dsn = dsn
        self.unavailable_reason = unavailable_reason
        self._conn: Any = None
        self._lock = threading.Lock()

    def _connect(self, deadline: Deadline) -> Any:
        if self.dsn is None:
            raise CollectorError(self.unavailable_reason or "no database configured")
        # libpq counts connect_timeout in whole seconds and treats 1 as 2.
        timeout = max(2, math.ceil(deadline.remaining()))
        conn = psycopg2.connect(
            self.dsn, connect_timeout=timeout, application_name=APPLICATION_NAME
        )
        conn.autocommit = True  # read-only: no transaction left open between scrapes
        return conn

    def query(
        self, deadline: Deadline, statements: Sequence[tuple[str, Any]], lock_timeout_ms: int = 0
    ) -> list[list[tuple[Any, ...]]]:
        """Run each (sql, params) and return their rows; the whole batch must finish in time.

        `lock_timeout_ms` (0 = only the deadline) bounds waiting for a table lock, so a
        background query gives up quickly rather than queue behind, say, a migration.
        """
        with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = self._connect(deadline)
                results = []
                with self._conn.cursor() as cur:
                    for sql, params in statements:
                        ms = int(deadline.remaining() * 1000)
                        if ms <= 0:
                            raise CollectorError("scrape deadline passed")
                        # One simple-query message, one round trip: PostgreSQL applies the
                        # new timeout to the statement that follows it.
                        setting = cur.mogrify(
                            "SET statement_timeout = %s; SET lock_timeout = %s; ",
                            (ms, min(ms, lock_timeout_ms) if lock_timeout_ms else 0),
                        )
                        cur.execute(setting + cur.mogrify(sql, params))
                        results.append(cur.fetchall())
                return results
            except psycopg2.errors.QueryCanceled as exc:
                raise CollectorError(
                    f"query cancelled at the scrape deadline: {exc}".strip()
                ) from exc
            except psycopg2.errors.LockNotAvailable as exc:
                raise CollectorError(f"gave up waiting for a table lock: {exc}".strip()) from exc
            except psycopg2.errors.UndefinedTable as exc:
                raise CollectorError(
                    f"schema not created yet ({str(exc).splitlines()[0]}); "
                    "run `tracetrack db upgrade`"
                ) from exc
            except psycopg2.Error as exc:
                if self._conn is not None and (
                    self._conn.closed or isinstance(exc, psycopg2.OperationalError)
                ):
                    self.close()
                raise CollectorError(
                    f"PostgreSQL: {str(exc).strip() or type(exc).__name__}"
                ) from exc

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except psycopg2.Error:
                pass
