"""Which part of the alerting pipeline is broken, asked when the heartbeats stop.

The dead man's switch knows only that no Watchdog reached the bridge. Before it pages,
it asks Prometheus and Alertmanager their health endpoints (`/-/healthy`), so the page
names the part that is down ("Prometheus http://... is not answering: connection
refused") instead of listing every suspect.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import httpx

from common.settings import without_credentials

PROBE_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class Finding:
    component: str  # "Prometheus" | "Alertmanager"
    url: str
    healthy: bool
    detail: str  # "HTTP 200", "connection refused", ...

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


Get = Callable[[str], httpx.Response]


class PipelineProbe:
    """GET <base>/-/healthy of each component; any answer but 200 counts as down."""

    def __init__(self, components: dict[str, str], get: Get | None = None) -> None:
        self.components = {name: url.rstrip("/") for name, url in components.items() if url}
        self._get = get or (lambda url: httpx.get(url, timeout=PROBE_TIMEOUT_SECONDS))

    def check(self) -> list[Finding]:
        return [self._one(name, base) for name, base in self.components.items()]

    def _one(self, name: str, base: str) -> Finding:
        url = f"{base}/-/healthy"
        base = without_credentials(base)  # the page names it, on every channel
        try:
            resp = self._get(url)
        except httpx.ConnectError:
            return Finding(name, base, False, "connection refused (not running?)")
        except httpx.TimeoutException:
            return Finding(name, base, False, f"no answer within {PROBE_TIMEOUT_SECONDS:g} s")
        except httpx.HTTPError as exc:
            return Finding(name, base, False, f"{type(exc).__name__}: {exc}")
        if resp.status_code != 200:
            return Finding(name, base, False, f"answers HTTP {resp.status_code}")
        return Finding(name, base, True, "healthy")
