"""Prometheus, Alertmanager and rule files rendered from the shipped ones.

`prometheus/prometheus.yml`, `prometheus/rules.yml` and `alertmanager/alertmanager.yml`
are the single source; `tracetrack up` and the tests call these functions to get
the same configuration on other ports, intervals or `for:` windows, never a
hand-written copy. Rendered files use absolute paths so they work from any directory.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from common import durations, topology
from common.topology import ALERTMANAGER_JOB, APP_JOB, BRIDGE_JOB, EXPORTER_JOB, PROMETHEUS_JOB
from tooling.rule_annotations import rebase_links

# The shipped files, as package data (tooling/shipped/ links to prometheus/ and
# alertmanager/ in a checkout), so an installed `tracetrack up` finds them. Resolved:
# the relative paths inside them (rule files, the token file) are relative to the
# directory the file really lives in.
SHIPPED = Path(__file__).resolve().parent / "shipped"
PROMETHEUS_CONFIG = (SHIPPED / "prometheus.yml").resolve()
RULES_FILE = (SHIPPED / "rules.yml").resolve()
ALERTMANAGER_CONFIG = (SHIPPED / "alertmanager.yml").resolve()


# Prometheus HA: each server of a pair sets this external label to its own name. It is
# dropped from the alerts it sends (so Alertmanager sees one alert, not two) and from
# the samples it remote-writes (so long-term storage sees one series and de-duplicates).
REPLICA_LABEL = "replica"

# The fast test configuration: a critical breach reaches the bridge in ~4 s.
FAST_SCRAPE_INTERVAL = "1s"
FAST_EVALUATION_INTERVAL = "1s"
FAST_FOR = "1s"
FAST_ROUTE_TIMINGS = {"group_wait": "1s", "group_interval": "1s", "repeat_interval": "1m"}

WATCHDOG_RECEIVER = "bridge-watchdog"

ROUTE_TIMING_KEYS = ("group_wait", "group_interval", "repeat_interval")
# Every webhook under this path goes to the alert bridge (the others are left alone).
BRIDGE_PATH_PREFIX = "/alertmanager/"


class ConfigError(ValueError):
    """A rendering request the shipped files cannot satisfy (names the file and field)."""


def duration_seconds(text: str) -> float:
    """Seconds in a Prometheus duration such as `1m30s`, `10s` or `500ms`
    (common.durations), a ConfigError otherwise."""
    try:
        return durations.duration_seconds(text)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def _load(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def _dump(data: Mapping[str, Any], source: Path) -> str:
    header = f"# Rendered by tooling.stackconfig from {source}; edit that file, not this one.\n"
    text = yaml.safe_dump(dict(data), sort_keys=False, width=1000, default_flow_style=False)
    return header + str(text)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# --- Prometheus --------------------------------------------------------------


def targets_for(
    host: str = "127.0.0.1",
    *,
    app_port: int = topology.APP_PORT,
    exporter_port: int = topology.EXPORTER_PORT,
    bridge_port: int = topology.BRIDGE_PORT,
    alertmanager_port: int = topology.ALERTMANAGER_PORT,
    prometheus_port: int = topology.PROMETHEUS_PORT,
) -> dict[str, list[str]]:
    """Every shipped scrape job on `host` with the given ports."""
    return {
        APP_JOB: [f"{host}:{app_port}"],
        EXPORTER_JOB: [f"{host}:{exporter_port}"],
        BRIDGE_JOB: [f"{host}:{bridge_port}"],
        ALERTMANAGER_JOB: [f"{host}:{alertmanager_port}"],
        PROMETHEUS_JOB: [f"{host}:{prometheus_port}"],
    }


def targets_for_settings(settings: Any) -> dict[str, list[str]]:
    """`targets_for` from a `common.settings.Settings` (host and the five ports)."""
    return targets_for(
        settings.host,
        app_port=settings.app_port,
        exporter_port=settings.exporter_port,
        bridge_port=settings.bridge_port,
        alertmanager_port=settings.alertmanager_port,
        prometheus_port=settings.prometheus_port,
    )


def render_prometheus_config(
    *,
    targets: Mapping[str, Sequence[str]] | None = None,
    alertmanagers: Sequence[str] | None = None,
    rule_files: Sequence[str | Path] | None = None,
    scrape_interval: str | None = None,
    evaluation_interval: str | None = None,
    scrape_timeout: str | None = None,
    external_labels: Mapping[str, str] | None = None,
    remote_write: Sequence[str] | None = None,
    source: Path = PROMETHEUS_CONFIG,
) -> str:
    """The shipped prometheus.yml with the given changes.

    targets: job name -> ["host:port", ...]. Given, it is the complete list of
      jobs: shipped jobs left out are dropped (a test scrapes only what it
      runs); unknown job names get a plain static scrape config.
    alertmanagers: ["host:port", ...]; [] removes alerting entirely.
    rule_files: default the shipped rule files (made absolute).
    scrape_timeout: default the shipped one, shortened to the scrape interval if longer.
    external_labels: set on everything this server sends; with REPLICA_LABEL among
      them it is one of an HA pair, and that label is dropped from alerts and writes.
    remote_write: URLs of long-term storage (VictoriaMetrics' /api/v1/write).
    """
    doc = _load(source)
    glob = doc.setdefault("global", {})
    if scrape_interval:
        duration_seconds(scrape_interval)
        glob["scrape_interval"] = scrape_interval
    if evaluation_interval:
        duration_seconds(evaluation_interval)
        glob["evaluation_interval"] = evaluation_interval
    if scrape_timeout:
        glob["scrape_timeout"] = scrape_timeout
    interval = glob.get("scrape_interval", "1m")
    if duration_seconds(str(glob.get("scrape_timeout", "10s"))) > duration_seconds(interval):
        glob["scrape_timeout"] = interval

    if rule_files is None:
        doc["rule_files"] = [str((source.parent / f).resolve()) for f in doc.get("rule_files", [])]
    else:
        doc["rule_files"] = [str(Path(f).resolve()) for f in rule_files]

    if external_labels:
        glob["external_labels"] = dict(external_labels)

    def drop_replica() -> list[dict[str, str]]:  # a fresh list each time: no YAML anchors
        return [{"action": "labeldrop", "regex": REPLICA_LABEL}]

    ha_pair = REPLICA_LABEL in glob.get("external_labels", {})

    if alertmanagers is not None:
        if alertmanagers:
            # Every Alertmanager of a cluster gets every alert, never through a load
            # balancer: the cluster de-duplicates notifications, not alerts.
            doc["alerting"] = {
                "alertmanagers": [{"static_configs": [{"targets": list(alertmanagers)}]}]
            }
        else:
            doc.pop("alerting", None)
    if ha_pair and "alerting" in doc:
        doc["alerting"]["alert_relabel_configs"] = drop_replica()

    if remote_write is not None:
        doc["remote_write"] = [
            {"url": url, **({"write_relabel_configs": drop_replica()} if ha_pair else {})}
            for url in remote_write
        ]

    if targets is not None:
        shipped = {job["job_name"]: job for job in doc.get("scrape_configs", [])}
        jobs = []
        for name, addresses in targets.items():
            job = dict(shipped.get(name, {"job_name": name}))
            job["static_configs"] = [{"targets": list(addresses)}]
            jobs.append(job)
        doc["scrape_configs"] = jobs
    return _dump(doc, source)


def write_prometheus_config(path: Path, **kwargs: Any) -> Path:
    return _write(path, render_prometheus_config(**kwargs))


# --- rules -------------------------------------------------------------------


def render_rules(
    for_: str | Mapping[str, str] | None = None,
    source: Path = RULES_FILE,
    *,
    recordings_only: bool = False,
    public_url: str | None = None,
    grafana_url: str | None = None,
) -> str:
    """The shipped rules with every alert's `for:` replaced, expressions untouched.

    for_: one duration for every alert that has a `for:`, or severity -> duration.
    recordings_only: drop the alerts (a stack whose test posts its own alerts still
      needs the recorded series that /analytics and the dashboards read).
    public_url: base of the runbook links (TRACETRACK_PUBLIC_URL: where the bridge's
      /runbook is reached); grafana_url: base of the dashboard links (GRAFANA_URL).
      Default: the shipped local addresses (tooling.rule_annotations).
    """
    for name, url in (("public_url", public_url), ("grafana_url", grafana_url)):
        if url is not None:
            _check_base_url(name, url)
    doc = _load(source)
    if recordings_only:
        for group in doc.get("groups", []):
            group["rules"] = [r for r in group.get("rules", []) if "record" in r]
        doc["groups"] = [g for g in doc.get("groups", []) if g["rules"]]
    for group in doc.get("groups", []):
        for rule in group.get("rules", []):
            if "alert" not in rule:
                continue
            rebase_links(rule, public_url, grafana_url)
            if "for" not in rule or for_ is None:
                continue
            if isinstance(for_, str):
                rule["for"] = for_
            else:
                severity = rule.get("labels", {}).get("severity")
                if severity in for_:
                    rule["for"] = for_[severity]
    return _dump(doc, source)


def write_rules(path: Path, for_: str | Mapping[str, str] | None = None, **options: Any) -> Path:
    """`render_rules` written to `path` (options: recordings_only, public_url, grafana_url)."""
    return _write(path, render_rules(for_, **options))


def external_url_args(url: str) -> list[str]:
    """Flags giving Prometheus or Alertmanager the URL people reach it at (the links in
    its alerts and notifications), while it keeps serving at the root locally (a
    reverse proxy strips any path prefix)."""
    _check_base_url("external URL", url)
    return [f"--web.external-url={url}", "--web.route-prefix=/"]


def _check_base_url(name: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(f"{name}: {url!r} is not an absolute http(s) base URL")


# --- Alertmanager -------------------------------------------------------------


def _walk_routes(route: dict[str, Any]) -> list[dict[str, Any]]:
    routes = [route]
    for child in route.get("routes", []) or []:
        routes.extend(_walk_routes(child))
    return routes


def render_alertmanager_config(
    *,
    bridge_url: str | None = None,
    credentials_file: str | Path | None = None,
    route_timings: Mapping[str, str] | None = None,
    bridge_urls: Sequence[str] | None = None,
    watchdog_timings: Mapping[str, str] | None = None,
    native_receivers: Mapping[str, Mapping[str, Any]] | None = None,
    source: Path = ALERTMANAGER_CONFIG,
) -> str:
    """The shipped alertmanager.yml with the given changes.

    bridge_url: `http://host:port` of the alert bridge; each webhook keeps its
      path (/alertmanager/critical, ...).
    bridge_urls: several bridge replicas on one outbox: each receiver posts to
      every one of them (each de-duplicates into the shared outbox), so any one
      alive is enough. Exclusive with bridge_url.
    credentials_file: file holding the bridge's bearer token; default the
      shipped one, made absolute.
    route_timings: group_wait / group_interval / repeat_interval set on every
      route (the root and each child), e.g. FAST_ROUTE_TIMINGS, except the
      Watchdog's: the dead man's switch counts on its shipped 10-20 s heartbeat.
    watchdog_timings: the same keys for the Watchdog's route alone.
    native_receivers: receiver name -> Alertmanager integrations (email_configs,
      slack_configs, ...) replacing that receiver's, e.g. `bridge-down` from
      alert_bridge.native_route (Alertmanager tells people when the bridge cannot).
    """
    doc = _load(source)
    if bridge_url and bridge_urls:
        raise ConfigError("give bridge_url or bridge_urls, not both")
    bases = [urlsplit(u) for u in (bridge_urls or ([bridge_url] if bridge_url else []))]
    for base in bases:
        if base.scheme not in ("http", "https") or not base.netloc:
            field = "bridge_urls" if bridge_urls else "bridge_url"
            raise ConfigError(f"{field} must be http(s)://host:port, got {base.geturl()!r}")
    for receiver in doc.get("receivers", []):
        hooks = receiver.get("webhook_configs", []) or []
        if bases:
            receiver["webhook_configs"] = hooks = [
                _at_bridge(hook, base) if _is_bridge_hook(hook) else hook
                for hook in hooks
                for base in (bases if _is_bridge_hook(hook) else bases[:1])
            ]
        for hook in hooks:
            auth = hook.get("http_config", {}).get("authorization")
            if auth is None:
                continue
            if credentials_file is not None:
                auth["credentials_file"] = str(Path(credentials_file).resolve())
            elif "credentials_file" in auth:
                auth["credentials_file"] = str((source.parent / auth["credentials_file"]).resolve())
    receivers = {r["name"]: r for r in doc.get("receivers", [])}
    for name, integrations in (native_receivers or {}).items():
        if name not in receivers:
            raise ConfigError(f"{source}: no receiver named {name!r} to fill")
        receivers[name].clear()
        receivers[name].update({"name": name, **dict(integrations)})
    for name, timings in (("route_timings", route_timings), ("watchdog_timings", watchdog_timings)):
        unknown = set(timings or ()) - set(ROUTE_TIMING_KEYS)
        if unknown:
            raise ConfigError(
                f"{name}: unknown keys {sorted(unknown)} (allowed: {ROUTE_TIMING_KEYS})"
            )
        for value in (timings or {}).values():
            duration_seconds(value)
    for route in _walk_routes(doc["route"]):
        is_watchdog = route.get("receiver") == WATCHDOG_RECEIVER
        route.update((watchdog_timings if is_watchdog else route_timings) or {})
    return _dump(doc, source)


def _is_bridge_hook(hook: Mapping[str, Any]) -> bool:
    return urlsplit(str(hook.get("url", ""))).path.startswith(BRIDGE_PATH_PREFIX)


def _at_bridge(hook: Mapping[str, Any], base: Any) -> dict[str, Any]:
    """A copy of `hook` posting to the same path on another bridge."""
    url = urlsplit(hook["url"])
    out = copy.deepcopy(dict(hook))
    out["url"] = urlunsplit((base.scheme, base.netloc, url.path, url.query, url.fragment))
    return out


def write_alertmanager_config(path: Path, **kwargs: Any) -> Path:
    """Owner-only: with native receivers it holds webhook URLs, which are their secret."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".new")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(render_alertmanager_config(**kwargs))
    os.replace(tmp, path)
    return path


def webhook_paths(source: Path = ALERTMANAGER_CONFIG) -> dict[str, str]:
    """Receiver name -> the bridge path it posts to."""
    doc = _load(source)
    return {
        r["name"]: urlsplit(hook["url"]).path
        for r in doc.get("receivers", [])
        for hook in r.get("webhook_configs", []) or []
    }
