"""Run `schemathesis run` against a live service and summarise its NDJSON report.

A subprocess of the real CLI: every phase (examples, coverage, fuzzing, stateful) and
every check, a fixed seed and a bounded number of examples per operation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tooling.checkout import ROOT

CONFIG = Path(__file__).with_name("schemathesis.toml")
# The label of the stateful phase's scenarios, which chain several operations.
STATEFUL = "Stateful tests"


@dataclass
class FuzzRun:
    returncode: int
    output: str
    statuses: Counter[int] = field(default_factory=Counter)
    operations: set[str] = field(default_factory=set)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def summary(self) -> str:
        return (
            f"{self.requests} requests over {len(self.operations)} operations, "
            f"{self.server_errors} 5xx; statuses {dict(sorted(self.statuses.items()))}"
        )


def run_schemathesis(
    schema: str,
    report_dir: Path,
    *,
    seed: int,
    max_examples: int,
    base_url: str | None = None,
    hooks: str | None = None,
    env: dict[str, str] | None = None,
    extra: list[str] | None = None,
    timeout: float = 900,
) -> FuzzRun:
    exe = str(Path(sys.executable).with_name("schemathesis"))
    cmd = [
        exe,
        "--config-file",
        str(CONFIG),
        "--no-color",
        "run",
        schema,
        "--checks",
        "all",
        "--seed",
        str(seed),
        "--max-examples",
        str(max_examples),
        "--max-redirects",
        "0",  # a redirect is the documented answer, not the page it leads to
        "--workers",
        "1",
        "--generation-database",
        "none",  # no examples carried between runs: the seed alone decides
        "--report",
        "ndjson",
        "--report-dir",
        str(report_dir),
        *(["--url", base_url] if base_url else []),
        *(extra or []),
    ]
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    full_env.pop("SCHEMATHESIS_HOOKS", None)
    if hooks:
        full_env["SCHEMATHESIS_HOOKS"] = hooks
    report_dir.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        # In the report directory: schemathesis keeps a crash cache in its working directory.
        cmd,
        cwd=report_dir,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    run = FuzzRun(done.returncode, done.stdout + done.stderr)
    for report in report_dir.glob("*.ndjson"):
        _read_report(report, run)
    return run


def _read_report(path: Path, run: FuzzRun) -> None:
    for line in path.read_text().splitlines():
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if not finished:
            continue
        recorder = finished["recorder"]
        for interaction in (recorder.get("interactions") or {}).values():
            response = interaction.get("response")
            if response:
                run.statuses[int(response["status_code"])] += 1
                if recorder["label"] != STATEFUL:
                    run.operations.add(recorder["label"])
