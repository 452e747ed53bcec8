"""docs/alert-bridge.md's notification samples are what the code sends today."""

from __future__ import annotations

import re

from tests.support.samples import samples
from tooling.checkout import ROOT

DOC = ROOT / "docs" / "alert-bridge.md"


def test_the_documented_samples_are_current() -> None:
    text = DOC.read_text()
    found = dict(re.findall(r"<!-- sample: ([\w-]+) -->\n```\w*\n(.*?)\n```", text, re.S))
    expected = samples()
    assert set(found) == set(expected), "run: .venv/bin/python -m tests.support.samples"
    for name, body in expected.items():
        assert found[name] == body, (
            f"docs/alert-bridge.md sample {name!r} is stale: .venv/bin/python -m"
            " tests.support.samples"
        )
