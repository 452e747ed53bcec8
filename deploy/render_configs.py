"""Render the configuration files docker-compose.yml mounts.

    .venv/bin/python deploy/render_configs.py           # rewrite deploy/*/…
    .venv/bin/python deploy/render_configs.py --check   # exit 1 if they are stale

Prometheus and Alertmanager: the shipped prometheus/prometheus.yml and
alertmanager/alertmanager.yml (the single source, via tooling.stackconfig) with the
production topology's addresses (docs/scaling.md): two Prometheus servers (one file,
each naming itself through PROMETHEUS_REPLICA) remote-writing to VictoriaMetrics and
alerting to both Alertmanagers, whose receivers post to both bridges. PgBouncer and
HAProxy: tooling.haconfig, sized by its connection budget. tests/test_compose.py fails
when the committed files differ from this rendering.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import topology
from common.settings import Settings
from tooling import haconfig, stackconfig
from tooling.generated import write_or_check

HERE = Path(__file__).resolve().parent

PROMETHEUS_OUT = HERE / "prometheus" / "prometheus.yml"
ALERTMANAGER_OUT = HERE / "alertmanager" / "alertmanager.yml"
PGBOUNCER_OUT = HERE / "pgbouncer" / "pgbouncer.ini"
HAPROXY_OUT = HERE / "haproxy" / "haproxy.cfg"

# The replicas docker-compose.yml runs; adding one means a service block there and a
# name here (tests/test_compose.py checks both agree).
APP_REPLICAS = ("app-1", "app-2")
BRIDGES = ("bridge-1", "bridge-2")
ALERTMANAGERS = ("alertmanager-1", "alertmanager-2")
PROMETHEUSES = ("prometheus-1", "prometheus-2")

HAPROXY_JOB = "haproxy"
VICTORIAMETRICS_JOB = "victoriametrics"
LB_SERVICE = "loadbalancer"
LB_STATS_PORT = 8404
VICTORIAMETRICS = "victoriametrics:8428"

TARGETS = {
    topology.APP_JOB: [f"{name}:{topology.APP_PORT}" for name in APP_REPLICAS],
    topology.EXPORTER_JOB: [f"exporter:{topology.EXPORTER_PORT}"],
    topology.BRIDGE_JOB: [f"{name}:{topology.BRIDGE_PORT}" for name in BRIDGES],
    topology.ALERTMANAGER_JOB: [f"{name}:{topology.ALERTMANAGER_PORT}" for name in ALERTMANAGERS],
    # Each Prometheus scrapes both: either one sees the other go down.
    topology.PROMETHEUS_JOB: [f"{name}:{topology.PROMETHEUS_PORT}" for name in PROMETHEUSES],
    HAPROXY_JOB: [f"{LB_SERVICE}:{LB_STATS_PORT}"],
    VICTORIAMETRICS_JOB: [VICTORIAMETRICS],
}
RULES_IN_CONTAINER = "/etc/prometheus/rules.yml"
TOKEN_SECRET = "/run/secrets/bridge_auth_token"
# Expanded by Prometheus itself (--enable-feature=expand-external-labels).
REPLICA_FROM_ENV = "${PROMETHEUS_REPLICA}"

# The app's database, as docker-compose.yml names it; PgBouncer listens on 6432.
DB_HOST, DB_PORT, DB_NAME, DB_USER = "postgres", 5432, "tracetrack", "tracetrack"
PGBOUNCER_PORT = 6432
PGBOUNCER_USERLIST = "/run/pgbouncer/userlist.txt"  # written by deploy/pgbouncer/entrypoint.sh
BUDGET = haconfig.ConnectionBudget(app_replicas=len(APP_REPLICAS))


def _header(source: str) -> str:
    return (
        f"# docker-compose.yml's copy of {source}, rendered by\n"
        f"# deploy/render_configs.py: edit the source, then rerun it.\n"
    )


def _body(rendered: str) -> str:
    # The first line names the source, by absolute path for stackconfig: machine-specific.
    return rendered.split("\n", 1)[1]


def render() -> dict[Path, str]:
    prometheus = stackconfig.render_prometheus_config(
        targets=TARGETS,
        alertmanagers=TARGETS[topology.ALERTMANAGER_JOB],
        rule_files=[RULES_IN_CONTAINER],
        external_labels={stackconfig.REPLICA_LABEL: REPLICA_FROM_ENV},
        remote_write=[f"http://{VICTORIAMETRICS}/api/v1/write"],
    )
    alertmanager = stackconfig.render_alertmanager_config(
        bridge_urls=[f"http://{name}:{topology.BRIDGE_PORT}" for name in BRIDGES],
        credentials_file=TOKEN_SECRET,
    )
    pgbouncer = haconfig.render_pgbouncer_ini(
        listen_addr="0.0.0.0",
        listen_port=PGBOUNCER_PORT,
        db_host=DB_HOST,
        db_port=DB_PORT,
        db_name=DB_NAME,
        auth_type="scram-sha-256",
        auth_file=PGBOUNCER_USERLIST,
        stats_users=[DB_USER],
        budget=BUDGET,
        settings=Settings.model_construct(),  # the defaults, whatever this shell exports
        extra={"unix_socket_dir": ""},
    )
    haproxy = haconfig.render_haproxy_cfg(
        bind=f":{topology.APP_PORT}",
        servers={name: f"{name}:{topology.APP_PORT}" for name in APP_REPLICAS},
        stats_bind=f":{LB_STATS_PORT}",
        docker_dns=True,
        # Notification pages and the runbook, where TRACETRACK_PUBLIC_URL sends phones.
        bridges={name: f"{name}:{topology.BRIDGE_PORT}" for name in BRIDGES},
        bridge_bind=f":{topology.BRIDGE_PORT}",
    )
    return {
        PROMETHEUS_OUT: _header("prometheus/prometheus.yml") + _body(prometheus),
        ALERTMANAGER_OUT: _header("alertmanager/alertmanager.yml") + _body(alertmanager),
        PGBOUNCER_OUT: _header("tooling/haconfig.py").replace("#", ";") + _body(pgbouncer),
        HAPROXY_OUT: _header("tooling/haconfig.py") + _body(haproxy),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    return write_or_check(render(), args.check, "deploy/render_configs.py")


if __name__ == "__main__":
    raise SystemExit(main())
