"""The live pipeline for security: a brute-force run against the real app fires the
failed-login alert in the real Prometheus (shipped rules, `for:` shortened), and
Alertmanager (shipped routes, fast timings) delivers it on the bridge's warning path."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.test_alerting_integration import Stack, stack  # noqa: F401 - the fixture
from tooling.procs import wait_until

ALERT = "TraceTrackLoginFailuresHigh"


def test_brute_force_fires_the_failed_login_alert_at_the_bridge(stack: Stack) -> None:  # noqa: F811
    # Let Prometheus see the counters at 0 first, so the burst is an increase.
    wait_until(
        lambda: bool(stack.prometheus.query("tracetrack_login_failures_total")),
        20,
        "the login failure counters in Prometheus",
    )

    # 200 wrong passwords as fast as the app answers (the 8.5 s attack): the
    # account and then the address lock out, and every attempt is counted.
    def attempt(i: int) -> int:
        with httpx.Client(base_url=stack.app_url, timeout=30) as c:
            body = {"username": "root", "password": f"guess-{i:04d}"}
            return c.post("/api/auth/login", json=body).status_code

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(attempt, range(200)))
    assert set(answers) <= {401, 429} and answers.count(429) >= 150, answers

    firing = stack.alertmanager.wait_for_alert(ALERT, timeout=60, severity="warning")
    assert firing["labels"]["job"] == "tracetrack-app"
    assert "instance" not in firing["labels"]  # one page for the attack, all replicas
    ann = firing["annotations"]
    assert ann["threshold"] == "> 20 per minute, for 1m"
    assert ann["value"].endswith("per minute") and float(ann["value"].split()[0]) > 20
    assert ann["runbook_url"].endswith("/runbook#tracetrackloginfailureshigh")
    assert "/d/tracetrack-security?viewPanel=" in ann["dashboard_url"]
    wait_until(
        lambda: bool(stack.deliveries("/alertmanager/warning", ALERT)),
        30,
        "the failed-login warning at the bridge's warning path",
    )
    delivered = stack.deliveries("/alertmanager/warning", ALERT)[0]
    alert = next(a for a in delivered["alerts"] if a["labels"]["alertname"] == ALERT)
    assert alert["status"] == "firing" and alert["annotations"]["summary"].startswith(
        "Failed logins above the warning threshold (> 20 per minute)"
    )
