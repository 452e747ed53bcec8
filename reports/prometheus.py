"""Prometheus' HTTP query API (instant and range queries), synchronous, with timeouts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import yaml

from common.durations import duration_seconds
from common.promql import sample_number
from common.settings import without_credentials

Point = tuple[float, float]  # (unix seconds, value)


class PrometheusError(RuntimeError):
    """Prometheus could not be reached or refused a query; names the URL and the query."""


@dataclass
class Prometheus:
    url: str
    timeout: float = 30.0
    client: httpx.Client | None = None

    def _get(self, path: str, params: dict[str, Any], method: str = "POST") -> Any:
        url = f"{self.url.rstrip('/')}/api/v1/{path}"
        client = self.client or httpx.Client()
        try:
            if method == "POST":
                resp = client.post(url, data=params, timeout=self.timeout)
            else:
                resp = client.get(url, params=params, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise PrometheusError(
                f"Prometheus at {without_credentials(self.url)} is unreachable: {exc}"
            ) from exc
        finally:
            if self.client is None:
                client.close()
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if resp.status_code != 200 or body.get("status") != "success":
            raise PrometheusError(
                f"Prometheus at {without_credentials(self.url)} answered {resp.status_code}"
                f" to {params.get('query')!r}:"
                f" {body.get('error') or resp.text[:200]}"
            )
        return body["data"]

    def vector(self, query: str, at: float) -> list[tuple[dict[str, str], float | None]]:
        data = self._get("query", {"query": query, "time": f"{at:.3f}"})
        if data["resultType"] == "scalar":
            return [({}, sample_number(data["result"][1]))]
        return [(s["metric"], sample_number(s["value"][1])) for s in data["result"]]

    def scalar(self, query: str, at: float) -> float | None:
        """The single value of `query` at `at`; None when it has no series (no data)."""
        result = self.vector(query, at)
        if not result:
            return None
        if len(result) > 1:
            raise PrometheusError(f"{query!r} gave {len(result)} series where one was expected")
        return result[0][1]

    def by_label(self, query: str, label: str, at: float) -> dict[str, float | None]:
        return {metric.get(label, ""): value for metric, value in self.vector(query, at)}

    def matrix(
        self, query: str, start: float, end: float, step: float
    ) -> list[tuple[dict[str, str], list[Point]]]:
        data = self._get(
            "query_range",
            {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"},
        )
        out = []
        for s in data["result"]:
            points = [
                (float(t), v) for t, raw in s["values"] if (v := sample_number(raw)) is not None
            ]
            out.append((s["metric"], points))
        return out

    def series(self, query: str, start: float, end: float, step: float) -> list[Point]:
        """One series over time ([] when there is none)."""
        result = self.matrix(query, start, end, step)
        if len(result) > 1:
            raise PrometheusError(f"{query!r} gave {len(result)} series where one was expected")
        return result[0][1] if result else []

    def scrape_interval(self, default: float) -> float:
        """The global scrape interval of the running configuration: range windows must
        hold several samples (what Grafana's $__rate_interval does). `default` where
        the server does not publish its configuration (VictoriaMetrics)."""
        try:
            config = yaml.safe_load(self._get("status/config", {}, "GET")["yaml"]) or {}
        except (PrometheusError, KeyError, yaml.YAMLError):
            return default
        interval = (config.get("global") or {}).get("scrape_interval")
        return duration_seconds(interval) if interval else default
