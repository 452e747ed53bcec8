"""BENCHMARKS.md is rendered from one results file per bench part (bench/results/), so a
bench that refreshes its figures never drops another bench's section or rows."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from bench import report, results
from bench.results import RESULTS_DIR, Result

ROW = "| Weekly report over eight days | 9.9 s median | < 15 s | within | fresh run |"


def table_rows(text: str) -> set[str]:
    return {
        line
        for line in text.splitlines()
        if line.startswith("| ") and not line.startswith("| Figure |")
    }


@pytest.fixture()
def recorded(tmp_path: Path) -> Path:
    """A copy of the committed results, to refresh parts of."""
    copy = tmp_path / "results"
    shutil.copytree(RESULTS_DIR, copy)
    return copy


def test_the_committed_benchmarks_md_is_rendered_from_the_committed_results() -> None:
    assert report.OUT.read_text() == report.render(results.load()), (
        "BENCHMARKS.md is stale or edited by hand: record the figures in bench/results/"
        " (each bench does) and run python -m bench.report"
    )


def test_the_committed_results_hold_every_section_benches_added() -> None:
    text = report.OUT.read_text()
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert headings[:2] == [report.HA, report.SECURITY]
    assert headings[-1].startswith("Query plans at ")
    for figure in (
        "Seed ",
        "Weekly report over eight days",
        "Prometheus dead → dead man's switch page",
        "Storm: 40 app targets down",
        "Pages across HA faults",
        "Security layer in the app",
        "1,000 locust users: never rate-limited",
        "CPU per request: `POST /api/scans`",
        "Most locust users served (capacity search)",
    ):
        assert f"| {figure}" in text, figure


def test_refreshing_one_part_keeps_every_other_part_with_its_date(
    recorded: Path, tmp_path: Path
) -> None:
    before = report.render(results.load(recorded))
    out = tmp_path / "BENCHMARKS.md"
    results.publish(
        "report_render",
        {"rows": [ROW], "weekly_median_seconds": 9.9},
        "test",
        directory=recorded,
        out=out,
    )
    after = out.read_text()

    refreshed = json.loads((recorded / "report_render.json").read_text())
    assert refreshed["rows"] == [ROW] and refreshed["raw"] == {"weekly_median_seconds": 9.9}
    assert f"{ROW} {refreshed['measured']}, `{refreshed['commit']}` |" in after
    # Every other row is still there, still dated as it was measured.
    old_report_rows = {r for r in table_rows(before) if r.startswith("| Weekly report")}
    assert table_rows(before) - old_report_rows <= table_rows(after)
    assert "| 2026-11-30 22:56 UTC, `3d5c9ea` |" in after  # an HA row measured on its own
    assert re.findall(r"^## .+$", before, re.M) == re.findall(r"^## .+$", after, re.M)
    assert not old_report_rows & table_rows(after)


def test_a_section_no_one_ordered_yet_is_rendered_not_dropped(recorded: Path) -> None:
    results.record(
        "new_bench",
        section="Something new",
        columns=results.FIGURE_COLUMNS,
        rows=["| A new figure | 1 s | how |"],
        directory=recorded,
    )
    text = report.render(results.load(recorded))
    assert "\n## Something new\n" in text and "| A new figure | 1 s | how | " in text
    assert text.index(f"## {report.SECURITY}") < text.index("## Something new")


def test_a_part_not_rerun_keeps_its_rows_after_make_bench_records_the_others(
    recorded: Path,
) -> None:
    """A part that `make bench` no longer runs (as the single 1000-user locust trial was,
    once the capacity search replaced it) keeps its recorded rows, dated, until someone
    removes its file."""
    results.record(
        "retired", rows=["| A retired figure | 2 s | < 3 s | within | old |"], directory=recorded
    )
    results.record(
        "seed", rows=["| Seed 10 bags | 0.1 s | < 120 s | within | test |"], directory=recorded
    )
    text = report.render(results.load(recorded))
    assert "| A retired figure | 2 s |" in text
    assert "| Seed 10 bags | 0.1 s |" in text and "| Seed 5,000,000 bags" not in text


def test_rows_that_do_not_fit_their_table_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="4 cells for 5 columns"):
        results.record("bad", rows=["| a | b | c | d |"], directory=tmp_path)
    with pytest.raises(ValueError, match="not a markdown table row"):
        results.record("bad", rows=["a | b"], directory=tmp_path)
    assert not list(tmp_path.glob("*.json"))


def test_a_malformed_results_file_names_itself(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text('{"part": "broken"}')
    with pytest.raises(ValueError, match="broken.json"):
        results.load(tmp_path)


def test_every_result_renders_its_when() -> None:
    r = Result(part="p", measured="2026-12-01", commit="abc1234")
    assert r.when == "2026-12-01, `abc1234`"


def test_a_partial_oncall_run_keeps_the_other_half(recorded: Path) -> None:
    """`bench.oncall --storm-only` records the storm; the dead man's switch rows stay."""
    from bench.oncall import record_parts

    storm = {
        "targets": 40,
        "sms_per_phone": 2,
        "emails_per_address": 2,
        "notifications": 2,
        "first_page_s": 12.0,
    }
    record_parts({"deadman": [], "storm": storm}, "test", recorded)
    text = report.render(results.load(recorded))
    assert "| Prometheus dead → dead man's switch page on every channel | 47 s" in text
    assert "(first page 12 s after the first failure)" in text
