"""/analytics/dashboard in a real browser (Debian's headless Chromium): an admin logs
in through the form and sees the four sections with live values from the running
stack and the recent alerts colour-coded by severity, checked in the DOM and in the
screenshot's pixels."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.support import png
from tests.support.appkit import PASSWORD, add_user, app_settings, auth, token
from tests.support.chromium import Browser
from tests.support.livestack import LiveStack, drive_traffic, start_live_stack
from tooling.pgserver import PostgresServer

SECTIONS = {
    "system": "System metrics",
    "performance": "Performance metrics",
    "business": "Business metrics",
    "security": "Security",
    "alerts": "Recent alerts",
}
CARDS = {
    "system": ["cpu_usage", "memory_usage", "disk_usage", "db_connections"],
    "performance": [
        "avg_response_time",
        "p95_response_time",
        "requests_per_minute",
        "error_rate",
        "cache_hit_rate",
    ],
    "business": ["total_bags", "active_users", "scans_today", "bills_today"],
    "security": [
        "login_failures_per_minute",
        "account_lockouts_last_15m",
        "rate_limited_per_minute",
        "suspicious_scans_last_15m",
        "injection_attempts_last_15m",
        "blocked_requests_per_minute",
        "blocked_clients",
    ],
}
# The page's CSS colours (app/analytics/templates/_head.html).
COLOURS = {
    "ok": (0x2E, 0x7D, 0x32),
    "warning": (0xEF, 0x6C, 0x00),
    "critical": (0xC6, 0x28, 0x28),
    "info": (0x15, 0x65, 0xC0),
}


@pytest.fixture(scope="module")
def stack(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStack]:
    s = start_live_stack(
        tmp_path_factory.mktemp("page"),
        postgres.create_database("page_live"),
        app_env={"ANALYTICS_CACHE_TTL_SECONDS": "1"},
    )
    try:
        drive_traffic(s)
        s.post_alert("Watchdog", "info", "Alerting pipeline heartbeat (always firing)")
        for severity, name in [
            ("info", "NightlyVacuumDue"),
            ("warning", "HighCPUUsage"),
            ("critical", "HighErrorRate"),
        ]:
            s.post_alert(name, severity, f"{name} on the live stack", instance="app-1")
            time.sleep(1.1)  # distinct start times: newest first on the page
        yield s
    finally:
        s.stop()


@pytest.fixture()
def browser(tmp_path: Path) -> Iterator[Browser]:
    b = Browser(tmp_path).start()
    try:
        yield b
    finally:
        b.stop()


def cards(browser: Browser) -> dict[str, dict[str, Any]]:
    return {
        c["metric"]: c
        for c in browser.evaluate("""
        [...document.querySelectorAll('.card')].map(c => ({
            metric: c.dataset.metric, value: c.dataset.value, status: c.dataset.status,
            section: c.closest('section').id, text: c.querySelector('.value').textContent,
            rect: c.getBoundingClientRect().toJSON()}))""")
    }


def test_an_admin_sees_live_values_and_coloured_alerts(
    stack: LiveStack, browser: Browser, tmp_path: Path
) -> None:
    page = f"{stack.app_url}/analytics/dashboard"
    browser.navigate(page)
    assert browser.url() == f"{stack.app_url}/analytics/login", "no session: the login form"
    browser.submit_form({"username": "admin", "password": PASSWORD})
    assert browser.url() == page

    # Prometheus needs a few scrapes after the traffic: reload until every card has a value.
    deadline = time.monotonic() + 40
    while True:
        found = cards(browser)
        missing = [m for m, c in found.items() if not c["value"]]
        business = {
            m: float(c["value"] or 0) for m, c in found.items() if c["section"] == "business"
        }
        if (
            not missing and business.get("total_bags") == 20 and business.get("scans_today") == 10
        ) or time.monotonic() > deadline:
            break
        time.sleep(1)
        browser.navigate(page)
    assert not missing, f"cards without a live value: {missing}"

    # The four sections, in order, with their cards.
    sections = browser.evaluate(
        "[...document.querySelectorAll('main > section')].map(s => [s.id, s.querySelector('h2').textContent])"
    )
    assert [s[0] for s in sections] == list(SECTIONS)
    for sid, title in sections:
        assert title.startswith(SECTIONS[sid])
    for section, metrics in CARDS.items():
        assert [m for m, c in found.items() if c["section"] == section] == metrics
    assert found["total_bags"]["text"] == "20"
    assert found["scans_today"]["text"] == "10"
    assert found["bills_today"]["text"] == "2"
    assert found["error_rate"]["text"] == "0.0 %" and found["error_rate"]["status"] == "ok"
    assert float(found["requests_per_minute"]["value"]) > 0
    assert found["active_users"]["status"] == "ok"
    # Security: real zeros from counters that start at 0 (not a query's `or vector(0)`),
    # judged against the security alerts' limits.
    assert found["login_failures_per_minute"]["text"] == "0.0 /min"
    assert found["login_failures_per_minute"]["status"] == "ok"
    assert found["injection_attempts_last_15m"]["status"] == "ok"

    # The last alerts, newest first, the Watchdog heartbeat left out.
    alerts = browser.evaluate("""
        [...document.querySelectorAll('#alerts li.alert')].map(a => ({
            severity: a.dataset.severity, text: a.textContent,
            background: getComputedStyle(a).backgroundColor,
            rect: a.getBoundingClientRect().toJSON()}))""")
    assert [a["severity"] for a in alerts] == ["critical", "warning", "info"]
    assert "HighErrorRate" in alerts[0]["text"] and "Watchdog" not in str(alerts)
    assert [a["background"] for a in alerts] == [
        f"rgb({r}, {g}, {b})" for r, g, b in (COLOURS[s] for s in ("critical", "warning", "info"))
    ]

    # What was painted: the screenshot's pixels.
    shot = browser.screenshot()
    (tmp_path / "analytics-dashboard.png").write_bytes(shot)
    image = png.decode(shot)
    for a in alerts:
        x, y = int(a["rect"]["left"]) + 4, int(a["rect"]["top"] + a["rect"]["height"] / 2)
        assert close(image.pixel(x, y), COLOURS[a["severity"]]), (a["severity"], image.pixel(x, y))
    for metric, c in found.items():
        # The 6-pixel left border carries the threshold status (blue without a threshold).
        expected = COLOURS.get(c["status"], COLOURS["info"])
        x, y = int(c["rect"]["left"]) + 2, int(c["rect"]["top"] + c["rect"]["height"] / 2)
        assert close(image.pixel(x, y), expected), (metric, c["status"], image.pixel(x, y))
    # The page is painted, not blank: white section boxes on the grey background.
    assert image.pixel(5, image.height - 5) != image.pixel(
        30, int(found["cpu_usage"]["rect"]["top"]) - 20
    )
    dark_text = sum(
        1
        for y in range(0, image.height, 4)
        for x in range(0, image.width, 4)
        if sum(image.pixel(x, y)) < 150
    )
    assert dark_text > 500, "too little text was painted"


def close(got: tuple[int, int, int], want: tuple[int, int, int], tolerance: int = 12) -> bool:
    return all(abs(g - w) <= tolerance for g, w in zip(got, want, strict=True))


def test_with_grafana_configured_the_page_redirects_there(
    database_url: str, tmp_path: Path
) -> None:
    add_user(database_url, "admin", "admin")
    settings = app_settings(
        database_url, tmp_path, grafana_url="https://grafana.example.com/", metrics_enabled=False
    )
    with TestClient(create_app(settings)) as c:
        r = c.get("/analytics/dashboard", headers=auth(token(c, "admin")), follow_redirects=False)
    assert r.status_code == 307
    assert r.headers["location"] == "https://grafana.example.com/dashboards/f/tracetrack/"
