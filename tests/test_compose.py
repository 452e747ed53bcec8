"""docker-compose.yml: valid against the Compose Specification's schema, and consistent
with the repository (mounted files exist, ports and env names match the services'
settings, Prometheus/Alertmanager/Grafana configs point at the right services)."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic_settings import BaseSettings

from alert_bridge.config import load_config
from alert_bridge.settings import BridgeSettings
from app.analytics.settings import AnalyticsSettings
from common.settings import Settings
from exporter.settings import ExporterSettings
from reports.settings import ReportSettings
from tests.support.composefile import (
    COMPOSE_FILE,
    INTERPOLATION,
    REQUIRED_ENV,
    interpolate,
)
from tooling import haconfig, stackconfig
from tooling.checkout import ROOT
from tooling.procs import TRACETRACK

SCHEMA_FILE = ROOT / "tests" / "data" / "compose-spec.json"
OUR_IMAGE = "tracetrack-monitor:latest"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def env_names(*models: type[BaseSettings]) -> set[str]:
    names = set()
    for model in models:
        for name, info in model.model_fields.items():
            alias = info.validation_alias
            names.add((alias if isinstance(alias, str) else name).upper())
    return names


def render_configs_module() -> Any:
    spec = importlib.util.spec_from_file_location(
        "render_configs", ROOT / "deploy/render_configs.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ours(service: dict[str, Any]) -> bool:
    return service.get("image") == OUR_IMAGE


def long_running(service: dict[str, Any]) -> bool:
    """Not a one-shot job (those run to completion: `restart: "no"`)."""
    return service.get("restart") != "no"


def haproxy_frontends() -> dict[str, int]:
    """HAProxy's frontends in the compose config: name -> port."""
    cfg = (ROOT / "deploy/haproxy/haproxy.cfg").read_text()
    return {m[1]: int(m[2]) for m in re.finditer(r"^frontend (\S+)\n    bind :(\d+)", cfg, re.M)}


def listen_ports(service: dict[str, Any]) -> set[int]:
    """Every port a service listens on for clients (HAProxy: each frontend's)."""
    if service.get("image", "").split(":")[0] == "haproxy":
        return set(haproxy_frontends().values())
    return {listen_port(service)}


def listen_port(service: dict[str, Any]) -> int:
    """The port a service's process listens on, read from its command or config."""
    command = [str(c) for c in service.get("command", [])]
    if "--port" in command:
        return int(command[command.index("--port") + 1])
    for arg in command:
        if arg.startswith(("--web.listen-address=", "-httpListenAddr=")):
            return int(arg.rsplit(":", 1)[1])
    image = service["image"].split(":")[0]
    if image == "haproxy":
        return haproxy_frontends()["app"]
    if image == "tracetrack-pgbouncer":
        ini = (ROOT / "deploy/pgbouncer/pgbouncer.ini").read_text()
        return int(re.search(r"^listen_port = (\d+)", ini, re.M)[1])  # type: ignore[index]
    known = {"postgres": 5432, "redis": 6379, "grafana/grafana": 3000}
    return known[image]


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            out.append((source, target))
    return out


# --- the Compose Specification ------------------------------------------------------------


def test_compose_file_is_valid_against_the_compose_spec(compose, validator) -> None:
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(compose)
    ]
    assert not errors, "\n".join(errors)
    interpolated = interpolate(compose, REQUIRED_ENV)
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(interpolated)
    ]
    assert not errors, "\n".join(errors)


def test_the_schema_check_catches_mistakes(compose, validator) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["app-1"]["depends_on"]["redis"]["condition"] = "service_healty"
    broken["services"]["grafana"]["healthcheck"]["retrys"] = 3
    messages = " ".join(e.message for e in validator.iter_errors(broken))
    assert "service_healty" in messages and "retrys" in messages


def test_secrets_are_required_from_the_environment_not_written_in_the_file(compose) -> None:
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD"):
        interpolate(compose, {k: v for k, v in REQUIRED_ENV.items() if k != "POSTGRES_PASSWORD"})
    secretish = re.compile(r"PASSWORD|TOKEN|SECRET|_KEY$")
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if not secretish.search(key):
                continue
            value = str(value)
            assert (key.endswith("_FILE") and value.startswith("/run/secrets/")) or (
                INTERPOLATION.fullmatch(value)
            ), f"{name}.{key} holds a literal secret"
        for value in (service.get("environment") or {}).values():
            if str(value).startswith("/run/secrets/"):
                secret = str(value).removeprefix("/run/secrets/")
                assert secret in service.get("secrets", []), f"{name} lacks secret {secret}"
    for name, secret in compose["secrets"].items():
        assert set(secret) == {"environment"}, f"secret {name} must come from the environment"
        assert secret["environment"] in REQUIRED_ENV
    with pytest.raises(KeyError, match="TRACETRACK_PUBLIC_URL"):
        interpolate(
            compose, {k: v for k, v in REQUIRED_ENV.items() if k != "TRACETRACK_PUBLIC_URL"}
        )


def test_named_volumes_hold_the_data(compose) -> None:
    declared = set(compose["volumes"])
    used = {
        v.split(":")[0]
        for s in compose["services"].values()
        for v in s.get("volumes", [])
        if not v.startswith(".")
    }
    assert used == declared
    for service, path in [
        ("postgres", "/var/lib/postgresql/data"),
        ("outbox-db", "/var/lib/postgresql/data"),
        ("prometheus-1", "/prometheus"),
        ("prometheus-2", "/prometheus"),
        ("victoriametrics", "/storage"),
        ("alertmanager-1", "/alertmanager"),
        ("alertmanager-2", "/alertmanager"),
        ("grafana", "/var/lib/grafana"),
    ]:
        targets = {
            v.split(":")[1]
            for v in compose["services"][service]["volumes"]
            if not v.startswith(".")
        }
        assert path in targets, f"{service} keeps {path} in a container layer"
    # Two replicas never share one data volume (readers mount one read-only: the app
    # replicas list the reporter's reports).
    sources = [
        v.split(":")[0]
        for s in compose["services"].values()
        for v in s.get("volumes", [])
        if not v.startswith(".") and not v.endswith(":ro")
    ]
    assert len(sources) == len(set(sources)), sources


def test_every_service_has_a_healthcheck_and_waits_for_healthy_dependencies(compose) -> None:
    services = compose["services"]
    assert {
        "postgres",
        "outbox-db",
        "pgbouncer",
        "redis",
        "migrate",
        "app-1",
        "app-2",
        "loadbalancer",
        "exporter",
        "bridge-1",
        "bridge-2",
        "alertmanager-1",
        "alertmanager-2",
        "prometheus-1",
        "prometheus-2",
        "victoriametrics",
        "grafana",
    } <= set(services)
    for name, service in services.items():
        if long_running(service):
            assert "healthcheck" in service, f"{name} has no healthcheck"
            assert service["healthcheck"]["test"][0] == "CMD", name
        for dep, cond in (service.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            wanted = (
                "service_healthy"
                if long_running(services[dep])
                else ("service_completed_successfully")
            )
            assert cond["condition"] == wanted, f"{name} -> {dep}"
    for name in render_configs_module().APP_REPLICAS:
        workers = services[name]["command"][-1]
        assert int(workers.split(":-")[1].rstrip("}")) > 1, "the app runs several workers"


# --- consistency with the repository ------------------------------------------------------


def test_mounted_files_and_build_inputs_exist(compose) -> None:
    for name, service in compose["services"].items():
        for source, _target in bind_mounts(service):
            assert (ROOT / source).exists(), f"{name} mounts missing {source}"
        if "build" in service:
            context = ROOT / service["build"]["context"]
            dockerfile = context / service["build"]["dockerfile"]
            assert dockerfile.is_file()
            for line in dockerfile.read_text().splitlines():
                if line.startswith("COPY "):
                    for src in line.split()[1:-1]:
                        assert (context / src).exists(), f"{dockerfile}: COPY {src} is missing"


def test_env_names_are_settings_the_services_read(compose) -> None:
    readers = {
        "app": env_names(Settings, AnalyticsSettings),
        "db": env_names(Settings),
        "exporter": env_names(Settings, ExporterSettings),
        "bridge": env_names(BridgeSettings),
        "reporter": env_names(ReportSettings),
    }
    checked = set()
    for name, service in compose["services"].items():
        if ours(service):
            subcommand = service["command"][0]
            checked.add(subcommand)
            unknown = set(service["environment"]) - readers[subcommand]
            assert not unknown, f"{name} sets env vars nothing reads: {sorted(unknown)}"
    assert checked == set(readers)


def test_published_ports_match_settings_and_listeners(compose) -> None:
    defaults = Settings()
    for name, service in compose["services"].items():
        for mapping in service.get("ports", []):
            m = re.fullmatch(r"(?:127\.0\.0\.1:)?\$\{(\w+):-(\d+)\}:(\d+)", mapping)
            assert m, f"{name}: port {mapping!r} is not ${{SETTING:-default}}:port"
            var, default, container = m[1], int(m[2]), int(m[3])
            assert getattr(defaults, var.lower()) == default, f"{name}: {var} default"
            assert container in listen_ports(service), f"{name} listens elsewhere"
        if not long_running(service):
            continue
        check = " ".join(service["healthcheck"]["test"])
        port = re.search(r"127\.0\.0\.1:(\d+)", check)
        if port:
            assert int(port[1]) == listen_port(service), f"{name} healthcheck port"
    assert listen_port(compose["services"]["exporter"]) == defaults.exporter_port
    for name in render_configs_module().BRIDGES:
        assert listen_port(compose["services"][name]) == defaults.bridge_port
    for name in render_configs_module().APP_REPLICAS:
        assert listen_port(compose["services"][name]) == defaults.app_port
    assert listen_port(compose["services"]["loadbalancer"]) == defaults.app_port


def service_url_ok(compose: dict[str, Any], url: str) -> bool:
    m = re.fullmatch(r"https?://([\w-]+):(\d+)(/.*)?", url)
    if not m or m[1] not in compose["services"]:
        return False
    return int(m[2]) == listen_port(compose["services"][m[1]])


def test_app_reaches_prometheus_and_alertmanager_by_service_name(compose) -> None:
    for name in render_configs_module().APP_REPLICAS:
        env = compose["services"][name]["environment"]
        assert service_url_ok(compose, env["PROMETHEUS_URL"])
        assert service_url_ok(compose, env["ALERTMANAGER_URL"])
        assert env["REDIS_URL"].startswith("redis://redis:6379")
        # Through the pooler; migrations (direct) ran before the replicas start.
        assert "@pgbouncer:6432/" in env["DATABASE_URL"]
        assert env["TRACETRACK_MIGRATE_ON_START"] == "false"
        assert "migrate" in compose["services"][name]["depends_on"]
    assert "@postgres:5432/" in compose["services"]["migrate"]["environment"]["DATABASE_URL"]
    assert compose["services"]["migrate"]["command"] == ["db", "upgrade"]


def mounted_config(compose: dict[str, Any], service: str, target: str) -> Path:
    for source, tgt in bind_mounts(compose["services"][service]):
        if tgt == target:
            return ROOT / source
    raise AssertionError(f"{service} mounts nothing at {target}")


def test_prometheus_scrapes_every_service_and_loads_the_rules(compose, tmp_path) -> None:
    prom = compose["services"]["prometheus-1"]
    config_path = mounted_config(compose, "prometheus-1", "/etc/prometheus/prometheus.yml")
    config = yaml.safe_load(config_path.read_text())
    targets = {
        t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]
    }
    for name, service in compose["services"].items():
        # The reporter serves nothing (no port): its healthcheck reads its heartbeat file.
        if ours(service) and long_running(service) and name != "reporter":
            assert f"{name}:{listen_port(service)}" in targets, name
    for prefix in ("alertmanager-", "prometheus-", "victoriametrics"):
        for name, service in compose["services"].items():
            if name.startswith(prefix) and long_running(service):
                assert f"{name}:{listen_port(service)}" in targets, name
    rules_path = mounted_config(compose, "prometheus-1", config["rule_files"][0])
    assert rules_path == ROOT / "prometheus" / "rules.yml"
    assert any(
        a.startswith("--config.file=/etc/prometheus/prometheus.yml") for a in prom["command"]
    )
    # promtool on the very file compose mounts, its rule path pointed at the repo's copy.
    local = tmp_path / "prometheus.yml"
    config["rule_files"] = [str(rules_path)]
    local.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [shutil.which("promtool") or "promtool", "check", "config", str(local)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_configs_are_rendered_from_the_shipped_ones() -> None:
    module = render_configs_module()
    assert module.main(["--check"]) == 0, "run .venv/bin/python deploy/render_configs.py"
    compose_prom = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    shipped = yaml.safe_load((ROOT / "prometheus/prometheus.yml").read_text())
    labels = compose_prom["global"].pop("external_labels")
    assert labels == {stackconfig.REPLICA_LABEL: "${PROMETHEUS_REPLICA}"}
    assert compose_prom["global"] == shipped["global"]
    jobs = [j["job_name"] for j in compose_prom["scrape_configs"]]
    shipped_jobs = [j["job_name"] for j in shipped["scrape_configs"]]
    assert jobs[: len(shipped_jobs)] == shipped_jobs
    assert set(jobs) - set(shipped_jobs) == {module.HAPROXY_JOB, module.VICTORIAMETRICS_JOB}
    # Grafana's $__rate_interval assumes this scrape interval.
    datasources = yaml.safe_load(
        (ROOT / "grafana/provisioning/datasources/datasources.yml").read_text()
    )
    prom = next(d for d in datasources["datasources"] if d["type"] == "prometheus")
    assert prom["jsonData"]["timeInterval"] == shipped["global"]["scrape_interval"]


def alertmanager_template(compose: dict[str, Any]) -> Path:
    """The committed alertmanager.yml the `alertmanager-config` job fills for the
    Alertmanagers (their `bridge-down` receiver: alert_bridge/native_route.py)."""
    job = compose["services"]["alertmanager-config"]["command"]
    template = job[job.index("--template") + 1]
    return mounted_config(compose, "alertmanager-config", template)


def test_alertmanager_routes_to_every_bridge_with_the_shared_token(compose, tmp_path) -> None:
    config_path = alertmanager_template(compose)
    config = yaml.safe_load(config_path.read_text())
    bridges = render_configs_module().BRIDGES
    token_file = compose["services"]["bridge-1"]["environment"]["BRIDGE_AUTH_TOKEN_FILE"]
    paths = set()
    for receiver in config["receivers"]:
        hosts = []
        for hook in receiver.get("webhook_configs", []):
            if "/alertmanager/" not in hook["url"]:
                continue  # not a bridge receiver
            assert service_url_ok(compose, hook["url"]), hook["url"]
            paths.add(hook["url"].rsplit("/", 1)[1])
            hosts.append(hook["url"].split("/")[2].split(":")[0])
            assert hook["http_config"]["authorization"]["credentials_file"] == token_file
        if hosts:
            assert sorted(hosts) == sorted(bridges), f"{receiver['name']} misses a bridge"
    assert paths == {"critical", "warning", "info", "watchdog"}
    for name in bridges:
        bridge_env = compose["services"][name]["environment"]
        assert bridge_env["BRIDGE_AUTH_TOKEN_FILE"] == token_file
    for name in render_configs_module().ALERTMANAGERS:
        am = compose["services"][name]
        assert token_file.removeprefix("/run/secrets/") in am["secrets"]
    result = subprocess.run(
        [shutil.which("amtool") or "amtool", "check-config", str(config_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_gets_the_provisioning_and_the_dashboards(compose) -> None:
    grafana = compose["services"]["grafana"]
    mounts = dict((t, s) for s, t in bind_mounts(grafana))
    assert ROOT / mounts["/etc/grafana/provisioning"] == ROOT / "grafana" / "provisioning"
    provider = yaml.safe_load((ROOT / "grafana/provisioning/dashboards/tracetrack.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    assert ROOT / mounts[path] == ROOT / "grafana" / "dashboards"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (ROOT / "grafana" / "dashboards" / Path(home).relative_to(path)).is_file()
    datasources = (ROOT / "grafana/provisioning/datasources/datasources.yml").read_text()
    for var in INTERPOLATION.findall(datasources):
        name = var[0]
        assert name in grafana["environment"], f"datasources.yml needs {name}"
        assert service_url_ok(compose, grafana["environment"][name])


# --- the HA topology: replicas wired to each other ----------------------------------------


def flag_values(service: dict[str, Any], flag: str) -> list[str]:
    return [str(a).split("=", 1)[1] for a in service["command"] if str(a).startswith(flag + "=")]


def test_alertmanagers_form_one_cluster_and_every_prometheus_alerts_to_all(compose) -> None:
    rc = render_configs_module()
    services = compose["services"]
    assert len(rc.ALERTMANAGERS) >= 2
    gossip = {}
    for name in rc.ALERTMANAGERS:
        (listen,) = flag_values(services[name], "--cluster.listen-address")
        gossip[name] = int(listen.rsplit(":", 1)[1])
    for name in rc.ALERTMANAGERS:
        peers = set(flag_values(services[name], "--cluster.peer"))
        others = {f"{o}:{gossip[o]}" for o in rc.ALERTMANAGERS if o != name}
        assert peers == others, f"{name} must peer with every other Alertmanager"
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    (am,) = config["alerting"]["alertmanagers"]
    targets = am["static_configs"][0]["targets"]
    # Each Alertmanager directly, never one address in front of them.
    assert sorted(targets) == sorted(f"{n}:{listen_port(services[n])}" for n in rc.ALERTMANAGERS)
    drop = [{"action": "labeldrop", "regex": stackconfig.REPLICA_LABEL}]
    assert config["alerting"]["alert_relabel_configs"] == drop


def test_prometheus_pair_is_identical_but_for_its_replica_label(compose) -> None:
    rc = render_configs_module()
    services = compose["services"]
    replicas = [services[n] for n in rc.PROMETHEUSES]
    assert len(replicas) == 2
    assert len({s["environment"]["PROMETHEUS_REPLICA"] for s in replicas}) == 2
    for s in replicas:
        assert "--enable-feature=expand-external-labels" in s["command"]
        assert s["command"] == replicas[0]["command"]
        assert [v for v in s["volumes"] if v.startswith(".")] == [
            v for v in replicas[0]["volumes"] if v.startswith(".")
        ]
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    (write,) = config["remote_write"]
    assert service_url_ok(compose, write["url"]) and write["url"].endswith("/api/v1/write")
    assert write["url"].split("/")[2].split(":")[0] == "victoriametrics"
    assert write["write_relabel_configs"] == [
        {"action": "labeldrop", "regex": stackconfig.REPLICA_LABEL}
    ]
    vm = services["victoriametrics"]
    assert vm["command"] == haconfig.victoriametrics_args(
        listen=":8428",
        data_path="/storage",
        scrape_interval=config["global"]["scrape_interval"],
    )
    # Readers get the de-duplicated long-term store.
    grafana = services["grafana"]["environment"]["PROMETHEUS_URL"]
    assert grafana.split("/")[2].split(":")[0] == "victoriametrics"


def test_bridges_share_one_outbox_of_their_own(compose) -> None:
    rc = render_configs_module()
    services = compose["services"]
    envs = [services[n]["environment"] for n in rc.BRIDGES]
    assert len(envs) >= 2
    assert len({e["BRIDGE_DATABASE_URL"] for e in envs}) == 1
    assert len({e["BRIDGE_INSTANCE_ID"] for e in envs}) == len(envs)
    outbox = envs[0]["BRIDGE_DATABASE_URL"]
    assert outbox.startswith("postgresql://") and "@outbox-db:5432/" in outbox
    app_db = services["migrate"]["environment"]["DATABASE_URL"]
    assert app_db.split("@")[1].split("/")[0] != outbox.split("@")[1].split("/")[0]


def test_load_balancer_and_pgbouncer_front_every_app_replica(compose, tmp_path) -> None:
    rc = render_configs_module()
    services = compose["services"]
    replicas = [n for n, s in services.items() if ours(s) and s["command"][0] == "app"]
    assert sorted(replicas) == sorted(rc.APP_REPLICAS) and len(replicas) >= 2
    for name in replicas:
        assert services[name] == services[replicas[0]], f"{name} differs from its siblings"
    cfg = (ROOT / "deploy/haproxy/haproxy.cfg").read_text()
    assert backend_servers(cfg, "app") == [
        (n, f"{n}:{listen_port(services[n])}") for n in rc.APP_REPLICAS
    ]
    assert "option httpchk GET /readyz" in cfg
    stats = int(re.search(r"frontend stats\n    bind :(\d+)", cfg)[1])  # type: ignore[index]
    assert stats == rc.LB_STATS_PORT
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    result = subprocess.run(
        [haproxy, "-c", "-f", str(ROOT / "deploy/haproxy/haproxy.cfg")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    ini = (ROOT / "deploy/pgbouncer/pgbouncer.ini").read_text()
    database = re.search(r"^tracetrack = host=(\S+) port=(\d+) dbname=(\S+)", ini, re.M)
    assert database and (database[1], int(database[2])) == ("postgres", 5432)
    assert "pool_mode = transaction" in ini
    command = services["postgres"]["command"]
    assert f"max_connections={haconfig.MAX_CONNECTIONS}" in command
    assert rc.BUDGET.app_replicas == len(replicas)
    assert rc.BUDGET.problems() == []
    assert f"max_db_connections = {rc.BUDGET.pooler}" in ini
    probed = services["exporter"]["environment"]["TRACETRACK_EXPORTER_APP_URLS"].split(",")
    assert probed == [f"http://{n}:{listen_port(services[n])}" for n in rc.APP_REPLICAS]
    for name in replicas:  # one proxy in front: the client is the last forwarded hop
        assert services[name]["environment"]["TRUSTED_PROXY_HOPS"] == "1"
        # Through PgBouncer (transaction mode): no named prepared statements.
        assert services[name]["environment"]["DB_STATEMENT_CACHE_SIZE"] == "0"
    assert "option forwardfor" in cfg
    stats_users = re.search(r"^stats_users = (.+)$", ini, re.M)[1].split(",")  # type: ignore[index]
    exporter = services["exporter"]["environment"]["PGBOUNCER_URL"]
    assert re.fullmatch(
        r"postgresql://(\w+):\$\{POSTGRES_PASSWORD[^}]*\}@pgbouncer:6432/pgbouncer", exporter
    )
    assert exporter.split("//")[1].split(":")[0] in stats_users


def backend_servers(cfg: str, backend: str) -> list[tuple[str, str]]:
    section = re.search(rf"^backend {backend}\n(.*?)(?:\n\n|\Z)", cfg, re.M | re.S)
    assert section, f"no backend {backend}"
    return re.findall(r"^    server (\S+) (\S+) check", section[1], re.M)


def test_phones_reach_the_bridges_pages_through_the_load_balancer(compose) -> None:
    """The links a page carries open: TRACETRACK_PUBLIC_URL is the load balancer's
    `oncall` frontend (published), which passes /n/ and /runbook to every bridge."""
    rc = render_configs_module()
    services = compose["services"]
    cfg = (ROOT / "deploy/haproxy/haproxy.cfg").read_text()
    assert backend_servers(cfg, "bridges") == [
        (n, f"{n}:{listen_port(services[n])}") for n in rc.BRIDGES
    ]
    port = haproxy_frontends()["oncall"]
    assert f"${{BRIDGE_PORT:-{port}}}:{port}" in services["loadbalancer"]["ports"]
    assert f"path_beg {' '.join(haconfig.BRIDGE_PUBLIC_PATHS)}" in cfg
    public = {
        services[n]["environment"]["TRACETRACK_PUBLIC_URL"]
        for n in (*rc.BRIDGES, "alertmanager-config")
    }
    assert public == {compose["x-public-url"]}
    assert compose["x-public-url"].startswith("${TRACETRACK_PUBLIC_URL:?")


def test_the_connection_budget_refuses_what_would_page_or_exhaust_postgres() -> None:
    assert haconfig.ConnectionBudget().problems() == []
    too_big = haconfig.ConnectionBudget(pool=180, reserve=40)
    assert any("warning threshold" in p for p in too_big.problems())
    assert any("100-250" in p for p in haconfig.ConnectionBudget(pool=50, reserve=20).problems())
    # Replicas and workers grow the client side only.
    settings = Settings.model_construct()
    small = haconfig.ConnectionBudget(app_replicas=2)
    large = haconfig.ConnectionBudget(app_replicas=10)
    assert small.server_connections == large.server_connections
    assert large.max_client_connections(settings) == 5 * small.max_client_connections(settings)


def config_files(config: dict[str, Any]) -> list[str]:
    """Every file path an alertmanager.yml names (credentials, passwords, CAs)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key.endswith("_file") and isinstance(value, str):
                    found.append(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(config)
    return found


def am_sees(am: dict[str, Any], job: dict[str, Any], path: Path, root: Path) -> bool:
    """Whether `path`, as written in the job's container (`root` here), is readable at
    the same path in the Alertmanager's container: a secret it has, or under a volume
    both mount at the same place."""
    if str(path).startswith("/run/secrets/"):
        return path.name in am.get("secrets", [])
    if not path.is_relative_to(root) or not path.is_file():
        return False
    inside = Path("/") / path.relative_to(root)
    for volume in job["volumes"]:
        source, target = volume.split(":")[:2]
        if inside.is_relative_to(target) and not source.startswith("."):
            if any(v.split(":")[:2] == [source, target] for v in am["volumes"]):
                return True
    return False


def test_alertmanagers_read_the_config_the_job_fills_with_the_bridge_down_route(
    compose, tmp_path
) -> None:
    services = compose["services"]
    job = services["alertmanager-config"]
    command = job["command"]
    assert command[:2] == ["bridge", "native-route"] and not long_running(job)
    out = Path(command[command.index("--out") + 1])
    volume = next(v.split(":")[0] for v in job["volumes"] if v.split(":")[1] == str(out.parent))
    for name in render_configs_module().ALERTMANAGERS:
        am = services[name]
        (config_file,) = flag_values(am, "--config.file")
        assert f"{volume}:{Path(config_file).parent}:ro" in am["volumes"], name
        assert Path(config_file).name == out.name
        assert am["depends_on"]["alertmanager-config"]["condition"] == (
            "service_completed_successfully"
        )
    # The same channel switches and mail settings as the bridges that would be down.
    bridge = services["bridge-1"]["environment"]
    for key, value in job["environment"].items():
        if key != "ALERT_CONFIG_FILE":
            assert bridge.get(key) == value, (
                f"alertmanager-config's {key} differs from the bridges'"
            )
    # What the job does, for real: every channel on, a password set. It runs in a
    # container whose root is `root` here, so the paths it writes are container paths.
    env = interpolate(
        job["environment"],
        {**REQUIRED_ENV, "ENABLE_EMAIL_ALERTS": "true", "ENABLE_WEBHOOK_ALERTS": "true"},
    )
    env["ALERT_CONFIG_FILE"] = str(ROOT / "alert_config.py")
    env["ALERT_SENDER_PASSWORD"] = "smtp-pass-0123"
    root = tmp_path / "root"
    written = root / out.relative_to("/")
    written.parent.mkdir(parents=True)
    result = subprocess.run(
        [
            TRACETRACK,
            *command[:2],
            "--template",
            str(alertmanager_template(compose)),
            "--out",
            str(written),
            "--shared-secrets",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **env, "TRACETRACK_VAR_DIR": str(tmp_path / "var")},
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(written.read_text())
    (down,) = [r for r in config["receivers"] if r["name"] == "bridge-down"]
    (email,) = down["email_configs"]
    shipped = load_config(ROOT / "alert_config.py")
    assert email["to"] == ", ".join(
        r.address for r in shipped.for_severity("critical") if r.channel == "email"
    )
    assert "smtp-pass-0123" not in written.read_text()
    secret = Path(email["auth_password_file"])
    assert secret.read_text() == "smtp-pass-0123" and secret.stat().st_mode & 0o777 == 0o444
    # Every file the config names is, in each Alertmanager's container, the file the
    # job wrote (the same volume at the same path) or a secret it mounts.
    for name in render_configs_module().ALERTMANAGERS:
        for path in config_files(config):
            assert am_sees(services[name], job, Path(path), root), f"{name} cannot read {path}"
    assert down.get("slack_configs") or down.get("discord_configs")
    assert "https://oncall.example.com/runbook#tracetrackalertbridgedown" in str(down)
    check = subprocess.run(
        [shutil.which("amtool") or "amtool", "check-config", str(written)],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
