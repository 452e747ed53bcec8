"""`tracetrack up` serves the stack on the embedded database and stops all of it on Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import httpx
import psutil

from common import topology
from tooling.checkout import ROOT
from tooling.procs import TRACETRACK, free_port, spawn, wait_until


def logged(log: Path, line: str) -> bool:
    return line in log.read_text()


def restarted(child: Callable[[str], psutil.Process], name: str, old_pid: int) -> bool:
    return child(name).pid != old_pid


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_up_serves_the_app_on_the_embedded_database_and_stops_everything(tmp_path: Path) -> None:
    ports = {
        name: str(free_port())
        for name in (
            "APP_PORT",
            "EXPORTER_PORT",
            "BRIDGE_PORT",
            "PROMETHEUS_PORT",
            "ALERTMANAGER_PORT",
            "LOCAL_REDIS_PORT",
        )
    }
    public = {
        "TRACETRACK_PUBLIC_URL": "https://oncall.example.com",
        "PROMETHEUS_EXTERNAL_URL": "https://prometheus.example.com",
        "ALERTMANAGER_EXTERNAL_URL": "https://alertmanager.example.com/am",
        "GRAFANA_URL": "https://grafana.example.com",
    }
    env = {**os.environ, **ports, **public, "TRACETRACK_VAR_DIR": str(tmp_path / "var")}
    for var in ("DATABASE_URL", "REDIS_URL"):
        env.pop(var, None)
    log = open(tmp_path / "up.log", "w+")
    proc = spawn(
        [TRACETRACK, "up", "--workers", "1"],
        death_signal=signal.SIGINT,
        # Started as a shell's background job or a CI runner starts it: SIGINT ignored.
        # Ctrl-C (the SIGINT below) must stop it all the same.
        preexec_fn=_ignore_sigint,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    try:
        wait_until(
            lambda: "Ctrl-C stops everything" in (tmp_path / "up.log").read_text(),
            180,
            "tracetrack up to print its URLs",
        )
        out = (tmp_path / "up.log").read_text()
        app_url = f"http://127.0.0.1:{ports['APP_PORT']}"
        assert app_url in out
        # Every URL it prints opens (the app's and the bridge's answered 404 at /).
        printed = re.findall(r"^  [A-Z].*? (http://\S+)$", out, re.M)
        assert len(printed) >= 6, out
        for url in printed:
            assert httpx.get(url, follow_redirects=True).status_code == 200, url
        assert httpx.get(f"{app_url}/readyz").json()["checks"] == {
            "cache": "redis",
            "database": "ok",
        }
        assert "Alertmanager connected" in out
        prom = f"http://127.0.0.1:{ports['PROMETHEUS_PORT']}"
        for title, port in (
            ("Exporter", "EXPORTER_PORT"),
            ("Alert bridge", "BRIDGE_PORT"),
            ("Prometheus", "PROMETHEUS_PORT"),
            ("Alertmanager", "ALERTMANAGER_PORT"),
        ):
            assert f"{title}" in out and f"127.0.0.1:{ports[port]}" in out

        def all_targets_up() -> bool:
            active = httpx.get(f"{prom}/api/v1/targets").json()["data"]["activeTargets"]
            return len(active) == 5 and all(t["health"] == "up" for t in active)

        wait_until(all_targets_up, 60, "every scrape target up", interval=1)

        # Links open where people reach the services, not at 127.0.0.1 or a hostname.
        flags = httpx.get(f"{prom}/api/v1/status/flags").json()["data"]
        assert flags["web.external-url"] == public["PROMETHEUS_EXTERNAL_URL"]
        groups = httpx.get(f"{prom}/api/v1/rules").json()["data"]["groups"]
        annotations = [r["annotations"] for g in groups for r in g["rules"] if "annotations" in r]
        assert annotations and all(
            a["runbook_url"].startswith("https://oncall.example.com/runbook#") for a in annotations
        )
        assert any(
            a.get("dashboard_url", "").startswith("https://grafana.example.com/d/")
            for a in annotations
        )
        am = f"http://127.0.0.1:{ports['ALERTMANAGER_PORT']}"

        def watchdog_links() -> bool:
            alerts = httpx.get(f"{am}/api/v2/alerts").json()
            dog = [a for a in alerts if a["labels"]["alertname"] == "Watchdog"]
            return bool(dog) and dog[0]["generatorURL"].startswith(
                public["PROMETHEUS_EXTERNAL_URL"]
            )

        wait_until(watchdog_links, 60, "the Watchdog in Alertmanager, linking to Prometheus")
        am_proc = [
            c
            for c in psutil.Process(proc.pid).children(recursive=True)
            if "alertmanager" in c.name()
        ]
        assert am_proc and (
            f"--web.external-url={public['ALERTMANAGER_EXTERNAL_URL']}" in am_proc[0].cmdline()
        )

        # An admin sees live values on /analytics (the embedded database is shared).
        exe = TRACETRACK
        subprocess.run(
            [exe, "user", "add", "ops", "--role", "admin", "--password-stdin"],
            input="up-test-password\n",
            text=True,
            env=env,
            check=True,
            capture_output=True,
        )
        tok = httpx.post(
            f"{app_url}/api/auth/login", json={"username": "ops", "password": "up-test-password"}
        ).json()["access_token"]

        def live_values() -> bool:
            r = httpx.get(
                f"{app_url}/analytics/api/metrics/realtime",
                headers={"Authorization": f"Bearer {tok}"},
            )
            assert r.status_code == 200, r.text
            body = r.json()
            return (
                body["system"]["cpu_usage"]["value"] is not None
                and body["business"]["total_bags"]["value"] is not None
            )

        wait_until(live_values, 60, "live values on /analytics", interval=2)

        # Supervision: a killed part is restarted, with a line; the rest keeps serving.
        def child(name: str) -> psutil.Process:
            (p,) = [
                c
                for c in psutil.Process(proc.pid).children()
                if name in " ".join(c.cmdline()) and c.status() != psutil.STATUS_ZOMBIE
            ]
            return p

        for name, line in (
            ("redis-server", "[up] redis-server was killed by SIGKILL"),
            ("exporter", "[up] exporter was killed by SIGKILL"),
        ):
            victim = child(name)
            victim.kill()
            wait_until(partial(logged, tmp_path / "up.log", line), 30, line)
            assert httpx.get(f"{app_url}/healthz").status_code == 200
            wait_until(partial(restarted, child, name, victim.pid), 30, f"{name} restarted")
        assert "[up] redis-server restarted (pid" in (tmp_path / "up.log").read_text()
        wait_until(
            lambda: httpx.get(f"http://127.0.0.1:{ports['EXPORTER_PORT']}/metrics").is_success,
            30,
            "the restarted exporter to answer",
        )
        wait_until(
            lambda: httpx.get(f"{app_url}/readyz").json()["checks"]["cache"] == "redis",
            60,
            "the app back on the restarted Redis",
        )
        assert f"{app_url}/analytics/dashboard" in out

        # A newcomer's first report: today's, from the few minutes of data there are.
        today = time.strftime("%Y-%m-%d", time.gmtime())
        report = subprocess.run(
            [exe, "report", "daily", "--at", today],
            env={**env, "PROMETHEUS_URL": prom},
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert report.returncode == 0, report.stdout + report.stderr
        done = tmp_path / "var" / "reports" / "daily" / today
        assert {p.name for p in done.iterdir()} >= {"report.html", "report.pdf", "report.json"}
        assert "Reports" in out and "reporter" in " ".join(
            " ".join(c.cmdline()) for c in psutil.Process(proc.pid).children(recursive=True)
        )
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children
    finally:
        os.kill(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            # It did not stop within a minute: fail, but leave nothing running behind.
            tree = psutil.Process(proc.pid).children(recursive=True)
            for p in [*tree, psutil.Process(proc.pid)]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    p.kill()
            proc.wait()
            raise

    def survivors() -> list[psutil.Process]:
        return [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]

    try:
        wait_until(lambda: not survivors(), 30, "every child of tracetrack up to be gone")
    except TimeoutError:
        raise AssertionError([c.cmdline() for c in survivors()]) from None
    # The embedded PostgreSQL it started is gone too.
    assert not [
        p
        for p in psutil.process_iter(["cmdline"])
        if str(tmp_path) in " ".join(p.info["cmdline"] or [])
        and "postgres" in " ".join(p.info["cmdline"] or [])
    ]


README_PORTS = {
    "App": topology.APP_PORT,
    "Exporter": topology.EXPORTER_PORT,
    "Alert bridge": topology.BRIDGE_PORT,
    "Prometheus": topology.PROMETHEUS_PORT,
    "Alertmanager": topology.ALERTMANAGER_PORT,
    "Analytics": topology.APP_PORT,
}


def test_the_readme_first_screen_names_make_up_make_test_and_the_right_urls() -> None:
    first_screen = "\n".join((ROOT / "README.md").read_text().splitlines()[:40])
    assert "make up" in first_screen and "make test" in first_screen
    rows = dict(re.findall(r"^\| (.+?) \| (http://127\.0\.0\.1:\d+)\S* ", first_screen, re.M))
    for title, port in README_PORTS.items():
        (url,) = [u for t, u in rows.items() if t.startswith(title)]
        assert url == f"http://127.0.0.1:{port}", (title, url)
