"""Real Prometheus and Alertmanager for tests, on free ports in temp dirs, stopped by PID.

tests/conftest.py registers the fixtures for every test module:

    def test_x(prometheus_factory, alertmanager_factory, tmp_path):
        am = alertmanager_factory(bridge_url="http://127.0.0.1:PORT", credentials_file=token)
        prom = prometheus_factory(targets={"tracetrack-app": ["127.0.0.1:P"]},
                                  rule_files=[rules], alertmanager=am)
        prom.wait_targets_up({"tracetrack-app"})
        am.wait_for_alert("TraceTrackTargetDown", severity="warning")

Both start from the shipped configuration (tooling.stackconfig) with the fast
test timings unless told otherwise, so a test exercises the real routes and rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tooling import stackconfig
from tooling.procs import (
    ManagedProcess,
    alertmanager_process,
    free_port,
    http_ok,
    prometheus_process,
    wait_until,
)


@dataclass
class ServiceHandle:
    """A started Prometheus or Alertmanager: its process, port and config file."""

    proc: ManagedProcess
    port: int
    config_file: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class PrometheusHandle(ServiceHandle):
    def api(self, path: str, **params: Any) -> Any:
        resp = httpx.get(f"{self.url}/api/v1/{path}", params=httpx.QueryParams(params), timeout=5)
        resp.raise_for_status()
        body = resp.json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(self.api("query", query=expr)["result"])

    def targets(self) -> list[dict[str, Any]]:
        return list(self.api("targets")["activeTargets"])

    def alerts(self) -> list[dict[str, Any]]:
        return list(self.api("alerts")["alerts"])

    def rule_groups(self) -> list[dict[str, Any]]:
        return list(self.api("rules")["groups"])

    def wait_targets_up(self, jobs: Iterable[str], timeout: float = 30) -> None:
        wanted = set(jobs)

        def up() -> bool:
            healthy = {t["labels"]["job"] for t in self.targets() if t["health"] == "up"}
            return wanted <= healthy

        wait_until(up, timeout, f"targets {sorted(wanted)} up in Prometheus", process=self.proc)

    def wait_alertmanager_connected(self, timeout: float = 30) -> None:
        wait_until(
            lambda: bool(self.api("alertmanagers")["activeAlertmanagers"]),
            timeout,
            "Prometheus to discover its Alertmanager",
            process=self.proc,
        )


@dataclass
class AlertmanagerHandle(ServiceHandle):
    cluster_port: int | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cluster_peers(self) -> list[dict[str, Any]]:
        """The members this Alertmanager sees in its gossip cluster (itself included)."""
        resp = httpx.get(f"{self.url}/api/v2/status", timeout=5)
        resp.raise_for_status()
        return list(resp.json()["cluster"].get("peers") or [])

    def alerts(self, **filters: str) -> list[dict[str, Any]]:
        """`GET /api/v2/alerts`; filters are label matchers, e.g. alertname="X"."""
        params = {"filter": [f'{k}="{v}"' for k, v in filters.items()]}
        resp = httpx.get(f"{self.url}/api/v2/alerts", params=params, timeout=5)
        resp.raise_for_status()
        return list(resp.json())

    def post_alerts(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        resp = httpx.post(f"{self.url}/api/v2/alerts", json=list(alerts), timeout=5)
        resp.raise_for_status()

    def wait_for_alert(self, alertname: str, timeout: float = 60, **labels: str) -> dict[str, Any]:
        """The first active alert with these labels, waiting for it to appear."""
        found: list[dict[str, Any]] = []

        def present() -> bool:
            found[:] = self.alerts(alertname=alertname, **labels)
            return bool(found)

        wait_until(
            present, timeout, f"alert {alertname} {labels} in Alertmanager", process=self.proc
        )
        return found[0]

    def wait_alert_gone(self, alertname: str, timeout: float = 60, **labels: str) -> None:
        wait_until(
            lambda: not self.alerts(alertname=alertname, **labels),
            timeout,
            f"alert {alertname} {labels} to resolve in Alertmanager",
            process=self.proc,
        )


def start_prometheus(
    workdir: Path,
    *,
    targets: Mapping[str, Sequence[str]],
    rule_files: Sequence[Path] = (),
    alertmanager: AlertmanagerHandle | str | Sequence[AlertmanagerHandle] | None = None,
    scrape_interval: str = stackconfig.FAST_SCRAPE_INTERVAL,
    evaluation_interval: str = stackconfig.FAST_EVALUATION_INTERVAL,
    extra_args: Sequence[str] = (),
    port: int | None = None,
    external_labels: Mapping[str, str] | None = None,
    remote_write: Sequence[str] | None = None,
) -> PrometheusHandle:
    """Prometheus scraping `targets` (job -> ["host:port"]), loading `rule_files`,
    alerting to `alertmanager` (a handle, "host:port", or a list of them for a
    cluster; None: no alerting). external_labels / remote_write: as in
    stackconfig.render_prometheus_config (an HA pair, long-term storage)."""
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    if alertmanager is None or isinstance(alertmanager, (AlertmanagerHandle, str)):
        managers = [alertmanager] if alertmanager else []
    else:
        managers = list(alertmanager)
    am = [m.address if isinstance(m, AlertmanagerHandle) else m for m in managers]
    config = stackconfig.write_prometheus_config(
        workdir / "prometheus.yml",
        targets=targets,
        rule_files=list(rule_files),
        alertmanagers=am,
        scrape_interval=scrape_interval,
        evaluation_interval=evaluation_interval,
        external_labels=external_labels,
        remote_write=remote_write,
    )
    # Resolved alerts are sent at once anyway; a short resend delay keeps firing
    # ones fresh in Alertmanager when a test runs longer than a minute.
    args = ["--rules.alert.resend-delay=2s", *extra_args]
    proc = prometheus_process(config, workdir / "data", port, extra_args=args).start()
    proc.wait_ready(http_ok(f"http://127.0.0.1:{port}/-/ready"), timeout=30)
    return PrometheusHandle(proc, port, config)


def start_alertmanager(
    workdir: Path,
    *,
    bridge_url: str | None = None,
    credentials_file: Path | None = None,
    route_timings: Mapping[str, str] | None = stackconfig.FAST_ROUTE_TIMINGS,
    watchdog_timings: Mapping[str, str] | None = None,
    native_receivers: Mapping[str, Mapping[str, Any]] | None = None,
    config_text: str | None = None,
    port: int | None = None,
    bridge_urls: Sequence[str] | None = None,
    cluster_port: int | None = None,
    peers: Sequence[str] = (),
    extra_args: Sequence[str] = (),
) -> AlertmanagerHandle:
    """Alertmanager with the shipped routes (bridge address(es), token file and timings
    substituted), or with `config_text` verbatim. With `cluster_port`, a member of a
    gossip cluster joining `peers` (see start_alertmanager_cluster)."""
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "alertmanager.yml"
    if config_text is None:
        if credentials_file is None:
            credentials_file = workdir / "bridge_token"
            credentials_file.write_text("test-token\n")
        stackconfig.write_alertmanager_config(
            config,
            bridge_url=bridge_url,
            bridge_urls=bridge_urls,
            credentials_file=credentials_file,
            route_timings=route_timings,
            watchdog_timings=watchdog_timings,
            native_receivers=native_receivers,
        )
    else:
        config.write_text(config_text)
    proc = alertmanager_process(
        config,
        workdir / "data",
        port,
        extra_args=extra_args,
        cluster_port=cluster_port,
        peers=peers,
    ).start()
    proc.wait_ready(http_ok(f"http://127.0.0.1:{port}/-/ready"), timeout=30)
    return AlertmanagerHandle(proc, port, config, cluster_port)


# Gossip fast enough for a test: the second member waits this long for the first one's
# notification log before sending itself (the shipped default is 15 s).
TEST_PEER_TIMEOUT = "3s"


def start_alertmanager_cluster(
    workdir: Path, size: int = 2, peer_timeout: str = TEST_PEER_TIMEOUT, **kwargs: Any
) -> list[AlertmanagerHandle]:
    """`size` Alertmanagers in one gossip cluster (every member lists every other as a
    peer), each with `start_alertmanager(**kwargs)`; returns when all see each other."""
    gossip = [free_port() for _ in range(size)]
    members = []
    try:
        for i, port in enumerate(gossip):
            members.append(
                start_alertmanager(
                    workdir / f"alertmanager{i}",
                    cluster_port=port,
                    peers=[f"127.0.0.1:{p}" for p in gossip if p != port],
                    extra_args=[
                        f"--cluster.peer-timeout={peer_timeout}",
                        "--cluster.gossip-interval=100ms",
                        "--cluster.pushpull-interval=2s",
                    ],
                    **kwargs,
                )
            )
        for member in members:
            wait_until(
                lambda m=member: len(m.cluster_peers()) == size,  # type: ignore[misc]  # mypy cannot type default-argument lambdas
                30,
                f"{size} Alertmanagers to form one cluster",
                process=member.proc,
            )
    except BaseException:
        for member in members:
            member.proc.stop()
        raise
    return members


_H = TypeVar("_H", bound=ServiceHandle)


def _stopping_factory(
    directory: Path, start: Callable[..., _H], prefix: str
) -> Iterator[Callable[..., _H]]:
    """A fixture body: `start` in a fresh directory per call; all stopped at teardown."""
    started: list[_H] = []

    def factory(**kwargs: Any) -> _H:
        handle = start(directory / f"{prefix}{len(started)}", **kwargs)
        started.append(handle)
        return handle

    try:
        yield factory
    finally:
        for handle in started:
            handle.proc.stop()


@pytest.fixture()
def prometheus_factory(tmp_path: Path) -> Iterator[Callable[..., PrometheusHandle]]:
    """`start_prometheus` with a fresh directory per call; all stopped at teardown."""
    yield from _stopping_factory(tmp_path, start_prometheus, "prometheus")


@pytest.fixture()
def alertmanager_factory(tmp_path: Path) -> Iterator[Callable[..., AlertmanagerHandle]]:
    """`start_alertmanager` with a fresh directory per call; all stopped at teardown."""
    yield from _stopping_factory(tmp_path, start_alertmanager, "alertmanager")
