"""End to end with the real parts: the app and the exporter as subprocesses, Prometheus
with the shipped rules (only `for:` shortened), Alertmanager with the shipped routes (fast
timings), delivering to a local sink on the bridge's paths. The app is pushed over a
threshold for real and the alert is read back through Alertmanager's v2 API."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from common import topology
from tests.support.appkit import start_app_process
from tests.support.exporterkit import start_exporter_process
from tests.support.sinks import WebhookSink
from tests.support.stack import (
    AlertmanagerHandle,
    PrometheusHandle,
)
from tooling import stackconfig
from tooling.procs import ManagedProcess, http_ok, wait_until

TOKEN = "integration-bridge-token-0123456789"


@dataclass
class Stack:
    app: ManagedProcess
    app_port: int
    exporter: ManagedProcess
    exporter_port: int
    prometheus: PrometheusHandle
    alertmanager: AlertmanagerHandle
    sink: WebhookSink

    @property
    def app_url(self) -> str:
        return f"http://127.0.0.1:{self.app_port}"

    def deliveries(self, path: str, alertname: str) -> list[dict[str, Any]]:
        """Webhook payloads on `path` that carry `alertname`."""
        return [
            body
            for body in self.sink.bodies(path.lstrip("/"))
            if any(a["labels"]["alertname"] == alertname for a in body["alerts"])
        ]


@pytest.fixture()
def stack(
    tmp_path: Path,
    database_url: str,
    prometheus_factory: Callable[..., PrometheusHandle],
    alertmanager_factory: Callable[..., AlertmanagerHandle],
) -> Iterator[Stack]:
    sink = WebhookSink().start()
    procs: list[ManagedProcess] = []
    try:
        app, app_port = start_app_process(
            tmp_path / "app", database_url, env={"TRACETRACK_DEBUG_ENDPOINTS": "1"}
        )
        procs.append(app)
        exporter, exporter_port = start_exporter_process(tmp_path / "exporter", database_url)
        procs.append(exporter)
        token_file = tmp_path / "bridge_token"
        token_file.write_text(TOKEN + "\n")
        am = alertmanager_factory(bridge_url=sink.url, credentials_file=token_file)
        rules = stackconfig.write_rules(tmp_path / "rules.yml", for_=stackconfig.FAST_FOR)
        prom = prometheus_factory(
            targets={
                topology.APP_JOB: [f"127.0.0.1:{app_port}"],
                topology.EXPORTER_JOB: [f"127.0.0.1:{exporter_port}"],
            },
            rule_files=[rules],
            alertmanager=am,
        )
        prom.wait_targets_up({topology.APP_JOB, topology.EXPORTER_JOB})
        prom.wait_alertmanager_connected()
        yield Stack(app, app_port, exporter, exporter_port, prom, am, sink)
    finally:
        for proc in reversed(procs):
            proc.stop()
        sink.stop()


def get_many(url: str, n: int, workers: int) -> list[int]:
    with httpx.Client(timeout=60) as client, ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda _: client.get(url).status_code, range(n)))


def test_slow_responses_page_critical_then_resolve(stack: Stack) -> None:
    slow = f"{stack.app_url}/api/debug/slow"
    # The route's histogram series must exist (and be scraped twice) before the slow
    # requests, or rate() would not see their increase.
    assert get_many(f"{slow}?seconds=0", 5, 1) == [200] * 5
    wait_until(
        lambda: bool(
            stack.prometheus.query(
                'count_over_time(tracetrack_http_request_duration_seconds_count{route="/api/debug/slow"}[1m]) >= 2'
            )
        ),
        20,
        "the debug route's latency series in Prometheus",
    )

    # Past the alert's traffic guard (0.5 requests/s over 5 minutes, and rate() divides
    # by the whole window, so a young app needs 150 requests), then 30 requests of
    # 5.5 s: over 5 % of this app's requests are slower than 5 s, so the p95 is above
    # both limits.
    assert get_many(f"{slow}?seconds=0", 200, 8) == [200] * 200
    assert get_many(f"{slow}?seconds=5.5", 30, 30) == [200] * 30

    firing = stack.alertmanager.wait_for_alert(
        "TraceTrackResponseTimeHigh", timeout=30, severity="critical"
    )
    instance = f"127.0.0.1:{stack.app_port}"
    assert firing["labels"] == {
        "alertname": "TraceTrackResponseTimeHigh",
        "severity": "critical",
        "job": "tracetrack-app",
        "instance": instance,
    }
    ann = firing["annotations"]
    assert ann["runbook_url"] == "http://127.0.0.1:9818/runbook#tracetrackresponsetimehigh"
    assert ann["threshold"] == "> 5 s" and ann["value"].endswith("s"), ann
    assert ann["description"].endswith("The critical threshold is > 5 s.")
    assert firing["status"]["state"] == "active"
    assert [r["name"] for r in firing["receivers"]] == ["bridge-critical"]

    # The warning fires too, and the critical inhibits it.
    warning = stack.alertmanager.wait_for_alert(
        "TraceTrackResponseTimeHigh", timeout=30, severity="warning"
    )
    wait_until(
        lambda: (
            stack.alertmanager.alerts(alertname="TraceTrackResponseTimeHigh", severity="warning")[
                0
            ]["status"]["state"]
            == "suppressed"
        ),
        10,
        "the warning to be inhibited",
    )
    assert warning["labels"]["instance"] == instance

    # Delivered to the bridge's critical path with the bearer token, within the
    # fast configuration's few seconds (plenty of slack here; the figure is a bench's).
    wait_until(
        lambda: bool(stack.deliveries("/alertmanager/critical", "TraceTrackResponseTimeHigh")),
        20,
        "the critical notification at the bridge path",
    )
    request = next(r for r in list(stack.sink.received) if r.path == "/alertmanager/critical")
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert stack.deliveries("/alertmanager/warning", "TraceTrackResponseTimeHigh") == []

    # Remove the cause: enough fast requests that under 5 % are slow. Same shipped
    # expression, so the p95 drops below 2 s and both alerts resolve.
    assert get_many(f"{slow}?seconds=0", 800, 8) == [200] * 800
    stack.alertmanager.wait_alert_gone("TraceTrackResponseTimeHigh", timeout=45)
    wait_until(
        lambda: any(
            p["status"] == "resolved"
            for p in stack.deliveries("/alertmanager/critical", "TraceTrackResponseTimeHigh")
        ),
        20,
        "the resolved notification at the bridge path",
    )
    assert stack.deliveries("/alertmanager/warning", "TraceTrackResponseTimeHigh") == []


def test_stopped_exporter_warns_target_down_then_resolves(stack: Stack) -> None:
    stack.exporter.stop()
    down = stack.alertmanager.wait_for_alert(
        "TraceTrackTargetDown", timeout=30, job="tracetrack-exporter"
    )
    assert down["labels"]["severity"] == "warning"
    assert down["labels"]["instance"] == f"127.0.0.1:{stack.exporter_port}"
    assert [r["name"] for r in down["receivers"]] == ["bridge-warning"]
    # The app is still up: no critical TargetDown.
    assert stack.alertmanager.alerts(alertname="TraceTrackTargetDown", job="tracetrack-app") == []
    # The on-call must have been told before the exporter comes back: Alertmanager drops
    # an alert that fires and resolves within one group_wait (it never notified it, so
    # there is nothing to resolve); a restart that wins that race once failed CI.
    wait_until(
        lambda: any(
            p["status"] == "firing"
            for p in stack.deliveries("/alertmanager/warning", "TraceTrackTargetDown")
        ),
        30,
        "the firing warning at the bridge path",
    )

    restarted = ManagedProcess(
        stack.exporter.name, stack.exporter.args, stack.exporter.log_path, env=stack.exporter.env
    ).start()
    try:
        restarted.wait_ready(http_ok(f"http://127.0.0.1:{stack.exporter_port}/healthz"), timeout=30)
        stack.alertmanager.wait_alert_gone(
            "TraceTrackTargetDown", timeout=30, job="tracetrack-exporter"
        )
        # Wait with the exporter still up: stopping it first could re-fire the alert into
        # the same group before Alertmanager flushes the resolved notification.
        wait_until(
            lambda: any(
                p["status"] == "resolved"
                for p in stack.deliveries("/alertmanager/warning", "TraceTrackTargetDown")
            ),
            30,
            "the resolved warning at the bridge path",
        )
    finally:
        restarted.stop()
