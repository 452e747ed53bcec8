"""The daily and weekly reports against eight days of known history: a real Prometheus
over backfilled blocks (promtool tsdb create-blocks-from openmetrics), the bridge's own
store holding a known alert history, and `tracetrack report` run as a user runs it.
report.json is checked against the truth, the charts are decoded, the PDF is read back
with pdftotext."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from statistics import median
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from common import slo
from reports.generate import generate
from reports.history import AlertInstance, apply_acks
from reports.mail import send_report
from reports.period import parse_day, period_containing
from reports.reporter import Reporter
from reports.settings import ReportSettings
from tests.support import history as h
from tests.support.appkit import add_user, app_settings, auth, token
from tests.support.png import decode
from tests.support.sinks import SmtpSink
from tooling.procs import TRACETRACK, require_binary


@dataclass
class Env:
    prometheus_url: str
    store_url: str
    root: Path

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        full = {
            **os.environ,
            "PROMETHEUS_URL": self.prometheus_url,
            "BRIDGE_DATABASE_URL": self.store_url,
            "TRACETRACK_VAR_DIR": str(self.root / "var"),
            "TRACETRACK_TIMEZONE": "UTC",
            **env,
        }
        return subprocess.run(
            [TRACETRACK, "report", *args], capture_output=True, text=True, env=full, timeout=300
        )

    def report(self, kind: str, at: str) -> tuple[Path, dict[str, Any]]:
        out = self.root / f"{kind}-{at}"
        if not (out / "report.json").exists():
            result = self.run(kind, "--at", at, "--out", str(out))
            assert result.returncode == 0, result.stdout + result.stderr
        return out, json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("reports")
    proc, url = h.start_prometheus(root / "prometheus")
    store = f"sqlite:///{root / 'bridge.sqlite3'}"
    h.fill_alert_history(store)
    try:
        yield Env(url, store, root)
    finally:
        proc.stop()


def value(report: dict[str, Any], section: str, key: str) -> Any:
    return report[section][key]["value"]


# --- daily ------------------------------------------------------------------------------


def test_daily_report_of_the_incident_day_matches_the_truth(env: Env) -> None:
    _, r = env.report("daily", "2025-03-05")
    day, end = h.INCIDENT_DAY, h.INCIDENT_DAY + timedelta(days=1)
    assert r["period"] == "2025-03-05" and r["kind"] == "daily"
    assert value(r, "slo", "availability") == pytest.approx(h.availability(day, end), abs=1e-4)
    assert r["slo"]["met"] is False
    # The 30-day budget at the end of the day: all history so far (three and a bit days).
    budget = 1 - (1 - h.availability(h.START, end)) / slo.BUDGET
    assert value(r, "slo", "budget_remaining") == pytest.approx(budget, abs=0.05)
    by_route = r["performance"]["by_route"]
    assert by_route[h.BAG]["p95"] == pytest.approx(h.quantile_of(h.FAST, 0.95), rel=1e-6)
    assert by_route[h.SEARCH]["p95"] == pytest.approx(h.quantile_of(h.SEARCH_DIST, 0.95), rel=1e-6)
    assert value(r, "business", "scans") == pytest.approx(
        h.total_when_up(h.scans_per_step, day, end)
    )
    assert value(r, "users", "logins") == pytest.approx(
        h.total_when_up(lambda t: h.LOGIN_PER_STEP, day, end)
    )
    assert value(r, "system", "cpu_peak") == pytest.approx(0.60)
    assert value(r, "system", "db_connections_peak") == pytest.approx(h.connections_peak_on(3) + 10)
    assert value(r, "users", "active_users_peak") == pytest.approx(h.users_peak_on(3))
    alerts = r["alerts"]
    assert alerts["fired_by_severity"] == {"critical": 2, "warning": 0, "info": 0}
    assert alerts["longest"]["alert"] == "TraceTrackErrorRateHigh"
    assert alerts["longest"]["seconds"] == pytest.approx(90 * 60)
    assert value(r, "alerts", "time_to_resolve_max") == pytest.approx(90 * 60)
    # Acknowledged on the notification pages 4 and 2 minutes after they fired.
    acked = h.ACK_SECONDS["incident"]
    assert value(r, "alerts", "acknowledged") == len(acked)
    assert value(r, "alerts", "time_to_acknowledge_median") == pytest.approx(median(acked))
    assert value(r, "alerts", "time_to_acknowledge_max") == pytest.approx(max(acked))


def test_daily_report_of_the_slow_day_shows_the_latency_and_cpu(env: Env) -> None:
    _, r = env.report("daily", "2025-03-07")
    assert r["performance"]["by_route"][h.BAG]["p95"] == pytest.approx(
        h.quantile_of(h.SLOW, 0.95), rel=0.02
    )
    assert value(r, "system", "cpu_peak") == pytest.approx(0.85)
    assert r["system"]["cpu_peak"]["status"] == "warning"
    assert r["slo"]["met"] is True
    assert r["alerts"]["fired_by_severity"]["warning"] == 4
    # One flap acknowledged while it fired; the acknowledgement made after it resolved
    # and before the next flap acknowledges none of them.
    assert value(r, "alerts", "acknowledged") == len(h.ACK_SECONDS["slow"])
    assert value(r, "alerts", "time_to_acknowledge_median") == pytest.approx(
        median(h.ACK_SECONDS["slow"])
    )


def test_the_pdf_carries_the_headline_figures(env: Env) -> None:
    out, r = env.report("daily", "2025-03-05")
    text = subprocess.run(
        [require_binary("pdftotext"), "-layout", str(out / "report.pdf"), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Daily report for Wednesday 05 March 2025" in text
    availability = value(r, "slo", "availability") * 100
    assert f"{availability:.3f} % (missed)" in text
    assert "Error budget left (30 days)" in text
    assert "TraceTrackErrorRateHigh" in text
    assert "Scans" in text and f"{value(r, 'business', 'scans'):,.0f}" in text


def test_charts_are_real_non_blank_pngs_in_the_html_and_on_disk(env: Env) -> None:
    out, _ = env.report("daily", "2025-03-05")
    pngs = sorted((out / "charts").glob("*.png"))
    assert [p.name for p in pngs] == ["latency.png", "scans.png", "system.png", "traffic.png"]
    for path in pngs:
        img = decode(path.read_bytes())
        assert img.width >= 600 and img.height >= 200, path.name
        colours = {img.pixel(x, y) for y in range(0, img.height, 4) for x in range(0, img.width, 4)}
        # A blank or single-colour image has one or two; a drawn chart has lines, text, bars.
        assert len(colours) > 20, (path.name, len(colours))
    html = (out / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') == len(pngs)
    assert "<script" not in html  # email-safe: no scripts, inline styles only


# --- weekly -----------------------------------------------------------------------------


def test_weekly_capacity_planning_finds_the_days_until_full(env: Env) -> None:
    _, r = env.report("weekly", "2025-03-05")
    assert r["period"] == "2025-W10"
    cap = {c["label"]: c for c in r["capacity"]}
    end_day = h.day_of(h.END)
    disk = cap["Disk / full"]
    truth_disk = (1 - (h.DISK_AT_START + h.DISK_PER_DAY * end_day)) / h.DISK_PER_DAY
    assert disk["days_until_limit"] == pytest.approx(truth_disk, rel=0.10)
    bags = cap["Bags at 5,000,000"]
    truth_bags = (5_000_000 - (h.BAGS_AT_START + h.BAGS_PER_DAY * end_day)) / h.BAGS_PER_DAY
    assert bags["days_until_limit"] == pytest.approx(truth_bags, rel=0.10)
    conns = cap["Database connections (peak) at 240"]
    peak_now = h.connections_peak_on(7) + 10
    assert conns["days_until_limit"] == pytest.approx((240 - peak_now) / 5, rel=0.10)
    db = cap["Database size"]
    assert db["growth_per_day"] == pytest.approx(h.DB_SIZE_PER_DAY, rel=0.01)
    assert db["days_until_limit"] is None and "no limit set" in db["note"]


def test_weekly_alert_patterns_name_the_noisy_flapping_self_resolving_alert(env: Env) -> None:
    _, r = env.report("weekly", "2025-03-05")
    p = r["alert_patterns"]
    assert p["noisiest"][0] == {"alert": "TraceTrackCPUUsageHigh", "fired": 4}
    assert [f["alert"] for f in p["flapping"]] == ["TraceTrackCPUUsageHigh"]
    assert p["self_resolving"] == [
        {"alert": "TraceTrackCPUUsageHigh", "resolved_within_minutes": 4, "of": 4}
    ]
    assert sum(p["by_hour_of_day"]) == 7 and p["by_hour_of_day"][12] == 3
    week = [*h.ACK_SECONDS["incident"], *h.ACK_SECONDS["slow"]]
    assert value(r, "alerts", "acknowledged") == len(week)
    assert value(r, "alerts", "time_to_acknowledge_median") == pytest.approx(median(week))


def test_an_acknowledgement_counts_for_the_instances_of_its_group_firing_then() -> None:
    def inst(group: str, starts: float, ends: float | None) -> AlertInstance:
        return AlertInstance("A", "critical", f"{group}{starts}", {}, starts, ends, None, {group})

    early, late, open_, other = (
        inst("g", 100, 200),
        inst("g", 300, 400),
        inst("g", 500, None),
        inst("h", 100, 200),
    )
    apply_acks([early, late, open_, other], [("g", 50), ("g", 150), ("g", 250), ("g", 600)])
    assert early.acknowledged_at == 150  # not the one before it fired
    assert late.acknowledged_at is None  # 250 came before it, 600 after it ended
    assert open_.acknowledged_at == 600  # still firing
    assert other.acknowledged_at is None  # another group's


def test_weekly_trends_and_suggestions_come_from_the_numbers(env: Env) -> None:
    _, r = env.report("weekly", "2025-03-05")
    trends = {t["label"]: t for t in r["trends"]}
    week = h.availability(h.WEEK_START, h.END)
    assert trends["Availability"]["this_week"] == pytest.approx(week, abs=1e-4)
    assert trends["Availability"]["verdict"] == "worse"
    # Last week has one day of history: per-day figures compare like with like.
    scans = trends["Scans per day"]
    assert scans["last_week"] == pytest.approx(scans["this_week"], rel=0.02)
    slow_day = r["p95_by_day"]["this_week"][4]
    assert slow_day == pytest.approx(h.quantile_of(h.SLOW, 0.95), rel=0.05)
    topics = {s["topic"]: s["because"] for s in r["suggestions"]}
    assert topics["Dead rows"].startswith("table bags: 30 % dead rows")
    assert "last vacuumed" in topics["Missing vacuum"]


def test_weekly_pdf_and_charts(env: Env) -> None:
    out, r = env.report("weekly", "2025-03-05")
    text = subprocess.run(
        [require_binary("pdftotext"), str(out / "report.pdf"), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for phrase in ("Trend analysis", "Capacity planning", "Alert pattern analysis", "42 days"):
        assert phrase in text, phrase
    assert len(list((out / "charts").glob("*.png"))) == 6


# --- no data and bad input ---------------------------------------------------------------


def test_a_period_without_data_says_no_data_never_zero(env: Env) -> None:
    out, r = env.report("daily", "2024-01-10")
    assert value(r, "slo", "availability") is None
    assert value(r, "performance", "p95") is None
    assert value(r, "business", "scans") is None
    assert r["slo"]["met"] is None
    html = (out / "report.html").read_text()
    assert "no data" in html
    # The store exists and has nothing for that day: zero alerts is the truth there.
    assert r["alerts"]["fired"]["value"] == 0


@pytest.mark.parametrize("text", ["9999-12-31", "0001-01-01", "1969-12-31"])
def test_a_day_no_period_can_hold_is_named(text: str) -> None:
    with pytest.raises(ValueError, match=f"--at '{text}': expected a date from 1970-01-01"):
        parse_day(text)
    assert parse_day("9998-12-31").year == 9998
    for kind in ("daily", "weekly"):  # the last day still has a period in any zone
        period_containing(kind, date(9998, 12, 31), ZoneInfo("Pacific/Kiritimati"))


def test_bad_input_is_a_clear_error(env: Env) -> None:
    bad_date = env.run("daily", "--at", "2025-13-01")
    assert bad_date.returncode == 1 and "--at '2025-13-01'" in bad_date.stderr
    bad_zone = env.run("daily", TRACETRACK_TIMEZONE="Mars/Olympus")
    assert bad_zone.returncode == 1 and "TRACETRACK_TIMEZONE" in bad_zone.stderr
    down = env.run("daily", "--at", "2025-03-05", PROMETHEUS_URL="http://127.0.0.1:9")
    assert down.returncode == 1 and "Prometheus at http://127.0.0.1:9 is unreachable" in down.stderr


# --- email and schedule ------------------------------------------------------------------


def settings_for(env: Env, sink: SmtpSink, tmp: Path) -> ReportSettings:
    config = tmp / "alert_config.py"
    config.write_text(
        "ALERT_RECIPIENTS = {\n"
        "    'email': {'critical': ['oncall@example.com']},\n"
        "    'reports': {'daily': ['ops@example.com'], 'weekly': ['ops@example.com', 'lead@example.com']},\n"
        "}\n"
    )
    return ReportSettings(
        prometheus_url=env.prometheus_url,
        bridge_database_url=env.store_url,
        report_dir=tmp / "reports",
        alert_config_file=config,
        smtp_server="127.0.0.1",
        smtp_port=sink.port,
        smtp_security="none",
        timezone="UTC",
    )


def test_the_emailed_report_has_inline_charts_and_the_pdf(
    env: Env, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    settings = settings_for(env, smtp_sink, tmp_path)
    period = period_containing("daily", date(2025, 3, 5), settings.tz)
    rendered = generate(settings, period, datetime(2025, 3, 6, 8, tzinfo=UTC))
    assert send_report(settings, rendered) == ["ops@example.com"]
    [mail] = smtp_sink.messages()
    msg = mail.message
    assert mail.rcpt_tos == ["ops@example.com"]
    assert (
        str(msg["Subject"])
        .strip()
        .startswith("[TraceTrack] Daily report for Wednesday 05 March 2025")
    )
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    images = [p for p in msg.walk() if p.get_content_type() == "image/png"]
    assert len(images) == 4
    for part in images:
        cid = part["Content-ID"].strip("<>")
        assert f'src="cid:{cid}"' in html
        decode(part.get_content())  # a real PNG
    [pdf] = [p for p in msg.walk() if p.get_content_type() == "application/pdf"]
    assert pdf.get_filename() == "tracetrack-daily-2025-03-05.pdf"
    assert pdf.get_content()[:5] == b"%PDF-"
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Availability (SLO 99.9 %): 97.503 % (missed)" in text


def test_the_reporter_sends_once_per_period_across_restarts_and_downtime(
    env: Env, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    settings = settings_for(env, smtp_sink, tmp_path)
    clock = [datetime(2025, 3, 5, 9, 0, tzinfo=UTC)]

    def reporter() -> Reporter:
        return Reporter(settings, clock=lambda: clock[0])

    first = reporter()
    assert first.run_once() == []  # first start: nothing already due is sent
    clock[0] = datetime(2025, 3, 6, 7, 59, tzinfo=UTC)
    assert first.run_once() == []
    clock[0] = datetime(2025, 3, 6, 8, 0, 30, tzinfo=UTC)
    assert first.run_once() == [("daily", "2025-03-05")]
    clock[0] = datetime(2025, 3, 6, 8, 1, tzinfo=UTC)
    assert first.run_once() == []
    # A restart just after sending does not send again.
    assert reporter().run_once() == []
    # Down from 03-06 09:00 to 03-08 10:00, over two 08:00s: the latest report, once.
    clock[0] = datetime(2025, 3, 8, 10, 0, tzinfo=UTC)
    again = reporter()
    assert again.run_once() == [("daily", "2025-03-07")]
    assert again.run_once() == []
    # Monday 08:00: Sunday's daily and last week's weekly.
    clock[0] = datetime(2025, 3, 10, 8, 0, tzinfo=UTC)
    assert reporter().run_once() == [("daily", "2025-03-09"), ("weekly", "2025-W10")]
    subjects = [str(m.message["Subject"]).strip() for m in smtp_sink.messages()]
    assert len(subjects) == 4, subjects
    assert "Weekly report for 2025-W10" in subjects[-1]
    assert smtp_sink.messages()[-1].rcpt_tos == ["ops@example.com", "lead@example.com"]


def test_the_reporter_retries_a_failed_send_at_the_next_poll(
    env: Env, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    settings = settings_for(env, smtp_sink, tmp_path)
    clock = [datetime(2025, 3, 5, 9, 0, tzinfo=UTC)]
    reporter = Reporter(settings, clock=lambda: clock[0])
    reporter.run_once()
    clock[0] = datetime(2025, 3, 6, 8, 5, tzinfo=UTC)
    smtp_sink.stop()
    assert reporter.run_once() == []  # SMTP down: nothing recorded as sent
    smtp_sink.start()
    assert reporter.run_once() == [("daily", "2025-03-05")]
    assert len(smtp_sink.messages()) == 1


# --- /analytics/reports --------------------------------------------------------------------


def test_admins_see_the_stored_reports_in_analytics(
    env: Env, database_url: str, tmp_path: Path
) -> None:
    root = tmp_path / "reports"
    settings = ReportSettings(
        prometheus_url=env.prometheus_url, bridge_database_url=env.store_url, report_dir=root
    )
    generate(settings, period_containing("daily", date(2025, 3, 5), settings.tz), datetime.now(UTC))
    add_user(database_url, "boss", "admin")
    add_user(database_url, "clerk", "dispatcher")
    with TestClient(create_app(app_settings(database_url, tmp_path, report_dir=root))) as client:
        admin, clerk = auth(token(client, "boss")), auth(token(client, "clerk"))
        listed = client.get("/analytics/api/reports", headers=admin).json()["reports"]
        assert [(r["kind"], r["period"]) for r in listed] == [("daily", "2025-03-05")]
        assert listed[0]["availability"] == pytest.approx(0.97503, abs=1e-5)
        page = client.get("/analytics/reports", headers=admin)
        assert page.status_code == 200 and "Daily report for Wednesday 05 March 2025" in page.text
        html = client.get("/analytics/reports/daily/2025-03-05/report.html", headers=admin)
        assert (
            html.status_code == 200 and "img-src data:" in html.headers["content-security-policy"]
        )
        pdf = client.get("/analytics/reports/daily/2025-03-05/report.pdf", headers=admin)
        assert pdf.headers["content-type"] == "application/pdf" and pdf.content[:5] == b"%PDF-"
        # Not for non-admins, not for anonymous users, and nothing outside the reports.
        assert client.get("/analytics/api/reports", headers=clerk).status_code == 403
        assert client.get("/analytics/reports/daily/2025-03-05/report.pdf").status_code == 401
        assert client.get("/analytics/reports", follow_redirects=False).status_code == 303
        for path in (
            "/analytics/reports/daily/2025-03-06/report.pdf",
            "/analytics/reports/daily/..%2F..%2Fetc/report.json",
            "/analytics/reports/monthly/2025-03/report.pdf",
            "/analytics/reports/daily/2025-03-05/passwd",
        ):
            r = client.get(path, headers=admin)
            assert r.status_code == 404 and r.json()["detail"], path
