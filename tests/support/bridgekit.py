"""Running the alert bridge in tests: in-process (uvicorn in a thread, real HTTP)
or as a real `tracetrack bridge --port P` subprocess; Alertmanager-shaped payloads."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from tooling.procs import TRACETRACK, ManagedProcess, free_port, http_ok, wait_until

if TYPE_CHECKING:
    from tests.support.stack import AlertmanagerHandle

TOKEN = "test-bridge-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def am_payload(
    alertname: str = "HighErrorRate",
    severity: str = "critical",
    status: str = "firing",
    n_alerts: int = 1,
    group: str | None = None,
    starts_at: str = "2030-01-01T00:00:00Z",
    summary: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An Alertmanager webhook body (version 4) like the real one."""
    alerts = []
    for i in range(n_alerts):
        labels = {"alertname": alertname, "severity": severity, "instance": f"app-{i}:8000"}
        fp = hashlib.sha256(repr(sorted(labels.items())).encode()).hexdigest()[:16]
        alerts.append(
            {
                "status": status,
                "labels": labels,
                "annotations": {
                    "summary": summary or f"{alertname} on app-{i}",
                    "description": f"{alertname} has been {status} for 1m",
                    "runbook_url": f"https://runbooks.example.com/{alertname}",
                },
                "startsAt": starts_at,
                "endsAt": "2030-01-01T00:05:00Z"
                if status == "resolved"
                else "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.local/graph?g0.expr=up",
                "fingerprint": fp,
            }
        )
    group_key = group or f'{{}}/{{severity="{severity}"}}:{{alertname="{alertname}"}}'
    return {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": severity,
        "groupLabels": {"alertname": alertname},
        "commonLabels": {"alertname": alertname, "severity": severity},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.local",
        "alerts": alerts,
        **extra,
    }


def write_alert_config(path: Path, recipients: dict[str, Any]) -> Path:
    path.write_text(f"ALERT_RECIPIENTS = {recipients!r}\n")
    return path


def recipients_for(smtp: Any = None, twilio: Any = None, hooks: Any = None) -> dict[str, Any]:
    """The standard test recipients: every channel, every severity the matrix allows."""
    cfg: dict[str, Any] = {
        "email": {
            "critical": ["oncall@example.com", "ops@example.com"],
            "warning": ["lead@example.com"],
            "info": ["monitoring@example.com"],
        }
    }
    if twilio is not None:
        cfg["sms"] = {"critical": ["+14155550100"]}
    if hooks is not None:
        cfg["webhook"] = {
            "critical": [
                {"url": hooks.url_for("slack/crit"), "format": "slack"},
                {"url": hooks.url_for("discord/crit"), "format": "discord"},
            ],
            "warning": [hooks.url_for("json/warn")],
        }
    return cfg


def bridge_env(
    tmp: Path,
    config_file: Path,
    smtp: Any = None,
    twilio: Any = None,
    hooks: Any = None,
    **overrides: Any,
) -> dict[str, str]:
    """Environment for a bridge wired to the given sinks, with fast test timings."""
    env = {
        "TRACETRACK_VAR_DIR": str(tmp / "var"),
        "BRIDGE_DATABASE_URL": f"sqlite:///{tmp / 'bridge.sqlite3'}",
        "BRIDGE_AUTH_TOKEN": TOKEN,
        "ALERT_CONFIG_FILE": str(config_file),
        "BRIDGE_RETRY_INITIAL_SECONDS": "0.1",
        "BRIDGE_RETRY_MAX_DELAY_SECONDS": "0.4",
        "BRIDGE_POLL_INTERVAL_SECONDS": "0.1",
        "BRIDGE_WATCHDOG_TIMEOUT_SECONDS": "0",
        # Delivery semantics under test, not storms: no per-phone SMS budget and no
        # provider pacing unless a test turns them on (test_bridge_storm, _rates).
        "BRIDGE_SMS_BUDGET": "0",
        "BRIDGE_SEND_RATES": "false",
        "BRIDGE_WORKER_THREADS": "4",
        "ENABLE_EMAIL_ALERTS": "false",
        "ENABLE_SMS_ALERTS": "false",
        "ENABLE_WEBHOOK_ALERTS": "false",
    }
    if smtp is not None:
        env.update(
            {
                "ENABLE_EMAIL_ALERTS": "true",
                "SMTP_SERVER": "127.0.0.1",
                "SMTP_PORT": str(smtp.port),
                "SMTP_SECURITY": "none",
                "ALERT_SENDER_EMAIL": "alerts@tracetrack.example.com",
                "SMTP_TIMEOUT_SECONDS": "3",
            }
        )
    if twilio is not None:
        env.update(
            {
                "ENABLE_SMS_ALERTS": "true",
                "TWILIO_ACCOUNT_SID": twilio.account_sid,
                "TWILIO_AUTH_TOKEN": twilio.auth_token,
                "TWILIO_FROM_NUMBER": "+15005550006",
                "TWILIO_API_BASE_URL": twilio.url,
                "TWILIO_TIMEOUT_SECONDS": "3",
            }
        )
    if hooks is not None:
        env.update({"ENABLE_WEBHOOK_ALERTS": "true", "WEBHOOK_TIMEOUT_SECONDS": "3"})
    env.update({k.upper(): str(v) for k, v in overrides.items()})
    return env


def settings_from_env(env: dict[str, str]) -> Any:
    """BridgeSettings exactly as the subprocess would build them from `env`."""
    from alert_bridge.settings import BridgeSettings

    saved = dict(os.environ)
    try:
        os.environ.update(env)
        return BridgeSettings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


class BridgeClient:
    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def post(
        self, severity: str, payload: Any, headers: dict[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        return self.http.post(
            f"/alertmanager/{severity}",
            json=payload,
            headers=AUTH if headers is None else headers,
            **kw,
        )

    def notifications(self, **params: Any) -> dict[str, Any]:
        resp = self.http.get("/notifications", params=params, headers=AUTH)
        resp.raise_for_status()
        return resp.json()

    def counts(self) -> dict[str, int]:
        return self.notifications(limit=1)["counts"]

    def metric(self, name: str, **labels: str) -> float:
        from prometheus_client.parser import text_string_to_metric_families

        text = self.http.get("/metrics").text
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    return float(s.value)
        return 0.0

    def wait_settled(self, timeout: float = 20.0) -> dict[str, int]:
        """Until nothing is pending or in flight."""

        def settled() -> bool:
            c = self.counts()
            return c.get("pending", 0) == 0 and c.get("sending", 0) == 0

        wait_until(settled, timeout, "the bridge's outbox to drain")
        return self.counts()


class InProcessBridge(BridgeClient):
    """The real app and service on a real port, in this process (metrics readable)."""

    def __init__(
        self,
        env: dict[str, str],
        port: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        import uvicorn

        from alert_bridge.app import create_app
        from alert_bridge.service import BridgeService

        super().__init__(port or free_port())
        self.settings = settings_from_env(env)
        self.service = BridgeService(self.settings, self.port, clock=clock)
        self.server = uvicorn.Server(
            uvicorn.Config(
                create_app(self.service),
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                access_log=False,
                lifespan="on",
            )
        )
        self._thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> InProcessBridge:
        self._thread.start()
        wait_until(http_ok(f"{self.url}/readyz"), 20, "the in-process bridge")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(30)
        self.http.close()

    def __enter__(self) -> InProcessBridge:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class BridgeProcess(BridgeClient):
    """`tracetrack bridge --port P` as a real subprocess (for kill -9)."""

    def __init__(self, env: dict[str, str], log: Path, port: int | None = None) -> None:
        super().__init__(port or free_port())
        self.proc = ManagedProcess(
            "bridge", [TRACETRACK, "bridge", "--port", str(self.port)], log, env=env
        )

    def start(self) -> BridgeProcess:
        self.proc.start().wait_ready(http_ok(f"{self.url}/readyz"), timeout=30)
        return self

    def kill9(self) -> None:
        self.proc.kill9()

    def stop(self) -> None:
        self.proc.stop()
        self.http.close()

    def __enter__(self) -> BridgeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def bridge_behind_alertmanager(
    tmp: Path,
    smtp: Any = None,
    twilio: Any = None,
    hooks: Any = None,
    route_timings: dict[str, str] | None = None,
    **overrides: Any,
) -> Iterator[tuple[InProcessBridge, AlertmanagerHandle]]:
    """A real Alertmanager with the shipped routes (fast waits unless `route_timings`)
    posting to an in-process bridge that delivers to the given sinks (the standard
    recipients) and silences through that Alertmanager. `overrides`: bridge
    environment (BRIDGE_SMS_BUDGET=3, TRACETRACK_PUBLIC_URL=..., ...)."""
    from tests.support.stack import start_alertmanager
    from tooling import stackconfig

    token = tmp / "bridge_token"
    token.write_text(TOKEN + "\n")
    port = free_port()
    am = start_alertmanager(
        tmp / "am",
        bridge_url=f"http://127.0.0.1:{port}",
        credentials_file=token,
        route_timings=route_timings or stackconfig.FAST_ROUTE_TIMINGS,
    )
    try:
        cfg = write_alert_config(tmp / "alert_config.py", recipients_for(smtp, twilio, hooks))
        env = bridge_env(tmp, cfg, smtp, twilio, hooks, ALERTMANAGER_URL=am.url, **overrides)
        with InProcessBridge(env, port=port) as bridge:
            yield bridge, am
    finally:
        am.proc.stop()


def wait_for(check: Any, timeout: float = 20.0, what: str = "condition") -> None:
    wait_until(check, timeout, what)
