"""Fault to page, recovery to resolved notice: the fault suite's timings in BENCHMARKS.md.

    flock /work/wt/.heavy.lock .venv/bin/python -m bench.faults                 # 3 fast runs
    flock /work/wt/.heavy.lock .venv/bin/python -m bench.faults --config shipped --runs 1
    .venv/bin/python -m bench.faults --runs 1 --no-record                        # print only

Runs tests/test_faults.py (a real stack under load, every fault of
tooling/fault_catalog.py) `--runs` times with TRACETRACK_FAULT_TIMINGS set, so each fault
test appends its measurements: seconds from injecting the fault to the page's email
arriving at the SMTP sink, from undoing it to the resolved (or RECOVERED) email, and
what the load's clients saw meanwhile. `--config fast` is the suite as `make test` runs
it (1 s scrapes and evaluations, the shipped `for:` windows / 10, 1 s group waits, an
8 s dead man's switch); `--config shipped` runs it on the shipped timings (minutes per
fault). Each configuration is recorded as a part of its own (bench/results/
faults_<config>.json, bench/results.py) and BENCHMARKS.md's section shows a table for
each configuration measured: the median and range of the runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench import report, results
from tooling.checkout import ROOT
from tooling.fault_catalog import BY_KEY, FAULTS

CONFIGS = {
    "fast": "Fast test configuration (`make test`): scrapes and rule evaluations every 1 s,"
    " the shipped `for:` windows divided by 10 (at least 1 s), group waits 1 s, the dead"
    " man's switch probing after 4 s and paging after 8 s without a heartbeat.",
    "shipped": "Shipped configuration: scrapes and rule evaluations every 10 s, the shipped"
    " `for:` windows, Alertmanager's shipped group waits (critical 10 s, warning 30 s), the"
    " bridge's shipped dead man's switch (probing after 30 s, paging after 60 s).",
}


def run_suite(runs: int, config: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for n in range(runs):
        with tempfile.NamedTemporaryFile("r", suffix=".jsonl") as out:
            env = {
                **os.environ,
                "TRACETRACK_FAULT_TIMINGS": out.name,
                "TRACETRACK_FAULT_CONFIG": config,
            }
            started = time.monotonic()
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    # The shipped timings wait minutes per fault (a warning's resolved
                    # notice waits for its 5 m group_interval): past pytest's 300 s default.
                    "--timeout",
                    str(3600 if config == "shipped" else 300),
                    str(ROOT / "tests" / "test_faults.py"),
                ],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
            )
            took = time.monotonic() - started
            print(f"run {n + 1}/{runs}: {done.stdout.strip().splitlines()[-1]} ({took:.0f} s)")
            if done.returncode != 0:
                raise SystemExit(f"the fault suite failed:\n{done.stdout[-4000:]}")
            records += [{**json.loads(line), "run": n, "suite_seconds": took} for line in out]
    return records


def _spread(values: list[float]) -> str:
    if not values:
        return "—"
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:.1f} s"
    return f"{med:.1f} s ({min(values):.1f}–{max(values):.1f})"


COLUMNS = ("Fault", "The page", "Fault → page", "Recovery → resolved", "Clients during the fault")


def rows(records: list[dict[str, Any]]) -> list[str]:
    lines = []
    for fault in FAULTS:
        mine = [r for r in records if r["fault"] == fault.key]
        if not mine:
            continue
        page = [r["page_seconds"] for r in mine if r.get("page_seconds") is not None]
        resolved = [r["resolved_seconds"] for r in mine if r.get("resolved_seconds") is not None]
        impact = sorted(mine, key=lambda r: r["impact"]["requests"])[len(mine) // 2]["impact"]
        told = BY_KEY[fault.key].page or "none (by design)"
        clients = (
            f"{impact['requests']} requests: {impact['5xx']} × 5xx, {impact['timeouts']}"
            f" timeouts, {impact['connection errors']} connection errors"
        )
        lines.append(
            f"| {fault.fault} | {told} | {_spread(page)} | {_spread(resolved)} | {clients} |"
        )
    return lines


def intro(config: str, records: list[dict[str, Any]], runs: int) -> str:
    suite = sorted({round(r["suite_seconds"]) for r in records})
    return f"{CONFIGS[config]} {runs} run(s), {suite[0]}–{suite[-1]} s a run."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--config", choices=sorted(CONFIGS), default="fast")
    results.add_record_flag(parser)
    args = parser.parse_args(argv)
    records = run_suite(args.runs, args.config)
    print(intro(args.config, records, args.runs))
    print("\n".join(rows(records)))
    if not args.no_record:
        # Each configuration is a part of its own: measuring one keeps the other's rows.
        results.record(
            f"faults_{args.config}",
            section=report.FAULTS,
            columns=COLUMNS,
            rows=rows(records),
            intro=intro(args.config, records, args.runs),
            command=results.command_line("bench.faults", argv),
            raw={"records": records, "runs": args.runs},
        )
        print(f"wrote {report.write()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
