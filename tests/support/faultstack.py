"""The fault suite's stack: every part real, on loopback, on free ports, stopped by PID.

PostgreSQL (its own, so it can be stopped and frozen), redis-server, the app (two
workers), the exporter (probing the app's readiness), the alert bridge (its SQLite
outbox on a small tmpfs, delivering to SMTP, Twilio and webhook sinks), Alertmanager
(the shipped routes and inhibitions) and Prometheus (the shipped rules), both with the
fast test configuration (1 s scrapes and evaluations, the shipped `for:` / 10, 1 s
group waits).
A `Load` keeps lookups, searches and scans (with Idempotency-Keys) going throughout.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml

from alert_bridge.config import load_config
from alert_bridge.native_route import RECEIVER, native_receiver
from common import metric_names as m
from common import topology
from tests.support.appkit import PASSWORD, add_user, start_app_process
from tests.support.bridgekit import (
    TOKEN,
    BridgeProcess,
    bridge_env,
    recipients_for,
    settings_from_env,
    write_alert_config,
)
from tests.support.exporterkit import samples, start_exporter_process
from tests.support.faults import SmallDisk, retry_scan
from tests.support.sinks import Mail, SmtpSink, TwilioSink, WebhookSink
from tests.support.stack import (
    AlertmanagerHandle,
    PrometheusHandle,
    start_alertmanager,
    start_prometheus,
)
from tooling import cause_rules, stackconfig
from tooling.fault_catalog import FAULTS
from tooling.pgserver import PostgresServer
from tooling.procs import ManagedProcess, free_port, http_ok, port_open, start_redis, wait_until

# TRACETRACK_FAULT_CONFIG=shipped runs the suite on the shipped timings instead (10 s
# scrapes and evaluations, the shipped `for:`, group waits and dead man's switch):
# minutes per fault, for bench/faults.py's figures, not for `make test`.
SHIPPED = os.environ.get("TRACETRACK_FAULT_CONFIG", "fast") == "shipped"
# How much longer every wait of the suite may take in that configuration.
PATIENCE = 6 if SHIPPED else 1

# The fast test configuration of the dead man's switch: Alertmanager repeats the
# Watchdog every 2 s; after 4 s without one the bridge probes Prometheus and
# Alertmanager (and pages at once naming one that is down), after 8 s it pages anyway.
WATCHDOG_TIMINGS = {"group_wait": "0s", "group_interval": "1s", "repeat_interval": "2s"}
WATCHDOG_TIMEOUT_SECONDS = 8
BAGS = 30
# How long every part must have looked healthy before the next fault starts.
SETTLED_SECONDS = 5.0
# Alerts that say nothing about a fault: the host is busy (CI, or the CPU hogs the
# suite is run beside), and the heartbeat that always fires.
BACKGROUND_ALERTS = frozenset({"Watchdog", "TraceTrackCPUUsageHigh"})
# What a fault of the catalogue pages, the symptoms its page explains, and the alerts
# about the alerting path itself: none may be pending or firing, at any severity, when
# the next fault starts. (Not the error budget's slow-window warning tickets after the
# PostgreSQL faults: this stack's whole history is minutes long, so seconds of 5xx are
# days' worth of budget, and those windows hold them for the rest of the run.)
FAULT_ALERTS = frozenset(
    {f.page for f in FAULTS if f.page is not None and not f.dms}
    | {name for explained in cause_rules.CAUSES.values() for name in explained}
    | {"AlertmanagerNotificationsFailing", "TraceTrackNotificationDeliveryFailing"}
)
CRITICAL_EMAIL = "oncall@example.com"
WARNING_EMAIL = "lead@example.com"


@dataclass
class Request:
    at: float  # when it was sent
    kind: str  # lookup | search | scan
    outcome: str  # the status code, or "timeout" / "connection"


@dataclass
class Load:
    """Users working through the whole suite: cached lookups, searches, scans."""

    base_url: str
    headers: dict[str, str]
    threads: int = 3
    pause: float = 0.1
    timeout: float = 15.0
    requests: list[Request] = field(default_factory=list)
    unanswered_scans: dict[str, dict[str, str]] = field(default_factory=dict)
    answered_scans: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        for n in range(self.threads):
            t = threading.Thread(target=self._run, args=(n,), name=f"load-{n}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout + 5)

    def _run(self, n: int) -> None:
        rng = random.Random(n)
        with httpx.Client(base_url=self.base_url, headers=self.headers, timeout=self.timeout) as c:
            while not self._stop.is_set():
                kind = rng.choice(("lookup", "lookup", "search", "scan"))
                # Lookups and scans on separate halves of the bags: a scan drops its bag
                # from the cache, and on shared bags half the lookups would miss (a
                # steady 2/3 hit rate, under TraceTrackCacheHitRateLow's 70 %: a warning
                # firing throughout that is also a symptom the Redis fault must mute).
                bag = rng.randrange(BAGS // 2) + (BAGS // 2 if kind == "scan" else 0)
                key = str(uuid.uuid4())
                sent = time.time()
                # One location per bag: a bag "teleporting" is a suspicious scan.
                body = {"qr_id": f"F{bag}", "location": f"hub-{bag % 3}"}
                try:
                    if kind == "lookup":
                        r = c.get(f"/api/bags/F{bag}")
                    elif kind == "search":
                        r = c.get("/api/bags", params={"q": "F1", "limit": 5})
                    else:
                        r = c.post("/api/scans", json=body, headers={"Idempotency-Key": key})
                    outcome = str(r.status_code)
                except httpx.TimeoutException:
                    outcome = "timeout"
                except httpx.TransportError:
                    outcome = "connection"
                with self._lock:
                    self.requests.append(Request(sent, kind, outcome))
                    if kind == "scan":
                        if outcome == "201":
                            self.answered_scans[key] = r.json()["id"]
                        else:
                            self.unanswered_scans[key] = body
                self._stop.wait(self.pause)

    def between(self, start: float, end: float) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if start <= r.at <= end]

    def retry_unanswered(self, patience: float = 90) -> None:
        """What a careful client does: retry each scan it did not see succeed, same key,
        following Retry-After on a 503 (a busy host may still miss a deadline) until a
        deadline."""
        deadline = time.monotonic() + patience
        with httpx.Client(base_url=self.base_url, headers=self.headers, timeout=30) as c:
            for key, body in list(self.unanswered_scans.items()):
                r = retry_scan(c, key, body, deadline)
                assert r.status_code == 201, r.text
                self.answered_scans[key] = r.json()["id"]
                del self.unanswered_scans[key]


def impact(requests: list[Request]) -> dict[str, int]:
    out = {"requests": len(requests), "5xx": 0, "timeouts": 0, "connection errors": 0}
    for r in requests:
        if r.outcome.startswith("5"):
            out["5xx"] += 1
        elif r.outcome == "timeout":
            out["timeouts"] += 1
        elif r.outcome == "connection":
            out["connection errors"] += 1
    return out


@dataclass
class FaultStack:
    workdir: Path
    pg: PostgresServer
    database_url: str
    redis: ManagedProcess
    redis_port: int
    app: ManagedProcess
    app_port: int
    exporter: ManagedProcess
    exporter_port: int
    bridge: BridgeProcess
    alertmanager: AlertmanagerHandle
    prometheus: PrometheusHandle
    smtp: SmtpSink
    twilio: TwilioSink
    hooks: WebhookSink
    disk: SmallDisk
    load: Load | None = None

    @property
    def app_url(self) -> str:
        return f"http://127.0.0.1:{self.app_port}"

    # --- restarting what a fault stopped -------------------------------------------
    def restart_redis(self) -> None:
        self.redis.start().wait_ready(lambda: port_open(self.redis_port), timeout=15)

    def restart_exporter(self) -> None:
        url = f"http://127.0.0.1:{self.exporter_port}/metrics"
        self.exporter.start().wait_ready(http_ok(url), timeout=60)

    def restart_bridge(self) -> None:
        self.bridge.proc.start().wait_ready(http_ok(f"{self.bridge.url}/healthz"), timeout=60)

    def restart_prometheus(self) -> None:
        self.prometheus.proc.start().wait_ready(
            http_ok(f"{self.prometheus.url}/-/ready"), timeout=60
        )

    def app_workers(self) -> list[psutil.Process]:
        """The uvicorn worker processes (children of the app's master)."""
        master = psutil.Process(self.app.pid)
        return [
            c
            for c in master.children(recursive=True)
            if c.status() != psutil.STATUS_ZOMBIE and "spawn_main" in " ".join(c.cmdline())
        ]

    def db_timeouts(self) -> float:
        """The app's tracetrack_db_timeouts_total, every kind and worker summed."""
        text = httpx.get(f"{self.app_url}/metrics", timeout=10).text
        return sum(v for (name, _), v in samples(text).items() if name == m.DB_TIMEOUTS)

    def unsettled_alerts(self) -> list[str]:
        """Alerts pending or firing in Prometheus that a fault could have left behind:
        any critical one, and the faults' own pages and symptoms (BACKGROUND_ALERTS
        aside)."""
        out = []
        for a in self.prometheus.alerts():
            name, severity = a["labels"]["alertname"], a["labels"].get("severity")
            if a["state"] not in ("pending", "firing") or name in BACKGROUND_ALERTS:
                continue
            if severity == "critical" or (
                name in FAULT_ALERTS
                and not (name == "TraceTrackErrorBudgetBurn" and severity == "warning")
            ):
                out.append(f"{name} {severity} {a['state']}")
        return sorted(out)

    def settle(self, timeout: float = 120) -> None:
        """Until the stack has been whole for SETTLED_SECONDS, so that the next fault
        starts from nothing left over by the last one (a page, or a worker still
        failing fast, would be counted against it): every client request answered below
        500 in time and no database timeout in any app worker meanwhile, no alert of
        `unsettled_alerts` pending or firing, the bridge's outbox drained."""
        assert self.load is not None
        load = self.load
        calm_since = time.time()
        timeouts = self.db_timeouts()
        problems: list[str] = []

        def look(now: float) -> list[str]:
            nonlocal timeouts
            recent = load.between(now - SETTLED_SECONDS, now)
            bad = [r.outcome for r in recent if not r.outcome.isdigit() or int(r.outcome) >= 500]
            seen, counts = self.db_timeouts(), self.bridge.counts()
            found = self.unsettled_alerts()
            if len(recent) < 10:
                found.append(f"only {len(recent)} client requests in {SETTLED_SECONDS:g}s")
            if bad:
                found.append(f"client requests {bad}")
            if seen != timeouts:
                found.append(f"{seen - timeouts:g} database timeouts")
            if counts.get("pending", 0) or counts.get("sending", 0):
                found.append(f"bridge outbox {counts}")
            timeouts = seen
            return found

        def settled() -> bool:
            nonlocal calm_since
            now = time.time()
            try:
                problems[:] = look(now)
            except Exception as exc:  # noqa: BLE001 - a part not answering is not settled
                problems[:] = [f"{type(exc).__name__}: {exc}"]
            if problems:
                calm_since = now
                return False
            return now - calm_since >= SETTLED_SECONDS

        try:
            wait_until(settled, timeout * PATIENCE, "the stack to settle", interval=0.5)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}; still: {problems}") from None

    # --- what arrives ----------------------------------------------------------------
    def mails(self, to: str, since: float, *words: str) -> list[Mail]:
        return [
            m
            for m in self.smtp.messages(to)
            if m.at >= since and all(w in str(m.message["Subject"]) for w in words)
        ]

    def wait_mail(self, to: str, since: float, *words: str, timeout: float = 90) -> Mail:
        wait_until(
            lambda: bool(self.mails(to, since, *words)),
            timeout * PATIENCE,
            f"an email to {to} with {words} (got {self.subjects(since)})",
            interval=0.2,
        )
        return self.mails(to, since, *words)[0]

    def subjects(self, since: float = 0.0) -> list[str]:
        return [str(m.message["Subject"]) for m in self.smtp.messages() if m.at >= since]

    def firing(self, **labels: str) -> list[dict[str, Any]]:
        """Alerts Prometheus holds as firing, filtered by labels."""
        return [
            a
            for a in self.prometheus.alerts()
            if a["state"] == "firing" and all(a["labels"].get(k) == v for k, v in labels.items())
        ]

    def stop(self) -> None:
        if self.load is not None:
            self.load.stop()
        for proc in (
            self.prometheus.proc,
            self.alertmanager.proc,
            self.bridge.proc,
            self.exporter,
            self.app,
            self.redis,
        ):
            proc.stop()
        self.pg.stop()


@contextmanager
def fault_stack(workdir: Path) -> Iterator[FaultStack]:
    """Start everything, yield it with the load running, stop everything."""
    workdir.mkdir(parents=True, exist_ok=True)
    started: list[Callable[[], None]] = []
    smtp, twilio, hooks = SmtpSink().start(), TwilioSink().start(), WebhookSink().start()
    started += [smtp.stop, twilio.stop, hooks.stop]
    disk = SmallDisk(workdir / "outbox", size_bytes=16 * 1024 * 1024)
    try:
        disk.mount()
        started.append(disk.unmount)
        pg = PostgresServer(workdir / "pg" / "data").start()
        started.append(pg.stop)
        database_url = pg.create_database("tracetrack")
        redis, redis_port = start_redis(workdir / "redis")
        started.append(redis.stop)
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        add_user(database_url, "dana", "dispatcher")
        app, app_port = start_app_process(
            workdir / "app",
            database_url,
            workers=2,
            env={"REDIS_URL": redis_url, "DB_CONNECT_TIMEOUT_SECONDS": "2"},
        )
        started.append(app.stop)
        exporter, exporter_port = start_exporter_process(
            workdir / "exporter",
            database_url,
            redis_url=redis_url,
            env={"TRACETRACK_EXPORTER_APP_URLS": f"http://127.0.0.1:{app_port}"},
        )
        started.append(exporter.stop)

        config = write_alert_config(
            workdir / "alert_config.py", recipients_for(smtp, twilio, hooks)
        )
        env = bridge_env(
            workdir / "bridge",
            config,
            smtp,
            twilio,
            hooks,
            BRIDGE_DATABASE_URL=f"sqlite:///{disk.path / 'bridge.sqlite3'}",
            **(
                {}
                if SHIPPED
                else {
                    "BRIDGE_WATCHDOG_TIMEOUT_SECONDS": WATCHDOG_TIMEOUT_SECONDS,
                    "BRIDGE_WATCHDOG_PROBE_AFTER_SECONDS": WATCHDOG_TIMEOUT_SECONDS / 2,
                    "BRIDGE_WATCHDOG_CHECK_INTERVAL_SECONDS": 0.5,
                }
            ),
            # Every page's SMS is checked here; the per-phone storm budget has its own tests.
            BRIDGE_SMS_BUDGET=1000,
        )
        am_port, prom_port = free_port(), free_port()
        env["PROMETHEUS_URL"] = f"http://127.0.0.1:{prom_port}"
        env["ALERTMANAGER_URL"] = f"http://127.0.0.1:{am_port}"
        bridge = BridgeProcess(env, workdir / "bridge.log").start()
        started.append(bridge.stop)
        token = workdir / "bridge_token"
        token.write_text(TOKEN + "\n")
        # The shipped routes, with Alertmanager's own receivers for a dead bridge.
        native = native_receiver(load_config(config), settings_from_env(env), workdir / "secrets")
        am = start_alertmanager(
            workdir / "alertmanager",
            config_text=stackconfig.render_alertmanager_config(
                bridge_url=bridge.url,
                credentials_file=token,
                route_timings=None if SHIPPED else stackconfig.FAST_ROUTE_TIMINGS,
                watchdog_timings=None if SHIPPED else WATCHDOG_TIMINGS,
                native_receivers={RECEIVER: native},
            ),
            port=am_port,
        )
        started.append(am.proc.stop)
        rules = scaled_rules(workdir / "rules.yml", 1 if SHIPPED else FOR_SCALE)
        interval = SHIPPED_INTERVAL if SHIPPED else stackconfig.FAST_SCRAPE_INTERVAL
        prom = start_prometheus(
            workdir / "prometheus",
            targets=stackconfig.targets_for(
                app_port=app_port,
                exporter_port=exporter_port,
                bridge_port=bridge.port,
                alertmanager_port=am.port,
                prometheus_port=prom_port,
            ),
            rule_files=[rules],
            alertmanager=am,
            port=prom_port,
            scrape_interval=interval,
            evaluation_interval=interval,
        )
        started.append(prom.proc.stop)
        stack = FaultStack(
            workdir,
            pg,
            database_url,
            redis,
            redis_port,
            app,
            app_port,
            exporter,
            exporter_port,
            bridge,
            am,
            prom,
            smtp,
            twilio,
            hooks,
            disk,
        )
        headers = _seed(stack.app_url)
        prom.wait_targets_up(topology.JOBS, timeout=60 * PATIENCE)
        stack.load = Load(stack.app_url, headers).start()
        started.append(stack.load.stop)
        yield stack
    finally:
        for stop in reversed(started):
            try:
                stop()
            except Exception:  # noqa: BLE001 - stop the rest anyway
                pass


# The shipped `for:` windows divided by this (at least 1 s): fast, yet in the shipped
# order, so that a cause fires before the symptoms it mutes, as it does in production
# (a uniform `for: 1s` would race them), and a few scrapes long, so that one scrape
# missing its 1 s deadline on a busy machine pages nobody.
FOR_SCALE = 10
SHIPPED_INTERVAL = "10s"  # prometheus/prometheus.yml's scrape and evaluation interval


def scaled_rules(path: Path, scale: float = FOR_SCALE) -> Path:
    doc = yaml.safe_load(stackconfig.render_rules())
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                seconds = stackconfig.duration_seconds(rule["for"]) / scale
                rule["for"] = f"{max(1, round(seconds))}s"
    path.write_text(yaml.safe_dump(doc, sort_keys=False, width=1000))
    return path


def _seed(app_url: str) -> dict[str, str]:
    with httpx.Client(base_url=app_url, timeout=30) as c:
        r = c.post("/api/auth/login", json={"username": "dana", "password": PASSWORD})
        assert r.status_code == 200, r.text
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        bags = [{"qr_id": f"F{i}", "bag_type": "parent", "location": "dock"} for i in range(BAGS)]
        r = c.post("/api/bags/bulk", json={"bags": bags}, headers=headers)
        assert r.status_code == 201, r.text
    return headers


def timings_file() -> Path | None:
    """Where the suite appends its measurements (bench/faults.py sets it)."""
    path = os.environ.get("TRACETRACK_FAULT_TIMINGS")
    return Path(path) if path else None
