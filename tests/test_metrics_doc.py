"""docs/metrics.md lists exactly what the app, the exporter and the bridge export.

Each side is read live: the exporter's and the app's /metrics (real processes or servers
on real PostgreSQL/Redis), the app's metric objects (labelled metrics with no sample yet
are absent from multiprocess output), and the bridge's registry. Every name found is
compared, whatever its prefix: a runtime metric (process_*, python_*) exported by a
service has to be documented too.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from app.db import migrate
from common import metric_names
from common.settings import Settings
from tests.support.exporterkit import running_exporter, scrape, types, up
from tests.support.hakit import start_pgbouncer
from tooling import haconfig
from tooling.checkout import ROOT
from tooling.pgserver import PostgresServer
from tooling.procs import free_port

DOC = ROOT / "docs" / "metrics.md"

Table = dict[str, tuple[str | None, frozenset[str]]]  # name -> (type, label names)


def documented(section: str) -> Table:
    """The metric tables (first header cell "Metric") under `## <section>`."""
    text = DOC.read_text()
    match = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"{DOC} has no '## {section}' section"
    out: Table = {}
    in_metric_table = False
    for line in match.group(1).splitlines():
        if not line.startswith("|"):
            in_metric_table = False
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == "Metric":
            in_metric_table = True
            continue
        if not in_metric_table or set(cells[0]) <= {"-"}:
            continue
        name = cells[0].strip("`")
        assert name not in out, f"{name} is listed twice in {DOC}"
        labels = frozenset(re.findall(r"`([^`]+)`", cells[2]))
        out[name] = (cells[1], labels)
    assert out, f"no metric table under '## {section}' in {DOC}"
    return out


def exported(text: str) -> Table:
    """Names, types and label names from a text exposition."""
    kinds = types(text)
    labels: dict[str, set[str]] = {name: set() for name in kinds}
    for family in text_string_to_metric_families(text):
        key = family.name + "_total" if family.type == "counter" else family.name
        for sample in family.samples:
            labels.setdefault(key, set()).update(
                k for k in sample.labels if k not in ("le", "quantile")
            )
    return {
        name: (kind, frozenset(labels[name]))
        for name, kind in kinds.items()
        if not _created_sample_of_a_family(name, kinds)
    }


def _created_sample_of_a_family(name: str, kinds: dict[str, str]) -> bool:
    """prometheus_client writes a counter's or histogram's creation time as a separate
    `<base>_created` gauge in the text format; in the data model (and in OpenMetrics
    output) it is part of that family, documented with it."""
    base = name.removesuffix("_created")
    return (
        name.endswith("_created")
        and kinds[name] == "gauge"
        and (kinds.get(base + "_total") == "counter" or kinds.get(base) in ("histogram", "summary"))
    )


def assert_same(section: str, live: Table) -> None:
    doc = documented(section)
    undocumented = sorted(set(live) - set(doc))
    not_exported = sorted(set(doc) - set(live))
    assert not undocumented, f"exported but not in {DOC.name} '## {section}': {undocumented}"
    assert not not_exported, f"in {DOC.name} '## {section}' but not exported: {not_exported}"
    wrong = {n: {"doc": doc[n], "live": live[n]} for n in doc if doc[n] != live[n]}
    assert not wrong, f"type or labels differ ({DOC.name} vs live): {wrong}"


def test_exporter_metrics_are_documented(
    database_url: str, redis_url: str, postgres: PostgresServer, tmp_path: Path
) -> None:
    migrate(database_url)
    # The app collector probes a port nobody listens on: ready 0 is still its series.
    app_urls = f"http://127.0.0.1:{free_port()}"
    pgbouncer = start_pgbouncer(
        tmp_path / "pgbouncer",
        db_port=postgres.port,
        db_name=database_url.rsplit("/", 1)[1],
        budget=haconfig.ConnectionBudget(),
        settings=Settings(),
    )
    try:
        with running_exporter(
            database_url,
            redis_url=redis_url,
            app_urls=app_urls,
            pgbouncer_url=pgbouncer.dsn("pgbouncer"),
        ) as url:
            text, s = scrape(url)
    finally:
        pgbouncer.proc.stop()
    for collector in ("system", "postgres", "business", "redis", "app", "pgbouncer"):
        assert up(s, collector) == 1, f"collector {collector} down: its series cannot be compared"
    assert_same("Exporter", exported(text))


def app_metric_objects() -> Table:
    """Every prometheus_client metric object defined by an imported app module."""
    from prometheus_client.metrics import MetricWrapperBase

    import app.main
    import app.metrics  # noqa: F401

    out: Table = {}
    for mod_name, module in list(sys.modules.items()):
        if mod_name != "app" and not mod_name.startswith("app."):
            continue
        for obj in vars(module).values():
            if isinstance(obj, MetricWrapperBase):
                name = obj._name + "_total" if obj._type == "counter" else obj._name
                out[name] = (obj._type, frozenset(obj._labelnames))
    return out


def test_app_metrics_are_documented(database_url: str, tmp_path: Path) -> None:
    # No skip: until the app exports /metrics this fails, which is the point.
    from tests.support.appkit import add_user, auth, start_app_process, token

    add_user(database_url, "ops", "admin")
    proc, port = start_app_process(tmp_path, database_url)
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=10) as client:
            client.get("/healthz")
            client.get("/no/such/path")
            client.post("/api/auth/login", json={"username": "ops", "password": "wrong-password"})
            client.get("/api/bags/NO-SUCH-BAG", headers=auth(token(client, "ops")))
            r = client.get("/metrics")
        assert r.status_code == 200, f"app /metrics answered {r.status_code}: {r.text[:300]}"
        live = exported(r.text)
    finally:
        proc.stop()
    for name, (kind, labels) in app_metric_objects().items():
        # A labelled metric appears in multiprocess output only once it has a sample.
        live_kind, live_labels = live.get(name, (kind, labels))
        assert live_kind == kind, f"{name}: /metrics says {live_kind}, the object is a {kind}"
        live[name] = (kind, labels | live_labels)
    assert metric_names.ACTIVE_USERS in live, "the app does not export tracetrack_active_users"
    assert_same("App", live)


def test_bridge_metrics_are_documented() -> None:
    from alert_bridge.metrics import BridgeMetrics
    from alert_bridge.store import WriteHealth

    metrics = BridgeMetrics(CollectorRegistry())
    metrics.watch_queue(lambda: 0)
    metrics.watch_outbox(WriteHealth)
    metrics.count("email", "critical", "sent")
    assert_same("Alert bridge", exported(generate_latest(metrics.registry).decode()))


def test_documented_names_are_shared_constants() -> None:
    """Consumers import names instead of retyping them; every documented one must exist."""
    constants = {v for k, v in vars(metric_names).items() if k.isupper() and isinstance(v, str)}
    for section in ("App", "Exporter", "Alert bridge"):
        missing = sorted(set(documented(section)) - constants)
        assert not missing, f"'## {section}' names not in common/metric_names.py: {missing}"
