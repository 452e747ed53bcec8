"""docker-compose.yml: valid against the Compose Specification's schema, and consistent
with the repository (mounted files exist, ports and env names match the services'
settings, Prometheus/Alertmanager/Grafana configs point at the right services)."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic_settings import BaseSettings

from alert_bridge.settings import BridgeSettings
from app.analytics.settings import AnalyticsSettings
from common.settings import Settings
from exporter.settings import ExporterSettings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
SCHEMA_FILE = ROOT / "tests" / "data" / "compose-spec.json"
OUR_IMAGE_SERVICES = ("app", "exporter", "bridge")
# Ports of the third-party images, as their commands in docker-compose.yml set them.
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """What `docker compose` does with ${VAR}, ${VAR:-default} and ${VAR:?error}."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if env.get(name):
            return env[name]
        if op in (":?", "?"):
            raise KeyError(f"{name} is required: {arg}")
        return arg or ""

    return INTERPOLATION.sub(one, value)


def env_names(*models: type[BaseSettings]) -> set[str]:
    names = set()
    for model in models:
        for name, info in model.model_fields.items():
            alias = info.validation_alias
            names.add((alias if isinstance(alias, str) else name).upper())
    return names


def listen_port(service: dict[str, Any]) -> int:
    """The port a service's process listens on, read from its command."""
    command = [str(c) for c in service.get("command", [])]
    if "--port" in command:
        return int(command[command.index("--port") + 1])
    for arg in command:
        if arg.startswith("--web.listen-address="):
            return int(arg.rsplit(":", 1)[1])
    image = service["image"]
    known = {"postgres": 5432, "redis": 6379, "grafana/grafana": 3000}
    return known[image.split(":")[0]]


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            out.append((source, target))
    return out


# --- the Compose Specification ------------------------------------------------------------

REQUIRED_ENV = {
    "POSTGRES_PASSWORD": "pw",
    "TRACETRACK_SECRET_KEY": "k" * 32,
    "BRIDGE_AUTH_TOKEN": "t" * 32,
    "GRAFANA_ADMIN_PASSWORD": "g",
}


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
    broken["services"]["app"]["depends_on"]["postgres"]["condition"] = "service_healty"
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
        ("prometheus", "/prometheus"),
        ("alertmanager", "/alertmanager"),
        ("grafana", "/var/lib/grafana"),
        ("bridge", "/var/lib/tracetrack"),
    ]:
        targets = {
            v.split(":")[1]
            for v in compose["services"][service]["volumes"]
            if not v.startswith(".")
        }
        assert path in targets, f"{service} keeps {path} in a container layer"


def test_every_service_has_a_healthcheck_and_waits_for_healthy_dependencies(compose) -> None:
    services = compose["services"]
    assert set(services) == {
        "postgres",
        "redis",
        "app",
        "exporter",
        "bridge",
        "prometheus",
        "alertmanager",
        "grafana",
    }
    for name, service in services.items():
        assert "healthcheck" in service, name
        for dep, cond in (service.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            assert cond["condition"] == "service_healthy", f"{name} -> {dep}"
    assert int(services["app"]["command"][-1].split(":-")[1].rstrip("}")) > 1, (
        "the app runs several workers"
    )


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
        "exporter": env_names(Settings, ExporterSettings),
        "bridge": env_names(BridgeSettings),
    }
    for name in OUR_IMAGE_SERVICES:
        unknown = set(compose["services"][name]["environment"]) - readers[name]
        assert not unknown, f"{name} sets env vars nothing reads: {sorted(unknown)}"


def test_published_ports_match_settings_and_listeners(compose) -> None:
    defaults = Settings()
    for name, service in compose["services"].items():
        for mapping in service.get("ports", []):
            m = re.fullmatch(r"(?:127\.0\.0\.1:)?\$\{(\w+):-(\d+)\}:(\d+)", mapping)
            assert m, f"{name}: port {mapping!r} is not ${{SETTING:-default}}:port"
            var, default, container = m[1], int(m[2]), int(m[3])
            assert getattr(defaults, var.lower()) == default, f"{name}: {var} default"
            assert container == listen_port(service), f"{name} listens elsewhere"
        check = " ".join(service["healthcheck"]["test"])
        port = re.search(r"127\.0\.0\.1:(\d+)", check)
        if port:
            assert int(port[1]) == listen_port(service), f"{name} healthcheck port"
    assert listen_port(compose["services"]["exporter"]) == defaults.exporter_port
    assert listen_port(compose["services"]["bridge"]) == defaults.bridge_port
    assert listen_port(compose["services"]["app"]) == defaults.app_port


def service_url_ok(compose: dict[str, Any], url: str) -> bool:
    m = re.fullmatch(r"https?://([\w-]+):(\d+)(/.*)?", url)
    if not m or m[1] not in compose["services"]:
        return False
    return int(m[2]) == listen_port(compose["services"][m[1]])


def test_app_reaches_prometheus_and_alertmanager_by_service_name(compose) -> None:
    env = compose["services"]["app"]["environment"]
    assert service_url_ok(compose, env["PROMETHEUS_URL"])
    assert service_url_ok(compose, env["ALERTMANAGER_URL"])
    assert env["REDIS_URL"].startswith("redis://redis:6379")
    assert "@postgres:5432/" in env["DATABASE_URL"]


def mounted_config(compose: dict[str, Any], service: str, target: str) -> Path:
    for source, tgt in bind_mounts(compose["services"][service]):
        if tgt == target:
            return ROOT / source
    raise AssertionError(f"{service} mounts nothing at {target}")


def test_prometheus_scrapes_every_service_and_loads_the_rules(compose, tmp_path) -> None:
    prom = compose["services"]["prometheus"]
    config_path = mounted_config(compose, "prometheus", "/etc/prometheus/prometheus.yml")
    config = yaml.safe_load(config_path.read_text())
    targets = {
        t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]
    }
    for service in ("app", "exporter", "bridge", "alertmanager"):
        assert f"{service}:{listen_port(compose['services'][service])}" in targets, service
    am = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am == [f"alertmanager:{listen_port(compose['services']['alertmanager'])}"]
    rules_path = mounted_config(compose, "prometheus", config["rule_files"][0])
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
    spec = importlib.util.spec_from_file_location(
        "render_configs", ROOT / "deploy/render_configs.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--check"]) == 0, "run .venv/bin/python deploy/render_configs.py"
    compose_prom = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    shipped = yaml.safe_load((ROOT / "prometheus/prometheus.yml").read_text())
    assert compose_prom["global"] == shipped["global"]
    assert [j["job_name"] for j in compose_prom["scrape_configs"]] == [
        j["job_name"] for j in shipped["scrape_configs"]
    ]
    # Grafana's $__rate_interval assumes this scrape interval.
    datasources = yaml.safe_load(
        (ROOT / "grafana/provisioning/datasources/datasources.yml").read_text()
    )
    prom = next(d for d in datasources["datasources"] if d["type"] == "prometheus")
    assert prom["jsonData"]["timeInterval"] == shipped["global"]["scrape_interval"]


def test_alertmanager_routes_to_the_bridge_with_the_shared_token(compose, tmp_path) -> None:
    am = compose["services"]["alertmanager"]
    config_path = mounted_config(compose, "alertmanager", "/etc/alertmanager/alertmanager.yml")
    config = yaml.safe_load(config_path.read_text())
    bridge = compose["services"]["bridge"]
    token_file = bridge["environment"]["BRIDGE_AUTH_TOKEN_FILE"]
    paths = set()
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            assert service_url_ok(compose, hook["url"]), hook["url"]
            paths.add(hook["url"].rsplit("/", 1)[1])
            assert hook["http_config"]["authorization"]["credentials_file"] == token_file
    assert paths == {"critical", "warning", "info", "watchdog"}
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
