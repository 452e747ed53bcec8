"""Each word is defined once (common/alerting.py, common/topology.py, common/tables.py,
app/vocabulary.py); the files that must spell them out are checked against them."""

from __future__ import annotations

import re
from typing import get_args

import sqlalchemy as sa
import yaml

from app.db import migrate
from app.models import Base
from app.vocabulary import BAG_STATUSES, BAG_TYPES, BILL_STATUSES, ROLES, SettableBagStatus
from common import topology
from common.alerting import CHANNEL_MATRIX, CHANNELS, SEVERITIES, WATCHDOG
from common.settings import Settings
from common.tables import TABLES
from tooling import stackconfig
from tooling.rules_gen import rules_document


def test_the_models_declare_exactly_the_shared_table_names() -> None:
    assert set(Base.metadata.tables) == set(TABLES)


def test_the_migrated_database_allows_exactly_the_vocabulary(database_url: str) -> None:
    """The migrations are history with literal copies; the database they build must
    accept exactly the words the app validates with."""
    migrate(database_url)
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        tables = set(
            conn.execute(
                sa.text("select tablename from pg_tables where schemaname = current_schema()")
            ).scalars()
        )
        checks: dict[str, str] = dict(
            conn.execute(
                sa.text(
                    "select conname, pg_get_constraintdef(oid) from pg_constraint"
                    " where contype = 'c'"
                )
            ).all()
        )
    engine.dispose()
    assert set(TABLES) <= tables

    def allowed(name: str) -> set[str]:
        return set(re.findall(r"'([^']*)'::", checks[name]))

    assert allowed("users_role_valid") == set(ROLES)
    assert allowed("bags_type_valid") == set(BAG_TYPES)
    assert allowed("bags_status_valid") == set(BAG_STATUSES)
    assert allowed("bills_status_valid") == set(BILL_STATUSES)


def test_settable_statuses_are_bag_statuses_but_billed() -> None:
    assert set(get_args(SettableBagStatus)) == set(BAG_STATUSES) - {"billed"}


def test_the_channel_matrix_uses_every_severity_and_only_known_channels() -> None:
    assert tuple(CHANNEL_MATRIX) == SEVERITIES
    assert {c for cs in CHANNEL_MATRIX.values() for c in cs} == set(CHANNELS)


def test_every_alert_has_a_known_severity_and_the_heartbeat_exists() -> None:
    alerts = [r for g in rules_document()["groups"] for r in g["rules"] if "alert" in r]
    assert {a["labels"]["severity"] for a in alerts} <= set(SEVERITIES)
    assert WATCHDOG in {a["alert"] for a in alerts}


def test_alertmanager_yml_has_a_receiver_per_severity_on_the_bridge_port() -> None:
    doc = yaml.safe_load(stackconfig.ALERTMANAGER_CONFIG.read_text())
    paths = stackconfig.webhook_paths()
    assert {f"/alertmanager/{s}" for s in SEVERITIES} <= set(paths.values())
    for receiver in doc["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            assert hook["url"].startswith(f"http://127.0.0.1:{topology.BRIDGE_PORT}/")
    routed = {
        r["matchers"][0] for r in doc["route"]["routes"] if r["matchers"][0].startswith("severity")
    }
    assert routed == {f'severity="{s}"' for s in SEVERITIES}
    heartbeat = [r for r in doc["route"]["routes"] if r["receiver"] == "bridge-watchdog"]
    assert heartbeat[0]["matchers"] == [f'alertname="{WATCHDOG}"']


def test_prometheus_yml_scrapes_every_job_on_its_default_port() -> None:
    doc = yaml.safe_load(stackconfig.PROMETHEUS_CONFIG.read_text())
    shipped = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in doc["scrape_configs"]
    }
    assert shipped == stackconfig.targets_for()
    assert tuple(shipped) == topology.JOBS
    (am,) = doc["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am == f"127.0.0.1:{topology.ALERTMANAGER_PORT}"


def test_settings_default_to_the_topology_ports() -> None:
    s = Settings()
    assert (s.app_port, s.exporter_port, s.bridge_port) == (
        topology.APP_PORT,
        topology.EXPORTER_PORT,
        topology.BRIDGE_PORT,
    )
    assert s.prometheus_url.endswith(f":{topology.PROMETHEUS_PORT}")
    assert s.alertmanager_url.endswith(f":{topology.ALERTMANAGER_PORT}")


def _matcher_values(text: str, label: str) -> set[str]:
    """Values a `label="x"` or `label=~"x|y"` matcher in `text` names (simple alternations)."""
    found: set[str] = set()
    for _op, value in re.findall(rf'\b{label}(=~|=)\\?"([^"\\]*)\\?"', text):
        found |= set(value.split("|"))
    return found


def test_every_alert_and_job_the_configs_name_exists() -> None:
    """A misspelt name in a route, an inhibit rule or a `unless_recently` tail matches
    nothing and fails silently (a page not muted, or not routed): each must be an alert
    the rules generate and a job of common/topology.py."""
    from tooling import cause_rules

    doc = rules_document()
    alerts = {r["alert"] for g in doc["groups"] for r in g["rules"] if "alert" in r}
    exprs = "\n".join(r["expr"] for g in doc["groups"] for r in g["rules"])
    shipped_am = stackconfig.ALERTMANAGER_CONFIG.read_text()
    named = _matcher_values(shipped_am, "alertname") | _matcher_values(exprs, "alertname")
    named |= {n for cause, targets in cause_rules.CAUSES.items() for n in (cause, *targets)}
    assert named, "the check found no alert names"
    assert named <= alerts, f"names no generated alert: {sorted(named - alerts)}"
    jobs = _matcher_values(shipped_am, "job") | _matcher_values(exprs, "job")
    assert jobs <= set(topology.JOBS), (
        f"not a job of common/topology.py: {sorted(jobs - set(topology.JOBS))}"
    )
