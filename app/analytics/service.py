"""What the /analytics endpoints answer, built from the named queries, cached per process."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from app.analytics import queries
from app.analytics.backends import Alertmanager, Prometheus
from app.analytics.cache import TTLCache
from app.analytics.queries import QUERIES, NamedQuery
from app.analytics.settings import AnalyticsSettings
from common import slo
from common.alerting import SEVERITIES, WATCHDOG
from common.settings import Settings
from common.thresholds import BY_KEY, SECURITY_BY_KEY, SecurityThreshold, Threshold, worst_level

Layout = Mapping[str, Sequence[str]]


def threshold_of(key: str) -> Threshold | SecurityThreshold:
    """A row of the §5 table or of the security alerts' table."""
    return BY_KEY[key] if key in BY_KEY else SECURITY_BY_KEY[key]


def status(query: NamedQuery, value: float | None) -> str | None:
    """ok | warning | critical against common/thresholds.py; unknown without a value."""
    if query.threshold is None:
        return None
    if value is None:
        return "unknown"
    return worst_level(threshold_of(query.threshold), value) or "ok"


def present(query: NamedQuery, value: Any) -> dict[str, Any]:
    if query.by is not None:
        return {"unit": query.unit, "by": query.by, "values": value}
    out: dict[str, Any] = {"value": value, "unit": query.unit}
    if query.threshold is not None:
        t = threshold_of(query.threshold)
        out.update(
            status=status(query, value),
            warning=t.warning,
            critical=t.critical,
            bad_when=t.direction,
        )
    return out


class Analytics:
    """One per app (per worker process): holds the cache every admin shares."""

    def __init__(
        self,
        settings: Settings,
        analytics: AnalyticsSettings,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.prometheus_url = settings.prometheus_url
        self.alertmanager_url = settings.alertmanager_url
        self.timeout = analytics.analytics_query_timeout_seconds
        self.cache = TTLCache(analytics.analytics_cache_ttl_seconds)
        self.transport = transport  # tests may put an httpx.MockTransport here
        # One INFO line per PromQL query would drown the app's own log.
        logging.getLogger("httpx").setLevel(logging.WARNING)

    def _client(self) -> httpx.AsyncClient:
        # A client per computation: cheap next to the cache TTL, and never tied to an
        # event loop that has gone away.
        return httpx.AsyncClient(transport=self.transport)

    async def _cached(
        self, key: str, compute: Callable[[], Awaitable[dict[str, Any]]]
    ) -> dict[str, Any]:
        body, cached = await self.cache.get(key, compute)
        return {**body, "cached": cached, "max_age_seconds": self.cache.ttl}

    async def _sections(self, layout: Layout) -> dict[str, Any]:
        names = [n for section in layout.values() for n in section]
        async with self._client() as client:
            prom = Prometheus(client, self.prometheus_url, self.timeout)
            # return_exceptions: let every query finish before the client closes, then
            # report the first failure.
            results = await asyncio.gather(
                *(prom.run(QUERIES[n]) for n in names), return_exceptions=True
            )
        for r in results:
            if isinstance(r, BaseException):
                raise r
        values = dict(zip(names, results, strict=True))
        body: dict[str, Any] = {"generated_at": _now(), "source": "prometheus"}
        for section, section_names in layout.items():
            body[section] = {n: present(QUERIES[n], values[n]) for n in section_names}
        return body

    async def realtime(self) -> dict[str, Any]:
        return await self._cached("realtime", lambda: self._sections(queries.REALTIME))

    async def performance(self) -> dict[str, Any]:
        return await self._cached("performance", lambda: self._sections(queries.PERFORMANCE))

    async def bags(self) -> dict[str, Any]:
        return await self._cached("bags", lambda: self._sections(queries.BAGS))

    async def slo(self) -> dict[str, Any]:
        async def compute() -> dict[str, Any]:
            body = await self._sections(queries.SLO)
            body["objective"] = {"availability": slo.OBJECTIVE, "window_days": slo.WINDOW_DAYS}
            body["burn_rate_alerts"] = [
                {"severity": a.severity, "factor": a.factor, "long": a.long, "short": a.short}
                for a in slo.BURN_RATE_ALERTS
            ]
            return body

        return await self._cached("slo", compute)

    async def users(self) -> dict[str, Any]:
        return await self._cached("users", lambda: self._sections(queries.USERS))

    async def alerts(self) -> dict[str, Any]:
        async def compute() -> dict[str, Any]:
            async with self._client() as client:
                alerts = await Alertmanager(
                    client, self.alertmanager_url, self.timeout
                ).active_alerts()
            # The always-firing Watchdog is the pipeline's heartbeat, not a problem: it is
            # reported as such instead of filling the list.
            heartbeat = any(a["alertname"] == WATCHDOG for a in alerts)
            alerts = [a for a in alerts if a["alertname"] != WATCHDOG]
            counts = Counter(a["severity"] for a in alerts)
            return {
                "generated_at": _now(),
                "source": "alertmanager",
                "total": len(alerts),
                "by_severity": {s: counts.get(s, 0) for s in SEVERITIES},
                "watchdog_firing": heartbeat,
                "alerts": alerts,
            }

        return await self._cached("alerts", compute)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
