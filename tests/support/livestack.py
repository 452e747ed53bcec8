"""A live monitoring stack for the dashboard and /analytics tests.

The real app and exporter (and, when asked, the alert bridge) run as subprocesses;
a real Prometheus scrapes them every second and a real Alertmanager holds alerts.
Everything listens on free ports under one temp dir and is stopped by PID.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from common import topology
from tests.support.appkit import add_user, auth, start_app_process, token
from tests.support.exporterkit import start_exporter_process
from tests.support.stack import start_alertmanager, start_prometheus
from tooling import stackconfig
from tooling.procs import ManagedProcess, free_port, wait_until

ALERTMANAGER_CONFIG = {
    # Alerts only need to be held and listed; nobody is notified.
    "route": {
        "receiver": "nobody",
        "group_wait": "1s",
        "group_interval": "1s",
        "repeat_interval": "1h",
    },
    "receivers": [{"name": "nobody"}],
}


@dataclass
class LiveStack:
    workdir: Path
    database_url: str
    app_url: str
    exporter_url: str
    prometheus_url: str
    alertmanager_url: str
    admin_token: str
    bridge: Any = None
    procs: dict[str, ManagedProcess] = field(default_factory=dict)

    def query(self, promql: str) -> list[dict[str, Any]]:
        r = httpx.post(f"{self.prometheus_url}/api/v1/query", data={"query": promql}, timeout=10)
        body = r.json()
        assert r.status_code == 200 and body["status"] == "success", f"{promql}: {body}"
        return list(body["data"]["result"])

    def wait_scraped(self, job: str, timeout: float = 60) -> None:
        """Until Prometheus has scraped `job` after this call: what happened before it
        is in Prometheus. (The `up` sample of a scrape carries the scrape's start time.)"""
        now = time.time()

        def scraped() -> bool:
            return any(
                float(s["value"][1]) > now for s in self.query(f'timestamp(up{{job="{job}"}})')
            )

        wait_until(scraped, timeout, f"a scrape of {job}", interval=0.2)

    def post_alert(self, alertname: str, severity: str, summary: str, **labels: str) -> None:
        """Fire an alert in Alertmanager through its v2 API, as Prometheus would."""
        alert = {
            "labels": {"alertname": alertname, "severity": severity, **labels},
            "annotations": {"summary": summary},
            "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        r = httpx.post(f"{self.alertmanager_url}/api/v2/alerts", json=[alert], timeout=10)
        assert r.status_code == 200, r.text

    def stop(self) -> None:
        if self.bridge is not None:
            self.bridge.stop()
        for proc in reversed(list(self.procs.values())):
            proc.stop()


def start_live_stack(
    workdir: Path,
    database_url: str,
    *,
    with_bridge: bool = False,
    rule_files: list[str] | None = None,
    app_env: dict[str, str] | None = None,
) -> LiveStack:
    workdir.mkdir(parents=True, exist_ok=True)
    add_user(database_url, "admin", "admin")
    add_user(database_url, "dispatcher", "dispatcher")
    procs: dict[str, ManagedProcess] = {}
    bridge = None
    try:
        am = start_alertmanager(
            workdir / "alertmanager", config_text=yaml.safe_dump(ALERTMANAGER_CONFIG)
        )
        procs["alertmanager"], am_url = am.proc, am.url
        prom_port = free_port()
        prom_url = f"http://127.0.0.1:{prom_port}"
        procs["app"], app_port = start_app_process(
            workdir,
            database_url,
            env={
                "PROMETHEUS_URL": prom_url,
                "ALERTMANAGER_URL": am_url,
                "GRAFANA_URL": "",
                **(app_env or {}),
            },
        )
        procs["exporter"], exporter_port = start_exporter_process(workdir, database_url)
        targets = {
            topology.APP_JOB: [f"127.0.0.1:{app_port}"],
            topology.EXPORTER_JOB: [f"127.0.0.1:{exporter_port}"],
        }
        if with_bridge:
            bridge = start_bridge(workdir)
            targets[topology.BRIDGE_JOB] = [f"127.0.0.1:{bridge.port}"]
        if rule_files is None:
            # /analytics and the dashboards read the recorded series; the tests post
            # their own alerts, so the shipped alerts stay out.
            rules = stackconfig.write_rules(workdir / "recordings.yml", recordings_only=True)
            rule_files = [str(rules)]
        # The shipped prometheus.yml (tooling.stackconfig) on these ports, scraping every second.
        prom = start_prometheus(
            workdir / "prometheus",
            targets=targets,
            rule_files=[Path(f) for f in rule_files],
            alertmanager=am,
            port=prom_port,
        )
        procs["prometheus"] = prom.proc
        with httpx.Client(base_url=f"http://127.0.0.1:{app_port}", timeout=30) as client:
            admin = token(client, "admin")
        stack = LiveStack(
            workdir,
            database_url,
            f"http://127.0.0.1:{app_port}",
            f"http://127.0.0.1:{exporter_port}",
            prom_url,
            am_url,
            admin,
            bridge,
            procs,
        )
        wait_until(
            lambda: len(stack.query("up == 1")) == len(targets),
            30,
            "Prometheus to scrape every target",
        )
        return stack
    except BaseException:
        if bridge is not None:
            bridge.stop()
        for proc in reversed(list(procs.values())):
            proc.stop()
        raise


def start_bridge(workdir: Path) -> Any:
    from tests.support.bridgekit import (
        BridgeProcess,
        bridge_env,
        recipients_for,
        write_alert_config,
    )

    config = write_alert_config(workdir / "alert_config.py", recipients_for())
    env = bridge_env(workdir / "bridge", config)
    return BridgeProcess(env, workdir / "bridge.log").start()


def drive_traffic(stack: LiveStack, bags: int = 20, rounds: int = 2) -> None:
    """What users do: create bags, look them up (cache misses, then hits), search,
    scan, bill; plus a 404. Everything the dashboards show gets a value.

    In `rounds` with a scrape of the app between them: a series Prometheus first sees
    at its final value has no rate, and real traffic is not over within one scrape
    interval either.
    Each round scans 5 bags and creates 1 bill.
    """
    run = f"{time.time_ns() % 10**9}"
    qr_ids = [f"LIVE{run}-{i}" for i in range(bags)]
    with httpx.Client(
        base_url=stack.app_url, headers=auth(stack.admin_token), timeout=30
    ) as client:
        r = client.post(
            "/api/bags/bulk",
            json={
                "bags": [{"qr_id": qr, "bag_type": "child", "location": "dock-1"} for qr in qr_ids]
            },
        )
        assert r.status_code in (200, 201), r.text
        for n in range(rounds):
            if n:
                stack.wait_scraped(topology.APP_JOB)
            for _ in range(3):
                for qr in qr_ids:
                    assert client.get(f"/api/bags/{qr}").status_code == 200
            assert client.get("/api/bags", params={"q": f"LIVE{run}"}).status_code == 200
            for qr in qr_ids[5 * n : 5 * n + 5]:
                r = client.post("/api/scans", json={"qr_id": qr, "location": "hub-7"})
                assert r.status_code in (200, 201), r.text
            r = client.post(
                "/api/bills",
                json={"bill_number": f"B{run}-{n}", "bag_qr_ids": qr_ids[3 * n : 3 * n + 3]},
            )
            assert r.status_code in (200, 201), r.text
            assert client.get("/api/bags/NO-SUCH-BAG").status_code == 404
