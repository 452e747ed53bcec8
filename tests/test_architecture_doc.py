"""docs/architecture.md is where the product explains itself: every `§N` the code and
docs cite exists there, and nothing cites a design document outside the repository."""

from __future__ import annotations

import re
import subprocess

from tests.support.threshold_check import markdown_table_problems
from tooling.checkout import ROOT

DOC = ROOT / "docs" / "architecture.md"


def tracked_text_files() -> dict[str, str]:
    names = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    out = {}
    for name in names:
        path = ROOT / name
        if path.suffix in {".png", ".pdf"} or not path.is_file():
            continue
        try:
            out[name] = path.read_text()
        except UnicodeDecodeError:
            continue
    return out


def test_every_cited_section_exists() -> None:
    sections = set(re.findall(r"^## (\d+)\. ", DOC.read_text(), re.M))
    cited = {
        (name, n)
        for name, text in tracked_text_files().items()
        for n in re.findall(r"architecture(?:\.md)? §(\d+)", text)
    }
    assert cited, "nothing cites docs/architecture.md"
    assert {(name, n) for name, n in cited if n not in sections} == set()


def test_nothing_cites_a_document_outside_the_repository() -> None:
    outside = re.compile(r"DESIGN §|DESIGN\.md|operator guide", re.I)
    found = [name for name, text in tracked_text_files().items() if outside.search(text)]
    assert found == [] or found == ["tests/test_architecture_doc.py"]


def test_the_thresholds_table_is_the_one_in_common() -> None:
    """§5's table is what operators read first; it was checked nowhere (the runbook's is)."""
    assert markdown_table_problems(DOC.read_text(), "docs/architecture.md") == []
