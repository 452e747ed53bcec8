"""What BENCHMARKS.md is rendered from: one results file per bench part, committed.

    bench/results/<part>.json

Each bench records its own part when it runs (`record`; `make bench` records every
part it measures), and `python -m bench.report` renders BENCHMARKS.md from every file
there. A part that was not re-run keeps its rows, shown with the date and commit they
were measured at, so refreshing one figure never drops another bench's section.

A part is either rows of a table (`section` names the table: BENCHMARKS.md's main
table of budgets, or a section of its own such as "High availability and capacity",
with its `columns`) or a block of markdown (`text`, e.g. the query plans). `intro` is
a paragraph printed before the part's rows (what that run was), `note` one printed
under the section's tables (how it went); `raw` keeps the figures the rows were
rendered from.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from tooling.checkout import ROOT

RESULTS_DIR = ROOT / "bench" / "results"

MAIN = "main"  # BENCHMARKS.md's first table: every figure beside its budget
BUDGET_COLUMNS = ("Figure", "Measured", "Budget", "Verdict", "How")
FIGURE_COLUMNS = ("Figure", "Measured", "How")


@dataclass(frozen=True)
class Result:
    part: str
    measured: str  # "YYYY-MM-DD HH:MM UTC" (or a day, for figures recorded by hand)
    commit: str
    section: str = MAIN
    columns: tuple[str, ...] = BUDGET_COLUMNS
    rows: tuple[str, ...] = ()
    text: str | None = None
    intro: str | None = None
    note: str | None = None
    command: str | None = None
    machine: dict[str, Any] = field(default_factory=dict)
    raw: Any = None

    @property
    def when(self) -> str:
        return f"{self.measured}, `{self.commit}`"


def now() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def _rows(rows: Any) -> tuple[str, ...]:
    """Table rows as the benches render them: `| a | b | ... |`, one line each."""
    out = tuple(str(r) for r in rows or ())
    for row in out:
        if not (row.startswith("| ") and row.endswith(" |")) or "\n" in row:
            raise ValueError(f"not a markdown table row: {row[:80]!r}")
    return out


def record(
    part: str,
    *,
    rows: Any = (),
    section: str = MAIN,
    columns: tuple[str, ...] = BUDGET_COLUMNS,
    text: str | None = None,
    intro: str | None = None,
    note: str | None = None,
    command: str | None = None,
    raw: Any = None,
    directory: Path = RESULTS_DIR,
) -> Path:
    """Write `part`'s results file (replacing its previous measurement only)."""
    result = Result(
        part=part,
        measured=now(),
        commit=commit(),
        section=section,
        columns=tuple(columns),
        rows=_rows(rows),
        text=text,
        intro=intro,
        note=note,
        command=command,
        machine=machine(),
        raw=raw,
    )
    return save(result, directory)


def save(result: Result, directory: Path = RESULTS_DIR) -> Path:
    for row in result.rows:
        cells = row.count(" | ") + 1
        if cells != len(result.columns):
            raise ValueError(
                f"{result.part}: a row has {cells} cells for {len(result.columns)} columns: {row[:80]!r}"
            )
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{result.part}.json"
    path.write_text(json.dumps(asdict(result), indent=2, default=str, ensure_ascii=False) + "\n")
    return path


def load(directory: Path = RESULTS_DIR) -> list[Result]:
    """Every recorded part, by name; a malformed file names itself."""
    results = []
    for path in sorted(directory.glob("*.json")):
        try:
            data = json.loads(path.read_text())
            data["columns"] = tuple(data.get("columns", BUDGET_COLUMNS))
            data["rows"] = _rows(data.get("rows"))
            results.append(Result(**data))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: not a bench results file: {exc}") from exc
    return results


def without_rows(result: Any) -> Any:
    """A bench's result as `raw`: its rendered rows are stored once, as `rows`."""
    if isinstance(result, dict):
        return {k: v for k, v in result.items() if k != "rows"}
    return result


def publish(
    part: str,
    result: dict[str, Any],
    command: str,
    *,
    directory: Path = RESULTS_DIR,
    out: Path | None = None,
) -> Path:
    """A bench run on its own: record its part from `result["rows"]` and re-render
    BENCHMARKS.md (`out`) with every other part as recorded."""
    from bench import report  # report renders results: imported here, not at the top

    record(
        part, rows=result["rows"], raw=without_rows(result), command=command, directory=directory
    )
    return report.write(out or report.OUT, directory)


def add_record_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-record",
        action="store_true",
        help="print only: leave bench/results/ and BENCHMARKS.md as they are",
    )


def command_line(module: str, argv: list[str] | None = None) -> str:
    """How a bench was run, for its results file."""
    return " ".join(["python -m", module, *(sys.argv[1:] if argv is None else argv)])


def finish(
    part: str,
    result: dict[str, Any],
    args: argparse.Namespace,
    module: str,
    argv: list[str] | None,
) -> None:
    """The end of a bench run on its own: its figures and rows on stdout, then (unless
    --no-record) its part recorded and BENCHMARKS.md rendered again."""
    print(json.dumps(without_rows(result), indent=2, default=str))
    print("\n".join(result["rows"]))
    if not args.no_record:
        publish(part, result, command_line(module, argv))
