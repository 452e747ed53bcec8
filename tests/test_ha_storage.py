"""Long-term storage: two identical Prometheus servers (an HA pair told apart by their
`replica` external label) remote-write to a real VictoriaMetrics (Debian's package, the
shipped flags). What comes back is one series per series scraped, its samples exactly
the pair's, one per scrape interval; a VictoriaMetrics outage leaves no gap once it is
back, because each Prometheus replays what it missed from its WAL; and the dashboards'
and /analytics' queries run on it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.analytics.queries import QUERIES
from common import topology
from grafana import build
from tests.support.hakit import GaugeTarget, VictoriaMetricsHandle, start_victoriametrics
from tests.support.stack import PrometheusHandle, start_prometheus
from tooling import stackconfig
from tooling.procs import free_port, wait_until

SCRAPE = "1s"
# The outage is 20 s rather than a minute: at 1 s scrapes of two Prometheus servers
# (~1,000 series each, their own metrics included) the in-memory remote-write queue
# (2,500 samples per shard) is full within a few seconds, so after that every sample
# comes back from the WAL, which is what the promise rests on; a longer outage only
# replays more of the same (the WAL keeps two hours).
OUTAGE_SECONDS = 20


class Ticker:
    """Sets `ha_value` to 1, 2, 3, ... twice a second: every sample is distinct."""

    def __init__(self, target: GaugeTarget) -> None:
        self.target = target
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        while not self.stop_event.wait(0.5):
            n += 1
            self.target.gauge.set(n)

    def __enter__(self) -> Ticker:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.thread.join(5)


@pytest.fixture()
def victoriametrics(tmp_path: Path) -> Iterator[VictoriaMetricsHandle]:
    vm = start_victoriametrics(tmp_path / "victoriametrics", SCRAPE)
    try:
        yield vm
    finally:
        vm.proc.stop()


@pytest.fixture()
def ha_pair(
    tmp_path: Path, victoriametrics: VictoriaMetricsHandle
) -> Iterator[tuple[GaugeTarget, list[PrometheusHandle], VictoriaMetricsHandle]]:
    target = GaugeTarget("ha_value")
    vm = victoriametrics
    proms: list[PrometheusHandle] = []
    try:
        for replica in ("prometheus-1", "prometheus-2"):
            port = free_port()
            proms.append(
                start_prometheus(
                    tmp_path / replica,
                    port=port,
                    targets={
                        "ha": [target.address],
                        topology.PROMETHEUS_JOB: [f"127.0.0.1:{port}"],
                    },
                    scrape_interval=SCRAPE,
                    external_labels={stackconfig.REPLICA_LABEL: replica},
                    remote_write=[vm.write_url],
                )
            )
        yield target, proms, vm
    finally:
        for prom in proms:
            prom.proc.stop()
        target.stop()


def raw_samples(prom: PrometheusHandle, expr: str, at: float, seconds: int) -> set[tuple[int, str]]:
    """(timestamp ms, value) of every sample Prometheus holds for `expr` in the window."""
    result = prom.api("query", query=f"{expr}[{seconds}s]", time=f"{at:.3f}")["result"]
    return {(round(float(t) * 1000), v) for series in result for t, v in series["values"]}


def vm_samples(vm: VictoriaMetricsHandle, match: str, start: float, end: float) -> list[Any]:
    return vm.export(match, start, end)


def test_pair_writes_one_deduplicated_series_and_an_outage_leaves_no_gap(
    ha_pair: tuple[GaugeTarget, list[PrometheusHandle], VictoriaMetricsHandle],
) -> None:
    target, proms, vm = ha_pair
    with Ticker(target):
        start = time.time()

        def exported_until(t: float) -> bool:
            series = vm_samples(vm, '{__name__="ha_value"}', start, time.time())
            return bool(series) and max(series[0]["timestamps"]) / 1000 >= t

        wait_until(lambda: exported_until(start + 5), 60, "5 s of ha_value in VictoriaMetrics")
        vm.proc.stop()
        down = time.time()
        # The pair keeps scraping while VictoriaMetrics is away.
        wait_until(lambda: time.time() >= down + OUTAGE_SECONDS, OUTAGE_SECONDS + 5, "outage")
        vm.restart()
        up = time.time()
        wait_until(lambda: exported_until(up + 3), 90, "VictoriaMetrics to catch up")
    end = time.time()

    series = vm_samples(vm, '{__name__="ha_value"}', start, end)
    assert len(series) == 1, [s["metric"] for s in series]  # one series, not one per replica
    labels = series[0]["metric"]
    assert stackconfig.REPLICA_LABEL not in labels and labels["job"] == "ha", labels
    stamps = series[0]["timestamps"]
    values = [str(v if not float(v).is_integer() else int(v)) for v in series[0]["values"]]
    got = list(zip(stamps, values, strict=True))

    # Exactly the pair's samples: every stored (timestamp, value) was scraped by one of them.
    scraped = set().union(*(raw_samples(p, "ha_value", end, int(end - start) + 5) for p in proms))
    strangers = [s for s in got if s not in scraped]
    assert not strangers, f"{len(strangers)} samples no Prometheus scraped: {strangers[:5]}"

    # De-duplicated: about one sample per scrape interval, not one per replica.
    span = (stamps[-1] - stamps[0]) / 1000
    assert len(got) <= span + 2, f"{len(got)} samples over {span:.0f}s: not de-duplicated"

    # No gap, the outage included: consecutive samples at most ~two intervals apart,
    # or no further apart than the pair's own scrapes were (a machine too busy to run
    # Prometheus on time leaves a gap no storage can fill).
    def worst_gap(ts: list[int]) -> float:
        return max((b - a) / 1000 for a, b in zip(ts, ts[1:], strict=False))

    worst = worst_gap(stamps)
    in_range = sorted({t for t, _ in scraped if stamps[0] <= t <= stamps[-1]})
    allowed = max(2.5, worst_gap(in_range) + 1)
    assert worst <= allowed, f"a {worst:.1f}s gap in VictoriaMetrics (outage {down:.0f}-{up:.0f})"
    # During the outage, about one sample for every second either replica scraped in.
    during = [t for t in stamps if down * 1000 <= t <= up * 1000]
    scraped_seconds = {t // 1000 for t, _ in scraped if down * 1000 <= t <= up * 1000}
    assert len(during) >= 0.8 * len(scraped_seconds), (
        f"{len(during)} samples in a {up - down:.0f}s outage the pair scraped"
        f" in {len(scraped_seconds)} distinct seconds"
    )
    # The values only go up (the ticker counts): no replica's older sample overwrote a newer.
    numbers = [float(v) for _t, v in got]
    assert numbers == sorted(numbers)


def grafana_and_analytics_queries() -> list[tuple[str, str]]:
    out = []
    variables = {"$__rate_interval": "1m", "$__range": "1h", "$instance": ".*"}
    for path in sorted(build.DASHBOARD_DIR.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for t in panel["targets"]:
                expr = t["expr"]
                for var, value in variables.items():
                    expr = expr.replace(var, value)
                out.append((f"{path.name}: {panel['title']}", expr))
    out += [(f"/analytics {name}", q.promql) for name, q in QUERIES.items()]
    return out


def test_every_dashboard_and_analytics_query_runs_on_victoriametrics(
    victoriametrics: VictoriaMetricsHandle,
) -> None:
    vm = victoriametrics
    queries = grafana_and_analytics_queries()
    assert len(queries) > 30
    failed = []
    for where, expr in queries:
        try:
            vm.query(expr)
        except Exception as exc:  # noqa: BLE001 - collect every incompatibility at once
            failed.append(f"{where}: {expr}: {exc}")
    assert not failed, "\n".join(failed)
