"""On-call figures (docs/alert-bridge.md): the dead man's switch and storms.

    .venv/bin/python -m bench.oncall [--runs 3] [--workdir var/bench/oncall]

1. Prometheus (or Alertmanager) killed -9 -> the dead man's switch's page on SMS, email
   and webhook, with the shipped timings: Prometheus' 10 s evaluation and 10 s alert
   resend delay, the Watchdog route's 10 s heartbeat, the bridge's default probe (30 s)
   and timeout (60 s). Budget: within 2 minutes.
2. A storm: 40 app targets down through Alertmanager with the shipped routes (group by
   alertname and job, group_wait 10 s, group_interval 1 m), then all recovered: SMS per
   phone, emails per address, notifications of the group.

Everything on loopback, started here, stopped by PID.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import report, results
from common import topology
from tests.support.bridgekit import TOKEN, BridgeProcess, bridge_env, write_alert_config
from tests.support.sinks import SmtpSink, TwilioSink, WebhookSink
from tests.support.stack import start_alertmanager
from tooling import stackconfig
from tooling.checkout import ROOT
from tooling.procs import free_port, http_ok, prometheus_process, wait_until

SHIPPED_WATCHDOG = {
    "BRIDGE_WATCHDOG_TIMEOUT_SECONDS": "60",
    "BRIDGE_WATCHDOG_PROBE_AFTER_SECONDS": "30",
    "BRIDGE_WATCHDOG_CHECK_INTERVAL_SECONDS": "5",
}
EMAIL_TO = "oncall@example.com"
SMS_TO = "+14155550100"


class Stoppers(list[Callable[[], None]]):
    def stop_all(self) -> None:
        for stop in reversed(self):
            try:
                stop()
            except Exception:  # noqa: BLE001 - best effort at teardown
                pass


def _sinks(stoppers: Stoppers) -> tuple[SmtpSink, TwilioSink, WebhookSink]:
    smtp, twilio, hooks = SmtpSink(), TwilioSink(), WebhookSink()
    for sink in (smtp, twilio, hooks):
        sink.start()
        stoppers.append(sink.stop)
    return smtp, twilio, hooks


def _recipients(hooks: WebhookSink) -> dict[str, Any]:
    return {
        "email": {"critical": [EMAIL_TO]},
        "sms": {"critical": [SMS_TO]},
        "webhook": {"critical": [{"url": hooks.url_for("slack/crit"), "format": "slack"}]},
    }


def deadman_run(workdir: Path, component: str) -> dict[str, Any]:
    """One kill of `component` ("Prometheus" | "Alertmanager"): seconds to each channel."""
    stoppers = Stoppers()
    try:
        smtp, twilio, hooks = _sinks(stoppers)
        config = write_alert_config(workdir / "alert_config.py", _recipients(hooks))
        bridge_port, prom_port = free_port(), free_port()
        token = workdir / "token"
        token.write_text(TOKEN + "\n")
        am = start_alertmanager(
            workdir / "am",
            bridge_url=f"http://127.0.0.1:{bridge_port}",
            credentials_file=token,
            route_timings=None,  # the shipped routes and Watchdog heartbeat
        )
        stoppers.append(am.proc.stop)
        env = bridge_env(
            workdir / "bridge",
            config,
            smtp,
            twilio,
            hooks,
            PROMETHEUS_URL=f"http://127.0.0.1:{prom_port}",
            ALERTMANAGER_URL=am.url,
            **SHIPPED_WATCHDOG,
        )
        bridge = BridgeProcess(env, workdir / "bridge.log", port=bridge_port)
        stoppers.append(bridge.stop)
        bridge.start()
        prom_file = stackconfig.write_prometheus_config(
            workdir / "prometheus.yml",
            targets={},
            alertmanagers=[am.address],
            rule_files=[stackconfig.RULES_FILE],
        )
        # The shipped flags (tooling.procs: --rules.alert.resend-delay=10s).
        prom = prometheus_process(prom_file, workdir / "prometheus", prom_port).start()
        stoppers.append(prom.stop)
        prom.wait_ready(http_ok(f"http://127.0.0.1:{prom_port}/-/ready"), timeout=30)
        wait_until(
            lambda: bridge.notifications()["watchdog"]["state"] == "ok",
            120,
            "the first heartbeat",
            interval=0.5,
        )
        time.sleep(random.uniform(0, 10))  # a random phase against the 10 s cycles
        killed = time.time()
        (prom if component == "Prometheus" else am.proc).kill9()
        first: dict[str, float | None] = {"sms": None, "email": None, "webhook": None}
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and None in first.values():
            if first["sms"] is None and any(
                f"{component} down" in m["Body"] for m in twilio.messages()
            ):
                first["sms"] = time.time() - killed
            if first["email"] is None and any(
                f"{component} down" in str(m.message["Subject"]) for m in smtp.messages(EMAIL_TO)
            ):
                first["email"] = time.time() - killed
            if first["webhook"] is None and any(
                f"{component} down" in json.dumps(b) for b in hooks.bodies("slack/crit")
            ):
                first["webhook"] = time.time() - killed
            time.sleep(0.1)
        done = [v for v in first.values() if v is not None]
        return {
            "component": component,
            "channels_s": {k: None if v is None else round(v, 1) for k, v in first.items()},
            "max_s": round(max(done), 1) if len(done) == 3 else None,
        }
    finally:
        stoppers.stop_all()


def storm(workdir: Path, targets: int = 40) -> dict[str, Any]:
    stoppers = Stoppers()
    host = "app-server-with-a-long-production-name.eu-west-3.internal.example"[:58]
    try:
        smtp, twilio, hooks = _sinks(stoppers)
        config = write_alert_config(workdir / "alert_config.py", _recipients(hooks))
        # The shipped SMS budget and provider pacing (the test harness turns them off).
        env = bridge_env(
            workdir / "bridge",
            config,
            smtp,
            twilio,
            hooks,
            BRIDGE_SMS_BUDGET="3",
            BRIDGE_SEND_RATES="true",
        )
        bridge = BridgeProcess(env, workdir / "bridge.log")
        stoppers.append(bridge.stop)
        bridge.start()
        token = workdir / "token"
        token.write_text(TOKEN + "\n")
        am = start_alertmanager(
            workdir / "am", bridge_url=bridge.url, credentials_file=token, route_timings=None
        )
        stoppers.append(am.proc.stop)

        def alert(i: int, ends: datetime | None = None) -> dict[str, Any]:
            a: dict[str, Any] = {
                "labels": {
                    "alertname": "TraceTrackTargetDown",
                    "severity": "critical",
                    "job": topology.APP_JOB,
                    "instance": f"{host}-{i:02d}:{topology.APP_PORT}",
                },
                "annotations": {"value": "up 0", "threshold": "up == 0 for 30s"},
            }
            if ends:
                a["endsAt"] = ends.isoformat()
            return a

        # Targets fail over ~20 s, as a rack losing power would show up in scrapes.
        start = time.time()
        for i in range(targets):
            am.post_alerts([alert(j) for j in range(i + 1)])
            time.sleep(20 / targets)
        wait_until(lambda: twilio.count() >= 1, 120, "the first page", interval=0.5)
        first_page = time.time() - start
        # The group's next flush (group_interval) names all of them; then they recover.
        wait_until(
            lambda: any(f"{targets}x TargetDown" in m["Body"] for m in twilio.messages()),
            150,
            "the group's update naming every target",
            interval=0.5,
        )
        # Everything recovers; Alertmanager sends the resolution with the group's next flush.
        ended = datetime.now(UTC) - timedelta(seconds=1)
        am.post_alerts([alert(i, ended) for i in range(targets)])
        wait_until(
            lambda: any("RESOLVED" in m["Body"] for m in twilio.messages()),
            180,
            "the resolution",
            interval=0.5,
        )
        bridge.wait_settled(60)
        notes = [
            d for d in bridge.notifications(limit=1000)["deliveries"] if d["channel"] == "email"
        ]
        return {
            "targets": targets,
            "sms_per_phone": twilio.count(),
            "emails_per_address": len(smtp.messages(EMAIL_TO)),
            "slack_messages": len(hooks.bodies("slack/crit")),
            "notifications": len({d["notification_key"] for d in notes}),
            "first_page_s": round(first_page, 1),
            "sms": [m["Body"] for m in twilio.messages()],
        }
    finally:
        stoppers.stop_all()


def rows(out: dict[str, Any]) -> list[str]:
    """BENCHMARKS.md rows (bench/report.py's table)."""
    from bench.report import _row

    result = []
    for component in ("Prometheus", "Alertmanager"):
        runs = [d for d in out["deadman"] if d["component"] == component]
        if not runs:
            continue
        worst = [d["max_s"] for d in runs]
        ok = all(w is not None and w <= 120 for w in worst)
        shown = ", ".join("timeout" if w is None else f"{w:g}" for w in worst)
        result.append(
            _row(
                f"{component} dead → dead man's switch page on every channel",
                f"{max((w for w in worst if w is not None), default=0):g} s worst of"
                f" {len(runs)} runs ({shown} s)",
                "< 120 s",
                ok,
                f"`python -m bench.oncall`: {component} killed -9 at a random phase of the"
                " 10 s cycles once the bridge had its heartbeat; shipped timings (evaluation"
                " 10 s, Prometheus `--rules.alert.resend-delay=10s`, Watchdog route 10 s"
                " heartbeat, bridge probe after 30 s, timeout 60 s); time until SMS, email"
                f" and Slack each carried a page naming {component}",
            )
        )
    st = out.get("storm")
    if st:
        result.append(
            _row(
                f"Storm: {st['targets']} app targets down, then recovered",
                f"{st['sms_per_phone']} SMS per phone, {st['emails_per_address']} emails per"
                f" address, {st['notifications']} notifications of the group"
                f" (first page {st['first_page_s']:g} s after the first failure)",
                "≤ 3 SMS per phone",
                st["sms_per_phone"] <= 3,
                "`python -m bench.oncall`: 40 TargetDown criticals with 58-character host names"
                " posted to a real Alertmanager over 20 s (the shipped routes: group by"
                " alertname and job, group_wait 10 s, group_interval 1 m), all resolved once"
                " the group's update named all 40; counted at the SMTP, Twilio-API and Slack"
                " sinks",
            )
        )
    return result


def measure_oncall(workdir: Path, runs: int = 3, storm_only: bool = False) -> dict[str, Any]:
    if workdir.exists():
        shutil.rmtree(workdir)
    out: dict[str, Any] = {"deadman": [], "storm": None}
    for i in range(0 if storm_only else runs):
        for component in ("Prometheus", "Alertmanager"):
            d = workdir / f"deadman-{component.lower()}-{i}"
            d.mkdir(parents=True)
            out["deadman"].append(deadman_run(d, component))
            print(json.dumps(out["deadman"][-1]), flush=True)
    (workdir / "storm").mkdir(parents=True)
    out["storm"] = storm(workdir / "storm")
    print(json.dumps(out["storm"]), flush=True)
    out["rows"] = rows(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=ROOT / "var" / "bench" / "oncall")
    parser.add_argument("--storm-only", action="store_true")
    results.add_record_flag(parser)
    args = parser.parse_args(argv)
    result = measure_oncall(args.workdir, args.runs, args.storm_only)
    (args.workdir / "results.json").write_text(json.dumps(result, indent=2))
    print("\n".join(result["rows"]))
    if not args.no_record:
        record_parts(result, results.command_line("bench.oncall", argv))
        print(f"wrote {report.write()}")
    return 0


def record_parts(result: dict[str, Any], command: str, directory: Path | None = None) -> None:
    """The dead man's switch and the storm are recorded as parts of their own
    (bench/results/deadman.json, storm.json): `--storm-only` keeps the switch's rows."""
    where = directory or results.RESULTS_DIR
    if result["deadman"]:
        dead = {"deadman": result["deadman"], "storm": None}
        results.record("deadman", rows=rows(dead), raw=dead, command=command, directory=where)
    if result["storm"]:
        st = {"deadman": [], "storm": result["storm"]}
        results.record("storm", rows=rows(st), raw=st, command=command, directory=where)


if __name__ == "__main__":
    raise SystemExit(main())
