"""`pip install .` (not editable) in a fresh virtualenv gives a working `tracetrack`:
what the services read at run time (migrations, templates, the runbook, the shipped
Prometheus and Alertmanager files) comes from the installed package, not a checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tooling.checkout import ROOT

# Not part of what a user installs from: local state and caches of this checkout.
IGNORED = shutil.ignore_patterns(
    ".git", ".venv", "var", "__pycache__", "*.egg-info", "build", "dist", ".*_cache"
)

# Run inside the installed interpreter: where each piece of package data resolves.
PROBE = """
import json, sys
import alert_bridge.settings, app.db, app.analytics.pages, tooling.stackconfig as sc
from tooling.stackconfig import render_prometheus_config, render_alertmanager_config
print(json.dumps({
    "app": app.db.__file__,
    "migrations": sorted(p.name for p in (app.db.MIGRATIONS_DIR / "versions").glob("*.py")),
    "templates": app.analytics.pages._env.list_templates(),
    "runbook": alert_bridge.settings.DEFAULT_RUNBOOK.read_text(),
    "rules": sc.RULES_FILE.read_text(),
    "prometheus": render_prometheus_config(),
    "alertmanager": render_alertmanager_config(bridge_url="http://127.0.0.1:1"),
}))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the checkout installed the way a user installs it."""
    base = tmp_path_factory.mktemp("install")
    src = base / "src"
    shutil.copytree(ROOT, src, ignore=IGNORED, symlinks=True)
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    result = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "-c", str(src / "constraints.txt"), str(src)],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    shutil.rmtree(src)  # nothing may still point into the source tree
    return venv


def run(venv: Path, *args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(venv / "bin" / args[0]), *args[1:]],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=300,
    )
    assert result.returncode == 0, f"{args}: {result.stdout[-2000:]}{result.stderr[-2000:]}"
    return result.stdout


def test_the_installed_package_reads_only_its_own_files(installed: Path, tmp_path: Path) -> None:
    out = json.loads(run(installed, "python", "-c", PROBE, cwd=tmp_path))
    site = str(installed)
    assert out["app"].startswith(site)
    assert "0001_initial.py" in out["migrations"]
    assert {"dashboard.html", "login.html"} <= set(out["templates"])
    assert out["runbook"] == (ROOT / "docs" / "runbook.md").read_text()
    assert out["rules"] == (ROOT / "prometheus" / "rules.yml").read_text()
    assert f"{site}" in out["prometheus"]  # the rule file, absolute, inside the venv
    assert "http://127.0.0.1:1/alertmanager/critical" in out["alertmanager"]


def test_the_installed_tracetrack_migrates_and_checks_the_config(
    installed: Path, tmp_path: Path, database_url: str
) -> None:
    assert "bridge" in run(installed, "tracetrack", "--help", cwd=tmp_path)
    run(installed, "tracetrack", "db", "upgrade", cwd=tmp_path, env={"DATABASE_URL": database_url})
    # The operator's alert_config.py, in the directory the bridge runs from.
    shutil.copy(ROOT / "alert_config.py", tmp_path / "alert_config.py")
    out = run(installed, "tracetrack", "bridge", "check-config", cwd=tmp_path)
    assert "critical" in out
