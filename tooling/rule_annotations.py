"""The annotations every alerting rule carries, built in one place.

Every rule family (thresholds, availability, security, SLO, cause alerts, ...) calls
`alert_annotations()` so a notification can always say what broke, where, how bad (the
current value next to its threshold) and link somewhere that opens on a phone:

    summary        one line: what and where ("Error rate above ... on app-1:8000")
    description    the longer story, with the value
    value          the current value, humanized with its unit ("7.1%", "6.2s", "241")
    threshold      the limit it is compared with, as people read it ("> 5 %")
    runbook_url    absolute: <public URL>/runbook#<alert name, lowercased>
    dashboard_url  absolute: <Grafana>/d/<uid>?viewPanel=<id>, the panel that shows it

The links are rendered with placeholder bases (the bridge and Grafana on 127.0.0.1,
common/links.py) into the committed `prometheus/rules.yml`. The alert bridge swaps
them for the deployment's when it renders a notification (its public URL,
`GRAFANA_URL`), so a Prometheus loading the committed file verbatim (docker-compose,
your own) still pages with working links; `tooling.stackconfig.render_rules` swaps
them in the file itself (`tracetrack up`), as kubernetes-mixin's `runbookURLPattern`
does. The bridge serves the runbook as HTML at `/runbook`, one anchor per alert, and
adds the time range around the alert's start to the dashboard link.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from common.links import DEFAULT_GRAFANA_URL, DEFAULT_PUBLIC_URL, RUNBOOK_PATH, rebase
from tooling.checkout import ROOT

# Read while generating the rules, from the checkout.
DASHBOARDS_DIR = ROOT / "grafana" / "dashboards"

# How `$value` is shown, per unit.
VALUE_TEMPLATE = {
    "seconds": "{{ $value | humanizeDuration }}",
    "ratio": "{{ $value | humanizePercentage }}",
    "count": '{{ $value | printf "%.0f" }}',
    "raw": "{{ $value }}",
}

ANNOTATION_KEYS = ("summary", "description", "value", "threshold", "runbook_url", "dashboard_url")


def anchor(alertname: str) -> str:
    """The runbook heading's anchor: the heading is the alert name, lowercased."""
    return alertname.lower()


def runbook_url(alertname: str, public_url: str = DEFAULT_PUBLIC_URL) -> str:
    return f"{public_url.rstrip('/')}{RUNBOOK_PATH}#{anchor(alertname)}"


@cache
def _panels(uid: str) -> dict[str, int]:
    path = DASHBOARDS_DIR / f"{uid.removeprefix('tracetrack-')}.json"
    data = json.loads(path.read_text())
    if data.get("uid") != uid:
        raise ValueError(f"{path}: uid is {data.get('uid')!r}, expected {uid!r}")
    # A title can name a stat and a graph; the graph shows the history around the start.
    ids: dict[str, int] = {}
    for panel in sorted(data["panels"], key=lambda p: p.get("type") != "timeseries"):
        ids.setdefault(panel["title"], int(panel["id"]))
    return ids


def dashboard_url(uid: str, panel: str, grafana_url: str = DEFAULT_GRAFANA_URL) -> str:
    """The dashboard with `panel` opened full screen (Grafana's `viewPanel`)."""
    panels = _panels(uid)
    if panel not in panels:
        raise ValueError(f"dashboard {uid} has no panel titled {panel!r}: {sorted(panels)}")
    return f"{grafana_url.rstrip('/')}/d/{uid}?viewPanel={panels[panel]}"


def value_of(unit: str) -> str:
    """The `value` annotation for a rule whose expression's value has this unit."""
    return VALUE_TEMPLATE[unit]


def alert_annotations(
    alertname: str,
    *,
    summary: str,
    description: str,
    value: str | None = None,
    threshold: str | None = None,
    dashboard: tuple[str, str] | None = None,
) -> dict[str, str]:
    """The annotation block of one alerting rule.

    value: a Prometheus template, usually `value_of(unit)`; None only where the
      expression has no meaningful value (the always-firing Watchdog).
    threshold: the human limit (`> 5 %`, `== 0`); None where there is none.
    dashboard: (dashboard uid, panel title) of the panel that shows the problem.
    """
    out = {"summary": summary, "description": description}
    if value is not None:
        out["value"] = value
    if threshold is not None:
        out["threshold"] = threshold
    out["runbook_url"] = runbook_url(alertname)
    if dashboard is not None:
        out["dashboard_url"] = dashboard_url(*dashboard)
    return out


def rebase_links(rule: dict[str, Any], public_url: str | None, grafana_url: str | None) -> None:
    """Point a rendered rule's links at the deployment's URLs instead of the defaults."""
    ann = rule.get("annotations") or {}
    swaps = (
        ("runbook_url", DEFAULT_PUBLIC_URL, public_url),
        ("dashboard_url", DEFAULT_GRAFANA_URL, grafana_url),
    )
    for key, default, new in swaps:
        url = ann.get(key)
        if isinstance(url, str):
            ann[key] = rebase(url, default, new)
