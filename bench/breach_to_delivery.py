"""Breach to delivery on every channel (docs/architecture.md §7), for `make bench`.

    results["breach"] = measure_breach_to_delivery(workdir, database_url)
    .venv/bin/python -m bench.breach_to_delivery DATABASE_URL [--mode fast]   # standalone

The whole real chain, started here on free ports and stopped by PID:
`tracetrack app` -> Prometheus (the shipped prometheus.yml and rules.yml, rendered
by tooling.stackconfig for the ports) -> Alertmanager (the shipped routes and
timings) -> `tracetrack bridge` with email, SMS and webhooks enabled -> a real
aiosmtpd server, the Twilio-speaking server reached through the twilio SDK, and
a webhook sink (tests/support/sinks.py), one critical recipient per channel.

The breach is the app dying (SIGKILL of its process group): TraceTrackTargetDown
(critical) has a crisp start. It is placed right after a successful scrape of the
app, the worst phase for the scrape step, so the figure sits near the
configuration's worst case rather than a lucky one. A channel's figure is the time
from the kill to its sink receiving the notification.

Two runs: the shipped configuration (budget 70 s) and the fast test configuration
(tooling.stackconfig FAST_*: 1 s scrape and evaluation, `for: 1s`, 1 s group_wait,
the tests' bridge timings; budget 5 s). Each gives up `timeout` s after the breach.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import yaml

from alert_bridge.messages import SMS_TAG, short_name
from bench import results
from common import topology
from common.alerting import CHANNELS
from tests.support.appkit import start_app_process
from tests.support.bridgekit import TOKEN, BridgeProcess, bridge_env, write_alert_config
from tests.support.sinks import SmtpSink, TwilioSink, WebhookSink
from tests.support.stack import PrometheusHandle, start_alertmanager
from tooling import stackconfig
from tooling.checkout import ROOT
from tooling.procs import free_port, http_ok, prometheus_process, wait_until

ALERT = "TraceTrackTargetDown"
EMAIL_TO = "oncall@example.com"
SMS_TO = "+14155550100"
WEBHOOK_PATH = "slack/critical"
# The tests' fast bridge timings (bridgekit.bridge_env); the shipped run uses the defaults.
FAST_BRIDGE_KEYS = (
    "BRIDGE_RETRY_INITIAL_SECONDS",
    "BRIDGE_RETRY_MAX_DELAY_SECONDS",
    "BRIDGE_POLL_INTERVAL_SECONDS",
    "BRIDGE_WATCHDOG_TIMEOUT_SECONDS",
    "BRIDGE_WORKER_THREADS",
    "SMTP_TIMEOUT_SECONDS",
    "TWILIO_TIMEOUT_SECONDS",
    "WEBHOOK_TIMEOUT_SECONDS",
)


@dataclass(frozen=True)
class Mode:
    name: str
    label: str
    budget_s: float
    scrape_interval: str | None = None  # None: as shipped
    evaluation_interval: str | None = None
    for_: str | None = None
    route_timings: Mapping[str, str] | None = None
    fast_bridge: bool = False


SHIPPED = Mode("shipped", "shipped configuration", 70.0)
FAST = Mode(
    "fast",
    "fast test configuration",
    5.0,
    scrape_interval=stackconfig.FAST_SCRAPE_INTERVAL,
    evaluation_interval=stackconfig.FAST_EVALUATION_INTERVAL,
    for_=stackconfig.FAST_FOR,
    route_timings=stackconfig.FAST_ROUTE_TIMINGS,
    fast_bridge=True,
)
MODES = {m.name: m for m in (SHIPPED, FAST)}


def _ts(text: str) -> float:
    """Epoch seconds of an RFC 3339 time from Prometheus/Alertmanager (nanoseconds cut)."""
    text = re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00"))
    return datetime.fromisoformat(text).timestamp()


class _Stoppers:
    def __init__(self) -> None:
        self._fns: list[Callable[[], None]] = []

    def add(self, fn: Callable[[], None]) -> None:
        self._fns.append(fn)

    def stop_all(self) -> None:
        for fn in reversed(self._fns):
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - keep stopping the rest
                print(f"breach bench: stopping failed: {exc}", file=sys.stderr)


def _effective(prom_file: Path, rules_file: Path, am_file: Path) -> dict[str, float]:
    """The timings the run really used, read back from the rendered files."""
    prom = yaml.safe_load(prom_file.read_text())["global"]
    rule = next(
        r
        for g in yaml.safe_load(rules_file.read_text())["groups"]
        for r in g["rules"]
        if r.get("alert") == ALERT and r.get("labels", {}).get("severity") == "critical"
    )
    route = yaml.safe_load(am_file.read_text())["route"]
    critical: dict[str, Any] = next(
        (r for r in route.get("routes", []) if 'severity="critical"' in r.get("matchers", [])), {}
    )
    d = stackconfig.duration_seconds
    return {
        "scrape_interval_s": d(prom["scrape_interval"]),
        "evaluation_interval_s": d(prom["evaluation_interval"]),
        "for_s": d(rule.get("for", "0s")),
        "group_wait_s": d(critical.get("group_wait", route.get("group_wait", "30s"))),
    }


def _app_target(prom: PrometheusHandle) -> dict[str, Any]:
    return next(t for t in prom.targets() if t["labels"]["job"] == topology.APP_JOB)


def _first_delivery(
    smtp: SmtpSink, twilio: TwilioSink, hooks: WebhookSink
) -> dict[str, float | None]:
    """When each sink first received the critical TargetDown firing (epoch seconds)."""
    out: dict[str, float | None] = dict.fromkeys(CHANNELS)
    for mail in smtp.messages(EMAIL_TO):
        subject = str(mail.message["Subject"])
        if ALERT in subject and "FIRING" in subject:
            out["email"] = mail.at
            break
    for req in list(twilio.received):
        body = {k: v[0] for k, v in parse_qs(req.body.decode()).items()}.get("Body", "")
        # An SMS names the alert without the product prefix and starts with its state.
        if short_name(ALERT) in body and body.startswith(SMS_TAG["critical"]):
            out["sms"] = req.at
            break
    for req in list(hooks.received):
        if req.path == f"/{WEBHOOK_PATH}" and ALERT.encode() in req.body:
            out["webhook"] = req.at
            break
    return out


def _stages(prom: PrometheusHandle, am_url: str, bridge: BridgeProcess) -> dict[str, float | None]:
    """Epoch seconds of the chain's intermediate steps, read from each component."""
    stages: dict[str, float | None] = {"pending": None, "firing": None, "at_bridge": None}
    try:
        for a in prom.alerts():
            if a["labels"].get("alertname") == ALERT and a["labels"].get("severity") == "critical":
                stages["pending"] = _ts(a["activeAt"])
        resp = httpx.get(
            f"{am_url}/api/v2/alerts", params={"filter": f'alertname="{ALERT}"'}, timeout=5
        )
        for a in resp.json():
            if a["labels"].get("severity") == "critical":
                stages["firing"] = _ts(a["startsAt"])  # Prometheus sends its FiredAt
        created = [
            _ts(d["created_at"])
            for d in bridge.notifications(limit=100)["deliveries"]
            if ALERT in (d.get("title") or "") and d.get("created_at")
        ]
        stages["at_bridge"] = min(created) if created else None
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        print(f"breach bench: could not read a stage time: {exc}", file=sys.stderr)
    return stages


def run_once(
    mode: Mode, workdir: Path, database_url: str, timeout: float = 120.0
) -> dict[str, Any]:
    """One breach through the whole chain in `mode`; seconds from the breach per channel."""
    workdir.mkdir(parents=True, exist_ok=True)
    stoppers = _Stoppers()
    result: dict[str, Any] = {
        "mode": mode.name,
        "budget_s": mode.budget_s,
        "timeout_s": timeout,
        "logs": str(workdir),
    }
    try:
        smtp, twilio, hooks = SmtpSink(), TwilioSink(), WebhookSink()
        for sink in (smtp, twilio, hooks):
            sink.start()
            stoppers.add(sink.stop)
        recipients = {
            "email": {"critical": [EMAIL_TO]},
            "sms": {"critical": [SMS_TO]},
            "webhook": {"critical": [{"url": hooks.url_for(WEBHOOK_PATH), "format": "slack"}]},
        }
        config = write_alert_config(workdir / "alert_config.py", recipients)
        env = bridge_env(workdir / "bridge", config, smtp, twilio, hooks)
        if not mode.fast_bridge:
            for key in FAST_BRIDGE_KEYS:
                env.pop(key, None)
        bridge = BridgeProcess(env, workdir / "bridge.log")
        stoppers.add(bridge.stop)
        bridge.start()

        app, app_port = start_app_process(workdir / "app", database_url)
        stoppers.add(app.stop)

        token_file = workdir / "bridge_token"
        token_file.write_text(TOKEN + "\n")
        am = start_alertmanager(
            workdir / "alertmanager",
            bridge_url=bridge.url,
            credentials_file=token_file,
            route_timings=mode.route_timings,
        )
        stoppers.add(am.proc.stop)

        prom_port = free_port()
        rules = (
            stackconfig.write_rules(workdir / "rules.yml", mode.for_)
            if mode.for_
            else stackconfig.RULES_FILE
        )
        # Only what runs here is scraped: an exporter target nobody serves would page too.
        targets = {
            topology.APP_JOB: [f"127.0.0.1:{app_port}"],
            topology.BRIDGE_JOB: [f"127.0.0.1:{bridge.port}"],
            topology.ALERTMANAGER_JOB: [am.address],
            topology.PROMETHEUS_JOB: [f"127.0.0.1:{prom_port}"],
        }
        prom_file = stackconfig.write_prometheus_config(
            workdir / "prometheus.yml",
            targets=targets,
            alertmanagers=[am.address],
            rule_files=[rules],
            scrape_interval=mode.scrape_interval,
            evaluation_interval=mode.evaluation_interval,
        )
        proc = prometheus_process(prom_file, workdir / "prometheus", prom_port).start()
        stoppers.add(proc.stop)
        proc.wait_ready(http_ok(f"http://127.0.0.1:{prom_port}/-/ready"), timeout=30)
        prom = PrometheusHandle(proc, prom_port, prom_file)
        result["config"] = _effective(prom_file, rules, am.config_file)

        prom.wait_targets_up({topology.APP_JOB}, timeout=60)
        prom.wait_alertmanager_connected(timeout=60)

        # The breach: right after a successful scrape, so the next one is a full interval away.
        before = _app_target(prom)["lastScrape"]
        wait_until(
            lambda: (t := _app_target(prom))["lastScrape"] != before and t["health"] == "up",
            result["config"]["scrape_interval_s"] * 2 + 5,
            "a fresh scrape of the app",
        )
        last_scrape = _ts(_app_target(prom)["lastScrape"])
        breach = time.time()
        app.kill9()
        result["breach_after_scrape_s"] = round(breach - last_scrape, 3)

        deadline = time.monotonic() + timeout
        delivered = _first_delivery(smtp, twilio, hooks)
        while time.monotonic() < deadline and None in delivered.values():
            time.sleep(0.02)
            delivered = _first_delivery(smtp, twilio, hooks)
        result["channels_s"] = {
            ch: None if at is None else round(at - breach, 2) for ch, at in delivered.items()
        }
        result["timed_out"] = [ch for ch, at in delivered.items() if at is None]
        result["stages_s"] = {
            k: None if at is None else round(at - breach, 2)
            for k, at in _stages(prom, am.url, bridge).items()
        }
        done = [s for s in result["channels_s"].values() if s is not None]
        result["max_s"] = max(done) if done and not result["timed_out"] else None
    except Exception as exc:  # noqa: BLE001 - reported in the row, the other runs go on
        traceback.print_exc()
        result["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    finally:
        stoppers.stop_all()
    return result


def _row(name: str, value: str, budget: str, ok: bool, how: str) -> str:
    return f"| {name} | {value} | {budget} | {'within' if ok else '**over**'} | {how} |"


def _fmt(s: float | None) -> str:
    return "—" if s is None else f"{s:.1f}"


def row_for(mode: Mode, r: dict[str, Any]) -> str:
    name = f"Critical alert, breach → every channel ({mode.label})"
    budget = f"< {mode.budget_s:.0f} s"
    if "error" in r:
        return _row(
            name,
            "run failed",
            budget,
            False,
            " ".join(f"{r['error']} (logs under `{r['logs']}`)".split()).replace("|", "\\|"),
        )
    ch = r["channels_s"]
    per = f"email {_fmt(ch['email'])}, SMS {_fmt(ch['sms'])}, webhook {_fmt(ch['webhook'])}"
    if r["timed_out"]:
        value = f"timed out after {r['timeout_s']:.0f} s ({per})"
    else:
        value = f"{r['max_s']:.1f} s ({per})"
    c, st = r["config"], r["stages_s"]
    worst = c["scrape_interval_s"] + c["evaluation_interval_s"] + c["for_s"] + c["group_wait_s"]
    eval_lag = (
        ""
        if st["pending"] is None
        else f" (the rule evaluation came {st['pending'] - (c['scrape_interval_s'] - r['breach_after_scrape_s']):.1f} s "
        "after the first failed scrape; up to one evaluation interval in the worst case)"
    )
    how = (
        f"`tracetrack app` killed (-9) {r['breach_after_scrape_s']:.2f} s after a successful "
        f"scrape; {ALERT} (critical) pending after {_fmt(st['pending'])} s{eval_lag}, firing after "
        f"{_fmt(st['firing'])} s, stored by the bridge after {_fmt(st['at_bridge'])} s; "
        f"scrape {c['scrape_interval_s']:g} s, evaluation {c['evaluation_interval_s']:g} s, "
        f"`for: {c['for_s']:g}s`, critical group_wait {c['group_wait_s']:g} s "
        f"(the runbook's worst case to the bridge: {worst:g} s plus hand-offs); one breach, "
        "sinks: aiosmtpd, Twilio-speaking server via the twilio SDK, Slack-format webhook"
    )
    ok = not r["timed_out"] and r["max_s"] is not None and r["max_s"] < mode.budget_s
    return _row(name, value, budget, ok, how)


def measure_breach_to_delivery(
    workdir: Path,
    database_url: str,
    modes: tuple[str, ...] = ("shipped", "fast"),
    timeout: float = 120.0,
) -> dict[str, Any]:
    """Breach-to-delivery runs for `make bench`: {mode: result, ..., "rows": [...]}."""
    out: dict[str, Any] = {}
    rows = []
    for name in modes:
        mode = MODES[name]
        print(f"breach to delivery, {mode.label}...", flush=True)
        out[name] = run_once(mode, Path(workdir) / f"breach-{name}", database_url, timeout)
        rows.append(row_for(mode, out[name]))
    out["rows"] = rows
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="breach to delivery on every channel")
    parser.add_argument("database_url")
    parser.add_argument("--mode", choices=[*MODES, "both"], default="both")
    parser.add_argument("--workdir", type=Path, default=ROOT / "var" / "bench" / "breach")
    parser.add_argument("--timeout", type=float, default=120.0)
    results.add_record_flag(parser)
    args = parser.parse_args(argv)
    modes = tuple(MODES) if args.mode == "both" else (args.mode,)
    out = measure_breach_to_delivery(args.workdir, args.database_url, modes, args.timeout)
    results.finish("breach", out, args, "bench.breach_to_delivery", argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
