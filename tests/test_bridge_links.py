"""Every link a page carries opens on the phone it pages, in docker-compose too.

docker-compose's Prometheus loads the committed rules file, whose runbook and Grafana
links keep their placeholder bases (127.0.0.1); the bridge rebuilds them at
notification time from its public URL and GRAFANA_URL (alert_bridge/links.py) and
leaves out a link no phone can open. Here a bridge runs with docker-compose.yml's own
environment (only stores, token and sinks are this machine's), gets every shipped
rule as Prometheus and Alertmanager would fill it under compose's external URLs, and
what arrives on every channel, and the notification pages, may link only to the
public hosts; the page and runbook links then open through the load balancer's
`oncall` frontend, which compose publishes and TRACETRACK_PUBLIC_URL names.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import pytest

from alert_bridge.links import Links
from common.links import is_loopback
from tests.support import composefile, rulealerts
from tests.support.bridgekit import (
    InProcessBridge,
    bridge_env,
    recipients_for,
    write_alert_config,
)
from tests.support.hakit import start_haproxy
from tooling.procs import free_port

if TYPE_CHECKING:
    from tests.support.sinks import SmtpSink, TwilioSink, WebhookSink

PUBLIC = "https://oncall.example.com"
GRAFANA = "https://grafana.example.com"
PROMETHEUS = "https://prometheus.example.com"
ALERTMANAGER = "https://alertmanager.example.com"
URL = re.compile(r"https?://[^\s\"'<>|)\]]+")


def test_links_are_rebased_to_the_deployment_or_left_out() -> None:
    links = Links(PUBLIC, GRAFANA)
    assert links.runbook("http://127.0.0.1:9818/runbook#x", "X") == f"{PUBLIC}/runbook#x"
    assert links.runbook("https://wiki.example.com/x", "X") == "https://wiki.example.com/x"
    # A rules file rendered for this machine: the bridge's own runbook section instead.
    assert links.runbook("http://localhost:9818/runbook#a", "TraceTrackA") == (
        f"{PUBLIC}/runbook#tracetracka"
    )
    assert links.runbook("", "X") == ""
    assert links.dashboard("http://127.0.0.1:3000/d/a?viewPanel=1") == f"{GRAFANA}/d/a?viewPanel=1"
    assert links.other("http://localhost:9090/graph?g0.expr=up") == ""
    assert links.other(f"{PROMETHEUS}/graph?g0.expr=up") == f"{PROMETHEUS}/graph?g0.expr=up"
    # Only the placeholder base itself is swapped, not a longer port that starts like it.
    assert links.other("http://127.0.0.1:98180/x") == ""
    assert Links(PUBLIC, None).dashboard("http://127.0.0.1:3000/d/a") == ""  # no GRAFANA_URL
    # On a laptop (the bridge itself on loopback) every link opens: all are kept.
    laptop = Links("http://127.0.0.1:9818", None)
    assert laptop.other("http://localhost:9090/graph") == "http://localhost:9090/graph"
    assert laptop.dashboard("http://127.0.0.1:3000/d/a") == "http://127.0.0.1:3000/d/a"
    assert is_loopback("http://[::1]:9090/") and is_loopback("http://app.localhost/")
    assert not is_loopback("https://oncall.example.com/n/x")


def _flag(service: dict[str, Any], flag: str, env: dict[str, str]) -> str:
    (value,) = [
        str(a).split("=", 1)[1] for a in service["command"] if str(a).startswith(flag + "=")
    ]
    return str(composefile.interpolate(value, env))


def _texts(smtp: SmtpSink, twilio: TwilioSink, hooks: WebhookSink) -> list[str]:
    """Everything that arrived, as text: SMS, both parts of every email, every webhook."""
    out = [m["Body"] for m in twilio.messages()]
    for mail in smtp.messages():
        for part in ("plain", "html"):
            body = mail.message.get_body((part,))
            if body is not None:
                out.append(body.get_content())
    out += [str(b) for b in hooks.bodies()]
    return out


@pytest.mark.parametrize(
    "operator_env",
    [
        {"GRAFANA_URL": GRAFANA, "PROMETHEUS_EXTERNAL_URL": PROMETHEUS},
        {},  # only the required TRACETRACK_PUBLIC_URL: Grafana and Prometheus stay local
    ],
    ids=["every-url-set", "only-the-required-one"],
)
def test_every_link_a_page_carries_under_the_compose_settings_opens_on_a_phone(
    tmp_path: Path,
    smtp_sink: SmtpSink,
    twilio_sink: TwilioSink,
    webhook_sink: WebhookSink,
    operator_env: dict[str, str],
) -> None:
    compose = composefile.load()
    services = compose["services"]
    env_in = {
        **composefile.REQUIRED_ENV,
        "TRACETRACK_PUBLIC_URL": PUBLIC,
        "ALERTMANAGER_EXTERNAL_URL": ALERTMANAGER,
        **operator_env,
    }
    compose_env = composefile.interpolate(services["bridge-1"]["environment"], env_in)
    compose_env.pop("BRIDGE_AUTH_TOKEN_FILE")  # the test's token instead of the secret
    cfg = write_alert_config(
        tmp_path / "alert_config.py", recipients_for(smtp_sink, twilio_sink, webhook_sink)
    )
    # Compose's settings, with this machine's outbox, token and sinks.
    env = {**compose_env, **bridge_env(tmp_path, cfg, smtp_sink, twilio_sink, webhook_sink)}
    generator = _flag(services["prometheus-1"], "--web.external-url", env_in)
    external = _flag(services["alertmanager-1"], "--web.external-url", env_in)
    # The rules file compose mounts, as it is.
    (rules_mount,) = [v for v in services["prometheus-1"]["volumes"] if "rules.yml" in v]
    rules = rulealerts.shipped_alert_rules(
        (composefile.COMPOSE_FILE.parent / rules_mount.split(":")[0]).read_text()
    )
    public_hosts = {urlsplit(u).hostname for u in (PUBLIC, ALERTMANAGER, *operator_env.values())}

    with InProcessBridge(env) as b:
        lb = start_haproxy(
            tmp_path / "lb",
            servers={"app-1": f"127.0.0.1:{free_port()}"},
            bridges={"bridge-1": f"127.0.0.1:{b.port}"},
        )
        try:
            for rule in rules:
                payload = rulealerts.payload_for(rule, 2, "firing", generator, external)
                assert b.post(rule["labels"]["severity"], payload).status_code == 200
            b.wait_settled(60)
            texts = _texts(smtp_sink, twilio_sink, webhook_sink)
            assert len(twilio_sink.messages()) == sum(
                r["labels"]["severity"] == "critical" for r in rules
            )
            urls = {u.rstrip(".,;") for t in texts for u in URL.findall(t)}
            pages = {u for u in urls if u.startswith(f"{PUBLIC}/n/")}
            assert len(pages) == len(rules)
            with httpx.Client(timeout=10) as http:
                for page in pages:  # what a phone opens, and every link on it
                    answer = http.get(page.replace(PUBLIC, lb.bridge_url))
                    assert answer.status_code == 200, (page, answer.text[:300])
                    urls |= set(URL.findall(answer.text))
                runbook = http.get(f"{lb.bridge_url}/runbook")
                assert runbook.status_code == 200
                # The load balancer passes only what phones open, not the intake.
                intake = http.post(f"{lb.bridge_url}/alertmanager/critical", json={})
                assert intake.status_code == 404
                assert http.get(f"{lb.bridge_url}/notifications").status_code == 404
            broken = sorted(u for u in urls if urlsplit(u).hostname not in public_hosts)
            assert not broken, broken[:10]
            assert not [u for u in urls if is_loopback(u)]
            anchors = set(re.findall(r'id="([^"]+)"', runbook.text))
            for rule in rules:
                link = f"{PUBLIC}/runbook#{rule['alert'].lower()}"
                assert link in urls, link
                assert rule["alert"].lower() in anchors, rule["alert"]
            if "GRAFANA_URL" in operator_env:
                dashboards = {u for u in urls if u.startswith(f"{GRAFANA}/d/")}
                with_panel = [r for r in rules if "dashboard_url" in r["annotations"]]
                assert with_panel and len(dashboards) >= len(
                    {r["annotations"]["dashboard_url"] for r in with_panel}
                )
                assert any(u.startswith(f"{PROMETHEUS}/graph") for u in urls)
            else:  # left out rather than sent broken
                assert not [u for u in urls if "/d/tracetrack-" in u or "/graph?" in u]
        finally:
            lb.proc.stop()
