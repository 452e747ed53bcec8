"""Issue 16: cause alerts and their inhibitions, so that one fault gives one page naming
the cause (tooling/cause_rules.py, alertmanager/alertmanager.yml).

The alert expressions are unit-tested by promtool (prometheus/tests/causes.yml); here: the
inhibit rules agree with CAUSES, a real Alertmanager mutes the symptoms while a cause is
active, and the exporter's readiness probe of the app.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.exporterkit import running_exporter, scrape, up
from tests.support.sinks import WebhookSink
from tests.support.stack import AlertmanagerHandle
from tooling import cause_rules, stackconfig
from tooling.checkout import ROOT
from tooling.procs import free_port, wait_until


def _alertname_matches(matchers: list[str], name: str) -> bool:
    for m in matchers:
        found = re.fullmatch(r'alertname(=~|=)"(.*)"', m)
        if found:
            op, value = found.groups()
            return value == name if op == "=" else re.fullmatch(value, name) is not None
    return False


def test_every_cause_mutes_the_alerts_it_explains_in_the_shipped_alertmanager() -> None:
    rules = yaml.safe_load(stackconfig.ALERTMANAGER_CONFIG.read_text())["inhibit_rules"]
    for cause, targets in cause_rules.CAUSES.items():
        for target in targets:
            assert any(
                _alertname_matches(r["source_matchers"], cause)
                and _alertname_matches(r["target_matchers"], target)
                for r in rules
            ), f"no inhibit rule mutes {target} while {cause} fires"
    # ...and no rule mutes anything CAUSES does not list.
    for r in rules[1:]:
        causes = [c for c in cause_rules.CAUSES if _alertname_matches(r["source_matchers"], c)]
        sources = str(r["source_matchers"])
        # TargetDown mutes a dead app's readiness; the bridge-down page, the dead bridges'
        # TargetDown (tests/test_bridge_down.py).
        assert causes or "TraceTrackTargetDown" in sources or "AlertBridgeDown" in sources, r


def test_cause_alerts_have_runbook_sections() -> None:
    text = (ROOT / "docs" / "runbook.md").read_text()
    for name in (cause_rules.POSTGRES_DOWN, cause_rules.APP_NOT_READY, cause_rules.REDIS_DOWN):
        assert f"\n## {name}\n" in text


def alert(name: str, severity: str, **labels: str) -> dict[str, Any]:
    return {
        "labels": {"alertname": name, "severity": severity, **labels},
        "annotations": {"summary": f"{name} {severity}"},
    }


def test_a_real_alertmanager_sends_the_cause_and_mutes_its_symptoms(
    alertmanager_factory: Any, webhook_sink: WebhookSink, tmp_path: Path
) -> None:
    token = tmp_path / "bridge_token"
    token.write_text("s3cret-token-for-the-bridge\n")
    am: AlertmanagerHandle = alertmanager_factory(
        bridge_url=webhook_sink.url, credentials_file=token
    )
    app = {"job": "tracetrack-app", "instance": "127.0.0.1:8000"}
    exporter = {"job": "tracetrack-exporter", "instance": "127.0.0.1:9817"}
    am.post_alerts(
        [
            alert(cause_rules.POSTGRES_DOWN, "critical"),
            alert("TraceTrackErrorRateHigh", "critical", **app),
            alert("TraceTrackErrorBudgetBurn", "critical", job="tracetrack-app"),
            alert(
                cause_rules.APP_NOT_READY, "critical", **{**exporter, **app}, app=app["instance"]
            ),
            alert("TraceTrackExporterCollectorDown", "warning", **exporter, collector="postgres"),
            alert(cause_rules.REDIS_DOWN, "warning", **exporter),
            alert("TraceTrackCacheFellBackToMemory", "warning", **app),
            # Not explained by any cause: still sent.
            alert("TraceTrackCPUUsageHigh", "warning", **exporter),
        ]
    )

    def sent() -> set[str]:
        return {
            a["labels"]["alertname"]
            for p in webhook_sink.bodies()
            if isinstance(p, dict)
            for a in p.get("alerts", [])
        }

    wait_until(
        lambda: (
            sent() >= {cause_rules.POSTGRES_DOWN, cause_rules.REDIS_DOWN, "TraceTrackCPUUsageHigh"}
        ),
        30,
        "the causes and the unrelated warning to be sent",
    )
    muted = (
        "TraceTrackErrorRateHigh",
        "TraceTrackErrorBudgetBurn",
        cause_rules.APP_NOT_READY,
        "TraceTrackExporterCollectorDown",
        "TraceTrackCacheFellBackToMemory",
    )

    def all_suppressed() -> bool:
        return all(
            a["status"]["state"] == "suppressed" and a["status"]["inhibitedBy"]
            for name in muted
            for a in am.alerts(alertname=name)
        )

    wait_until(all_suppressed, 30, "every symptom inhibited by its cause")
    assert not sent() & set(muted), sent()


class _Ready(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        code = type(self).status if self.path == "/readyz" else 404
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def readyz_server() -> Iterator[tuple[str, type[_Ready]]]:
    handler = type("Ready", (_Ready,), {"status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def _ready(samples: dict[Any, float], app: str) -> float | None:
    return samples.get(("tracetrack_app_ready", frozenset({("app", app)})))


def test_the_exporter_probes_each_apps_readiness(
    database_url: str, readyz_server: tuple[str, type[_Ready]]
) -> None:
    url, handler = readyz_server
    answering = url.removeprefix("http://")
    silent = f"127.0.0.1:{free_port()}"
    with running_exporter(database_url, app_urls=f"{url},http://{silent}") as exporter:
        _, s = scrape(exporter)
        assert up(s, "app") == 1  # a down app is a 0, not a failed collector
        assert _ready(s, answering) == 1
        assert _ready(s, silent) == 0
        handler.status = 503
        assert _ready(scrape(exporter)[1], answering) == 0
