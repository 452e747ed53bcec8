"""Render the Prometheus and Alertmanager configs docker-compose.yml mounts.

    .venv/bin/python deploy/render_configs.py           # rewrite deploy/*/…yml
    .venv/bin/python deploy/render_configs.py --check   # exit 1 if they are stale

They are the shipped prometheus/prometheus.yml and alertmanager/alertmanager.yml
(the single source, via tooling.stackconfig) with the compose service names as
addresses and the compose secret as the bridge token; tests/test_compose.py fails
when the committed files differ from this rendering.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tooling import stackconfig  # noqa: E402
from tooling.generated import write_or_check  # noqa: E402

PROMETHEUS_OUT = HERE / "prometheus" / "prometheus.yml"
ALERTMANAGER_OUT = HERE / "alertmanager" / "alertmanager.yml"

# Compose service name and port of each scrape job (docker-compose.yml).
TARGETS = {
    stackconfig.APP_JOB: ["app:8000"],
    stackconfig.EXPORTER_JOB: ["exporter:9817"],
    stackconfig.BRIDGE_JOB: ["bridge:9818"],
    stackconfig.ALERTMANAGER_JOB: ["alertmanager:9093"],
    stackconfig.PROMETHEUS_JOB: ["localhost:9090"],
}
RULES_IN_CONTAINER = "/etc/prometheus/rules.yml"
BRIDGE_URL = "http://bridge:9818"
TOKEN_SECRET = "/run/secrets/bridge_auth_token"


def _header(source: Path) -> str:
    return (
        f"# docker-compose.yml's copy of {source.relative_to(HERE.parent)}, rendered by\n"
        f"# deploy/render_configs.py: edit the source, then rerun it.\n"
    )


def _body(rendered: str) -> str:
    # stackconfig's own first line names the source by absolute path: machine-specific.
    return rendered.split("\n", 1)[1]


def render() -> dict[Path, str]:
    prometheus = stackconfig.render_prometheus_config(
        targets=TARGETS,
        alertmanagers=TARGETS[stackconfig.ALERTMANAGER_JOB],
        rule_files=[RULES_IN_CONTAINER],
    )
    alertmanager = stackconfig.render_alertmanager_config(
        bridge_url=BRIDGE_URL, credentials_file=TOKEN_SECRET
    )
    return {
        PROMETHEUS_OUT: _header(stackconfig.PROMETHEUS_CONFIG) + _body(prometheus),
        ALERTMANAGER_OUT: _header(stackconfig.ALERTMANAGER_CONFIG) + _body(alertmanager),
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
