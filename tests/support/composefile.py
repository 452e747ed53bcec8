"""docker-compose.yml as `docker compose` reads it: its ${VAR} interpolation and the
variables it refuses to start without (tests/test_compose.py, tests/test_bridge_links.py)."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tooling.checkout import ROOT

COMPOSE_FILE = ROOT / "docker-compose.yml"
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")

REQUIRED_ENV = {
    "POSTGRES_PASSWORD": "pw",
    "TRACETRACK_SECRET_KEY": "k" * 32,
    "BRIDGE_AUTH_TOKEN": "t" * 32,
    "GRAFANA_ADMIN_PASSWORD": "g",
    # Not a secret: where phones reach the notification pages (no default that opens
    # nowhere).
    "TRACETRACK_PUBLIC_URL": "https://oncall.example.com",
}


def load() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE_FILE.read_text()))


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
