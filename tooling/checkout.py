"""The source checkout: generators, tests and benches read and write its files.

The services never do: what they read at run time ships as package data (templates,
migrations, the runbook, tooling/shipped/ for `tracetrack up`), so an installed
`tracetrack` works without a checkout.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
