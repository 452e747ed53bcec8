"""`tracetrack up`: the whole stack locally, in the foreground, until Ctrl-C.

Starts what is missing (the embedded PostgreSQL, a redis-server) and every service
on its default port, prints the URLs, and keeps them running: a service that dies is
restarted with a backoff and a line saying so, the others keep serving (so you can
kill a part and watch the monitoring page about it and resolve; see
tooling/supervise.py). Ctrl-C or SIGTERM stops everything it started, by PID.
State lives under ./var/.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from common.cliargs import int_range
from tooling.procs import TRACETRACK, ManagedProcess, http_ok, port_open, redis_process
from tooling.supervise import Supervisor


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("up", help="run the whole stack locally (Ctrl-C stops it)")
    p.add_argument("--workers", type=int_range(1, 256), default=2, help="app worker processes")
    p.set_defaults(func=run)


class Stack:
    def __init__(self, var_dir: Path) -> None:
        self.var_dir = var_dir
        self.logs = var_dir / "logs"
        self.supervisor = Supervisor(sys.stdout)
        self.urls: list[tuple[str, str]] = []

    def start(
        self,
        proc: ManagedProcess,
        ready_url: str | None,
        title: str,
        url: str | None = None,
        timeout: float = 60,
    ) -> None:
        self.supervisor.add(proc.start())
        if ready_url:
            proc.wait_ready(http_ok(ready_url), timeout=timeout)
        if url:
            self.urls.append((title, url))

    def stop(self) -> None:
        self.supervisor.stop()

    def watch(self) -> None:
        while True:
            self.supervisor.check()
            time.sleep(0.5)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    from common.pgserver import embedded_datadir, resolve_database_url
    from common.settings import Settings

    settings = Settings()
    var_dir = settings.resolved_var_dir()
    stack = Stack(var_dir)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the stack like Ctrl-C does
    # Ctrl-C too, explicitly: Python leaves SIGINT ignored when it started ignored (a
    # shell's background job, nohup, a CI runner), and then Ctrl-C or `kill -INT` would
    # stop nothing.
    signal.signal(signal.SIGINT, _interrupt)
    try:
        database_url = resolve_database_url(settings.database_url, var_dir)
        if not settings.database_url:
            # The embedded server is a daemon: stopped at our exit, or by this guardian
            # if we are killed before our exit handlers run.
            from tooling.pg_guardian import guard

            guard(embedded_datadir(var_dir))
        host = settings.host
        env = {
            "DATABASE_URL": database_url,
            "TRACETRACK_VAR_DIR": str(var_dir),
            # /analytics proxies these; they start after the app, on these ports.
            "PROMETHEUS_URL": f"http://{host}:{settings.prometheus_port}",
            "ALERTMANAGER_URL": f"http://{host}:{settings.alertmanager_port}",
        }
        _start_redis(stack, settings, env)
        app_url = f"http://{host}:{settings.app_port}"
        stack.start(
            ManagedProcess(
                "app",
                [TRACETRACK, "app", "--workers", str(args.workers)],
                stack.logs / "app.log",
                env=env,
            ),
            f"{app_url}/healthz",
            "App",
            app_url,
            timeout=120,
        )
        stack.urls.append(("Analytics", f"{app_url}/analytics/dashboard"))
        _start_monitoring(stack, settings, env)
        print("\nTraceTrack Monitor is up:")
        for title, url in stack.urls:
            print(f"  {title:<13} {url}")
        print(f"Logs in {stack.logs}. Ctrl-C stops everything.", flush=True)
        stack.watch()
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
    except (RuntimeError, TimeoutError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        stack.stop()
    return 0


def _start_redis(stack: Stack, settings, env: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    if settings.redis_url:
        env["REDIS_URL"] = settings.redis_url
        return
    if shutil.which("redis-server") is None:
        print("redis-server not installed: the app uses its in-process cache", flush=True)
        return
    port = settings.local_redis_port
    if port_open(port):
        print(f"port {port} busy: using the Redis already there", flush=True)
    else:
        proc = redis_process(stack.var_dir / "redis", port)
        stack.supervisor.add(proc.start())
        proc.wait_ready(lambda: port_open(port), timeout=15)
    env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    stack.urls.append(("Redis", env["REDIS_URL"]))


def _start_monitoring(stack: Stack, settings, env: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    """The exporter, the bridge, Alertmanager (routing to the bridge) and Prometheus
    (scraping everything, loading the rules, pointing at Alertmanager)."""
    from alert_bridge.settings import BridgeSettings, ensure_token_file
    from tooling import stackconfig
    from tooling.procs import alertmanager_process, prometheus_process

    host, var = settings.host, stack.var_dir
    exe = TRACETRACK
    url = f"http://{host}:{settings.exporter_port}"
    # The exporter probes the app's readiness (tracetrack_app_ready, TraceTrackAppNotReady).
    exporter_env = {**env, "TRACETRACK_EXPORTER_APP_URLS": f"http://{host}:{settings.app_port}"}
    stack.start(
        ManagedProcess(
            "exporter", [exe, "exporter"], stack.logs / "exporter.log", env=exporter_env
        ),
        f"{url}/metrics",
        "Exporter",
        f"{url}/metrics",
    )

    bridge_url = f"http://{host}:{settings.bridge_port}"
    token_file = ensure_token_file(BridgeSettings())
    stack.start(
        ManagedProcess("bridge", [exe, "bridge"], stack.logs / "bridge.log", env=env),
        f"{bridge_url}/healthz",
        "Alert bridge",
        bridge_url,
    )

    # Links in alerts and notifications must open on a phone: Prometheus and
    # Alertmanager build theirs from --web.external-url, the rules' runbook and
    # dashboard links are rendered with the public bridge and Grafana addresses.
    external = settings.external_urls()
    am_url = f"http://{host}:{settings.alertmanager_port}"
    am_config = stackconfig.write_alertmanager_config(
        var / "alertmanager" / "alertmanager.yml",
        bridge_url=bridge_url,
        credentials_file=token_file,
        native_receivers=_bridge_down_receiver(var),
    )
    stack.start(
        alertmanager_process(
            am_config,
            var / "alertmanager",
            settings.alertmanager_port,
            stackconfig.external_url_args(external["alertmanager"]),
            host=host,
        ),
        f"{am_url}/-/ready",
        "Alertmanager",
        am_url,
    )

    prom_url = f"http://{host}:{settings.prometheus_port}"
    rules = stackconfig.write_rules(
        var / "prometheus" / "rules.yml",
        public_url=BridgeSettings().public_url(settings.bridge_port),
        grafana_url=external["grafana"],
    )
    prom_config = stackconfig.write_prometheus_config(
        var / "prometheus" / "prometheus.yml",
        targets=stackconfig.targets_for_settings(settings),
        alertmanagers=[f"{host}:{settings.alertmanager_port}"],
        rule_files=[rules],
    )
    stack.start(
        prometheus_process(
            prom_config,
            var / "prometheus",
            settings.prometheus_port,
            stackconfig.external_url_args(external["prometheus"]),
            host=host,
        ),
        f"{prom_url}/-/ready",
        "Prometheus",
        prom_url,
    )
    _report_prometheus(prom_url)
    _start_reporter(stack, env)


def _start_reporter(stack: Stack, env: dict[str, str]) -> None:
    """The daily/weekly reports (08:00, Monday 08:00): reads Prometheus and the bridge's
    store under var/, writes var/reports/; `tracetrack report daily` renders one now."""
    stack.start(
        ManagedProcess("reporter", [TRACETRACK, "reporter"], stack.logs / "reporter.log", env=env),
        None,
        "Reports",
        str(stack.var_dir / "reports"),
    )


def _bridge_down_receiver(var: Path) -> dict[str, dict[str, Any]]:
    """Alertmanager's own receivers for `TraceTrackAlertBridgeDown`, from alert_config.py."""
    from alert_bridge.config import load_config
    from alert_bridge.native_route import RECEIVER, native_receiver
    from alert_bridge.settings import BridgeSettings

    settings = BridgeSettings()
    config = load_config(settings.alert_config_file)
    return {RECEIVER: native_receiver(config, settings, var / "alertmanager" / "secrets")}


def _report_prometheus(prom_url: str) -> None:
    """Say what an SRE checks first: rules loaded, Alertmanager connected."""
    import httpx

    from tooling.procs import wait_until

    def connected() -> bool:
        r = httpx.get(f"{prom_url}/api/v1/alertmanagers", timeout=2).json()
        return bool(r["data"]["activeAlertmanagers"])

    try:
        wait_until(connected, 30, "Prometheus to discover Alertmanager")
        groups = httpx.get(f"{prom_url}/api/v1/rules", timeout=2).json()["data"]["groups"]
        rules = sum(len(g["rules"]) for g in groups)
        print(
            f"Prometheus: {rules} rules in {len(groups)} groups loaded, Alertmanager connected",
            flush=True,
        )
    except (TimeoutError, httpx.HTTPError, KeyError) as exc:
        print(f"warning: could not confirm Prometheus' rules/Alertmanager: {exc}", flush=True)
