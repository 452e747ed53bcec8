"""The notification page: the SMS's one link opens it; silence and acknowledge act
only on POST; a silence made there exists in a real Alertmanager and stops the next
notification of the group."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import update

from alert_bridge import pages
from alert_bridge.silences import SilenceError, create_silence
from tests.support.bridgekit import (
    InProcessBridge,
    bridge_behind_alertmanager,
    bridge_env,
    recipients_for,
    write_alert_config,
)
from tooling.procs import free_port, wait_until

if TYPE_CHECKING:
    from tests.support.sinks import SmtpSink, TwilioSink, WebhookSink


PUBLIC = "https://oncall.example.com"


def alert(instance: str, **annotations: str) -> dict[str, Any]:
    return {
        "labels": {
            "alertname": "TraceTrackErrorRateHigh",
            "severity": "critical",
            "job": "tracetrack-app",
            "instance": instance,
        },
        "annotations": {
            "summary": f"Error rate above the critical threshold (> 5 %) on {instance}",
            "value": "7.1%",
            "threshold": "> 5 %",
            "runbook_url": f"{PUBLIC}/runbook#tracetrackerrorratehigh",
            **annotations,
        },
    }


def control(instance: str) -> dict[str, Any]:
    """A critical alert of another group, which no silence here covers."""
    a = alert(instance, summary=f"Response time above the critical threshold on {instance}")
    a["labels"]["alertname"] = "TraceTrackResponseTimeHigh"
    return a


def control_pages(twilio_sink: TwilioSink) -> int:
    return sum("ResponseTimeHigh" in m["Body"] for m in twilio_sink.messages())


# The least Alertmanager payload: one firing alert, group "g".
ONE_ALERT = {
    "version": "4",
    "groupKey": "g",
    "status": "firing",
    "groupLabels": {"alertname": "X"},
    "alerts": [
        {"status": "firing", "labels": {"alertname": "X"}, "startsAt": "2030-01-01T00:00:00Z"}
    ],
}


def local(url: str, bridge: InProcessBridge) -> str:
    """The public link as this test reaches the bridge."""
    return url.replace(PUBLIC, bridge.url)


def test_page_silence_and_acknowledge_through_a_real_alertmanager(
    tmp_path: Path, smtp_sink: SmtpSink, twilio_sink: TwilioSink, webhook_sink: WebhookSink
) -> None:
    with bridge_behind_alertmanager(
        tmp_path, smtp_sink, twilio_sink, webhook_sink, TRACETRACK_PUBLIC_URL=PUBLIC
    ) as (b, am):
        am.post_alerts([alert("app-1:8000")])
        wait_until(
            lambda: twilio_sink.count() >= 1 and bool(smtp_sink.messages("oncall@example.com")),
            30,
            "the SMS and the email",
        )
        sms = twilio_sink.messages()[0]["Body"]
        link = re.search(r"https://oncall\.example\.com/n/([A-Za-z0-9_-]+)$", sms)
        assert link, sms
        token = link.group(1)
        assert len(token) >= 22  # 128 random bits, URL-safe base64
        email = smtp_sink.messages("oncall@example.com")[0].message
        plain = email.get_body(("plain",))
        assert plain is not None and link.group(0) in plain.get_content()

        # GET shows (value, links, forms) and changes nothing.
        page = b.http.get(local(link.group(0), b))
        assert page.status_code == 200
        assert page.headers["cache-control"] == "no-store"
        assert "7.1% (threshold &gt; 5 %)" in page.text
        assert 'name="viewport"' in page.text
        assert f'action="{token}/silence"' in page.text
        assert f"{PUBLIC}/runbook#tracetrackerrorratehigh" in page.text
        assert httpx.get(f"{am.url}/api/v2/silences").json() == []

        # Refusals name the problem, and change nothing.
        bad = b.http.post(f"/n/{token}/silence", data={"who": "alice", "duration": "7h"})
        assert bad.status_code == 400 and "1h, 4h, 24h" in bad.text
        nobody = b.http.post(f"/n/{token}/silence", data={"duration": "1h"})
        assert nobody.status_code == 400 and "say who" in nobody.text
        assert b.http.get("/n/not-a-real-token").status_code == 404
        assert httpx.get(f"{am.url}/api/v2/silences").json() == []

        # Silence: a real silence on the group's labels, and the next one is muted.
        done = b.http.post(f"/n/{token}/silence", data={"who": "alice", "duration": "1h"})
        assert done.status_code == 200 and "Silenced by alice" in done.text
        (silence,) = httpx.get(f"{am.url}/api/v2/silences").json()
        assert silence["createdBy"] == "alice" and silence["status"]["state"] == "active"
        assert {(m["name"], m["value"]) for m in silence["matchers"]} == {
            ("alertname", "TraceTrackErrorRateHigh"),
            ("job", "tracetrack-app"),
        }
        # A new instance joins the silenced group (news Alertmanager would send), and
        # an unsilenced group is the control: once its first page and then its update
        # (one group_interval later) have arrived, the silenced group has had at
        # least one flush of its own since the news, so a page would be here too.
        before = twilio_sink.count()
        am.post_alerts([alert("app-1:8000"), alert("app-2:8000"), control("app-1:8000")])
        wait_until(
            lambda: (
                all(
                    a["status"]["state"] == "suppressed"
                    for a in am.alerts(alertname="TraceTrackErrorRateHigh")
                )
                and len(am.alerts(alertname="TraceTrackErrorRateHigh")) == 2
            ),
            20,
            "Alertmanager to mute the group",
        )
        wait_until(lambda: control_pages(twilio_sink) == 1, 30, "the control group's page")
        am.post_alerts([control("app-1:8000"), control("app-2:8000")])
        wait_until(lambda: control_pages(twilio_sink) == 2, 30, "the control group's update")
        assert twilio_sink.count() == before + 2, [m["Body"] for m in twilio_sink.messages()]
        assert not [
            n
            for n in b.notifications(limit=100)["deliveries"]
            if n["channel"] == "sms" and "ErrorRateHigh" in n["title"]
        ][1:], "a second ErrorRateHigh notification was stored despite the silence"

        # Acknowledge: who and when, shown on the page, counted.
        ack = b.http.post(f"/n/{token}/ack", data={"who": "bob"})
        assert ack.status_code == 200 and "Acknowledged by <b>bob</b>" in ack.text
        again = b.http.get(f"/n/{token}")
        assert (
            "Acknowledged by <b>bob</b>" in again.text and "Acknowledge</button>" not in again.text
        )
        assert b.metric("tracetrack_bridge_actions_total", action="ack", outcome="ok") == 1
        assert b.metric("tracetrack_bridge_actions_total", action="silence", outcome="ok") == 1
        assert b.metric("tracetrack_bridge_actions_total", action="silence", outcome="failed") == 0

        # An expired page says so.
        with b.service.store.tx() as conn:
            conn.execute(update(pages.pages).values(expires_at=time.time() - 1))
        assert b.http.get(f"/n/{token}").status_code == 410


def test_a_silence_alertmanager_refuses_is_a_clear_502(tmp_path: Path) -> None:
    cfg = write_alert_config(tmp_path / "alert_config.py", recipients_for())
    # Nothing listens; behind basic auth, whose password the public page must not show.
    env = bridge_env(tmp_path, cfg, ALERTMANAGER_URL=f"http://am:s3cret@127.0.0.1:{free_port()}")
    with InProcessBridge(env) as b:
        assert b.post("critical", ONE_ALERT).status_code == 200
        key = b.notifications()["deliveries"][0]["notification_key"]
        token = pages.token_for(b.service.store, key)
        resp = b.http.post(f"/n/{token}/silence", data={"who": "carol", "duration": "4h"})
        assert resp.status_code == 502 and "unreachable" in resp.text
        assert "s3cret" not in resp.text and "Alertmanager http://127.0.0.1:" in resp.text
        assert b.metric("tracetrack_bridge_actions_total", action="silence", outcome="failed") == 1


def test_hostile_page_input_is_refused_on_a_postgresql_outbox(
    tmp_path: Path, database_url: str
) -> None:
    """On the HA outbox (PostgreSQL, which refuses NUL in text) a NUL in the page's
    token or in the name of who acts is a clear 4xx, never a 500; control characters
    never reach the log or the page; a huge form is refused without being held."""
    cfg = write_alert_config(tmp_path / "alert_config.py", recipients_for())
    env = bridge_env(tmp_path, cfg, BRIDGE_DATABASE_URL=database_url)
    with InProcessBridge(env) as b:
        key = b.post("critical", ONE_ALERT).json()["notification"]
        token = pages.token_for(b.service.store, key)
        form = {"content-type": "application/x-www-form-urlencoded"}
        for path in ("/n/a%00b", "/n/%ED%A0%80", "/n/" + "a" * 5000):
            assert b.http.get(path).status_code == 404, path
            assert b.http.post(f"{path}/ack", content=b"who=x", headers=form).status_code == 404
            silence = b.http.post(f"{path}/silence", content=b"who=x&duration=1h", headers=form)
            assert silence.status_code == 404
        for who in (b"a%00b", b"%1B%5B31mred", b"evil%E2%80%AEtxt.exe"):
            resp = b.http.post(f"/n/{token}/ack", content=b"who=" + who, headers=form)
            assert resp.status_code == 400 and "no control characters" in resp.text, who
        huge = b.http.post(f"/n/{token}/ack", content=b"who=" + b"a" * 10_000_000, headers=form)
        assert huge.status_code == 400 and "form larger than 4096 bytes" in huge.text
        assert pages.ack_of(b.service.store, "g") is None  # nothing was acknowledged
        assert b.http.post(f"/n/{token}/ack", data={"who": "dana"}).status_code == 200
        assert pages.ack_of(b.service.store, "g") is not None
        assert b.http.get("/readyz").status_code == 200


def test_an_alertmanager_url_at_something_else_is_a_clear_silence_error() -> None:
    """ALERTMANAGER_URL at Grafana or a login page answers 200 with HTML: the silence POST
    was a 500 (JSONDecodeError); now the page's 502 says what to check."""
    html = httpx.MockTransport(lambda request: httpx.Response(200, text="<html>log in</html>"))
    matchers: list[dict[str, object]] = [{"name": "alertname", "value": "X", "isRegex": False}]
    with pytest.raises(SilenceError, match="is ALERTMANAGER_URL right"):
        create_silence(
            "http://grafana:3000", matchers, "1h", "dana", "c", client=httpx.Client(transport=html)
        )
