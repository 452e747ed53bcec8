"""The runbook's faults table is the fault suite's catalogue (tooling/fault_catalog.py):
rendered from it, every fault has its test in tests/test_faults.py, and every page it
promises is an alert the rules (or the bridge's dead man's switch) produce."""

from __future__ import annotations

import ast

from tooling import fault_catalog, rules_gen
from tooling.checkout import ROOT

RUNBOOK = ROOT / "docs" / "runbook.md"
SUITE = ROOT / "tests" / "test_faults.py"


def test_the_runbook_shows_the_catalogue() -> None:
    assert fault_catalog.render_table() in RUNBOOK.read_text(), (
        "docs/runbook.md's faults table is stale: replace it with `python -m tooling.fault_catalog`"
    )


def test_every_fault_has_its_test_in_the_suite() -> None:
    tree = ast.parse(SUITE.read_text())
    tests = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    for fault in fault_catalog.FAULTS:
        assert f"test_{fault.key}" in tests, fault.key
        # ...and the test uses the catalogue entry, so what it checks is what we say.
        assert f'BY_KEY["{fault.key}"]' in SUITE.read_text(), fault.key


def test_every_promised_page_exists() -> None:
    alerts = {
        (r["alert"], r["labels"]["severity"])
        for g in rules_gen.rules_document()["groups"]
        for r in g["rules"]
        if "alert" in r
    }
    for fault in fault_catalog.FAULTS:
        if fault.page is None or fault.dms:
            continue
        assert (fault.page, fault.severity) in alerts, fault
