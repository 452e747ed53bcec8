"""Prometheus' HTTP API and Alertmanager's v2 API, with a timeout on every call.

Any failure to get an answer (refused, timed out, 5xx) is BackendUnavailable, which
the routes turn into a 503 with a JSON body naming the backend.
"""

from __future__ import annotations

from typing import Any

import httpx

from app.analytics.queries import NamedQuery
from common.promql import sample_number
from common.settings import without_credentials


class BackendUnavailable(Exception):
    def __init__(self, backend: str, url: str, reason: str) -> None:
        url = without_credentials(url)  # the error body and the log show it
        super().__init__(f"{backend} at {url} is unavailable: {reason}")
        self.backend = backend
        self.url = url
        self.reason = reason


class QueryRejected(Exception):
    """Prometheus refused one of our named queries: a bug on our side, not an outage."""


def _reason(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within the timeout ({type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class Prometheus:
    def __init__(self, client: httpx.AsyncClient, base_url: str, timeout: float) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    async def run(self, query: NamedQuery) -> float | None | dict[str, float | None]:
        """The query's value now: a number, or {label value: number} for `by` queries;
        None (or {}) when there are no series or the value is NaN."""
        url = f"{self.base_url}/api/v1/query"
        try:
            r = await self.client.post(
                url,
                data={"query": query.promql, "timeout": f"{round(self.timeout * 1000)}ms"},
                timeout=self.timeout + 0.5,
            )
        except httpx.HTTPError as exc:
            raise BackendUnavailable("prometheus", self.base_url, _reason(exc)) from exc
        if r.status_code in (400, 422):
            raise QueryRejected(
                f"Prometheus rejected the named query {query.name!r}: {_error_of(r)}"
            )
        if r.status_code != 200:
            raise BackendUnavailable(
                "prometheus", self.base_url, f"HTTP {r.status_code}: {r.text[:200]}"
            )
        try:
            result = r.json()["data"]["result"]
            if query.by is None:
                return sample_number(result[0]["value"][1]) if result else None
            return {s["metric"].get(query.by, ""): sample_number(s["value"][1]) for s in result}
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            # PROMETHEUS_URL at something else (Grafana, a proxy's login page): a 500
            # with a traceback before; the backend is not usable, and the answer says why.
            raise BackendUnavailable("prometheus", self.base_url, _not_api(r)) from None


class Alertmanager:
    def __init__(self, client: httpx.AsyncClient, base_url: str, timeout: float) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    async def active_alerts(self) -> list[dict[str, Any]]:
        """Alerts firing and neither silenced nor inhibited, newest first."""
        url = f"{self.base_url}/api/v2/alerts"
        params = {
            "active": "true",
            "silenced": "false",
            "inhibited": "false",
            "unprocessed": "false",
        }
        try:
            r = await self.client.get(url, params=params, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise BackendUnavailable("alertmanager", self.base_url, _reason(exc)) from exc
        if r.status_code != 200:
            raise BackendUnavailable(
                "alertmanager", self.base_url, f"HTTP {r.status_code}: {r.text[:200]}"
            )
        try:
            alerts = [_alert(a) for a in r.json()]
        except (ValueError, AttributeError, TypeError):
            raise BackendUnavailable("alertmanager", self.base_url, _not_api(r)) from None
        alerts.sort(key=lambda a: a["starts_at"], reverse=True)
        return alerts


def _error_of(r: httpx.Response) -> str:
    try:
        return str(r.json().get("error", r.text[:200]))
    except (ValueError, AttributeError):
        return r.text[:200]


def _not_api(r: httpx.Response) -> str:
    kind = r.headers.get("content-type", "no content type").split(";")[0]
    return f"HTTP {r.status_code} with {kind}, not its API's answer (is the URL right?)"


def _alert(raw: dict[str, Any]) -> dict[str, Any]:
    labels = raw.get("labels", {})
    annotations = raw.get("annotations", {})
    return {
        "alertname": labels.get("alertname", ""),
        "severity": labels.get("severity", "none"),
        "state": raw.get("status", {}).get("state", "active"),
        "summary": annotations.get("summary", ""),
        "description": annotations.get("description", ""),
        "runbook_url": annotations.get("runbook_url"),
        "starts_at": raw.get("startsAt", ""),
        "labels": labels,
        "fingerprint": raw.get("fingerprint"),
    }
