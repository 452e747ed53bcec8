"""report.json -> the sections people read, written as email-safe HTML and as PDF.

One view model (`sections`) feeds both formats, so the HTML and the PDF always say
the same. The HTML uses tables and inline styles only (what mail clients render);
images are `cid:` references in the email and data URIs in the stored file.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from fpdf import FPDF
from jinja2 import Environment, PackageLoader, select_autoescape

from common import slo

NO_DATA = "no data"
STATUS_COLOURS = {"ok": "#2ca02c", "warning": "#ff7f0e", "critical": "#d62728"}


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return NO_DATA
    if unit == "ratio":
        # Near 100 % the third decimal matters (99.95 % vs 99.9 % is the SLO).
        return f"{value * 100:.3f} %" if 0.9 <= value <= 1 else f"{value * 100:.2f} %"
    if unit == "seconds":
        return duration(value)
    if unit == "per_minute":
        return f"{value:,.1f}/min"
    if unit == "per_day":
        return f"{value:,.0f}/day"
    if unit == "bytes":
        return f"{value / 1e9:,.2f} GB"
    if unit == "days":
        return f"{value:,.0f} days"
    return f"{value:,.0f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:,.2f}"


def duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes = seconds / 60
    if minutes < 120:
        return f"{minutes:.0f} min"
    return f"{minutes // 60:.0f} h {minutes % 60:.0f} min"


@dataclass
class Row:
    label: str
    value: str
    status: str | None = None  # ok | warning | critical: colours the value


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]


@dataclass
class Section:
    title: str
    rows: list[Row] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _row(fig: dict[str, Any]) -> Row:
    return Row(fig["label"], fmt(fig["value"], fig["unit"]), fig.get("status"))


def _rows(section: dict[str, Any], keys: tuple[str, ...]) -> list[Row]:
    return [_row(section[k]) for k in keys]


def headline(report: dict[str, Any]) -> list[Row]:
    s = report["slo"]
    met = s["met"]
    verdict = NO_DATA if met is None else ("met" if met else "missed")
    return [
        Row(
            f"Availability (SLO {slo.objective_percent()})",
            f"{fmt(s['availability']['value'], 'ratio')} ({verdict})",
            None if met is None else ("ok" if met else "critical"),
        ),
        _row(s["budget_spent_in_period"]),
        _row(s["budget_remaining"]),
        _row(report["performance"]["p95"]),
        _row(report["performance"]["error_rate"]),
        Row("Alerts fired", fmt(report["alerts"].get("fired", {}).get("value"), "count")),
    ]


def _alerts(report: dict[str, Any]) -> Section:
    a = report["alerts"]
    sec = Section("Alert summary")
    if not a["available"]:
        sec.notes.append(a["note"])
        return sec
    by_sev = a["fired_by_severity"]
    sec.rows = [
        _row(a["fired"]),
        Row("By severity", ", ".join(f"{n} {s}" for s, n in by_sev.items())),
        Row("Still firing at the end", fmt(a["still_firing"], "count")),
    ]
    longest = a["longest"]
    if longest:
        state = "" if longest["resolved"] else ", still firing"
        sec.rows.append(
            Row(
                "Longest",
                f"{longest['alert']} ({longest['severity']}) from {longest['started']}:"
                f" {duration(longest['seconds'])}{state}",
            )
        )
    else:
        sec.rows.append(Row("Longest", "none fired"))
    sec.rows += _rows(
        a,
        (
            "time_to_resolve_median",
            "time_to_resolve_max",
            "acknowledged",
            "time_to_acknowledge_median",
            "time_to_acknowledge_max",
        ),
    )
    if a["by_name"]:
        sec.tables.append(Table(["Alert", "Fired"], [[n, str(c)] for n, c in a["by_name"].items()]))
    return sec


def summary_sections(report: dict[str, Any]) -> list[Section]:
    perf = report["performance"]
    routes = Table(
        ["Route", "Requests", "p50", "p95", "p99"],
        [
            [
                route,
                fmt(v.get("requests"), "count"),
                *(fmt(v.get(p), "seconds") for p in ("p50", "p95", "p99")),
            ]
            for route, v in perf["by_route"].items()
        ],
    )
    system = report["system"]
    disks = system["disk_peak_by_mountpoint"]
    return [
        Section(
            "System health",
            _rows(report["slo"], ("availability", "budget_remaining"))
            + _rows(system, ("cpu_peak", "memory_peak", "disk_peak", "db_connections_peak")),
            notes=[
                "Disk peak by mountpoint: "
                + ", ".join(f"{k} {fmt(v, 'ratio')}" for k, v in disks.items())
            ]
            if len(disks) > 1
            else [],
        ),
        Section(
            "Performance",
            _rows(
                perf,
                (
                    "p50",
                    "p95",
                    "p99",
                    "requests",
                    "requests_per_minute",
                    "requests_per_minute_peak",
                    "error_rate",
                    "cache_hit_rate",
                ),
            ),
            tables=[routes] if routes.rows else [],
        ),
        _alerts(report),
        Section(
            "User activity",
            _rows(report["users"], ("active_users_peak", "logins", "failed_logins")),
        ),
        Section(
            "Bag scanning",
            _rows(
                report["business"],
                ("scans", "scans_per_hour_peak", "bags_created", "bills_created", "total_bags"),
            ),
            notes=[f"Busiest hour started {report['business']['scans_per_hour_peak_at']}"]
            if report["business"]["scans_per_hour_peak_at"]
            else [],
        ),
    ]


def weekly_sections(report: dict[str, Any]) -> list[Section]:
    trend_rows = []
    for t in report["trends"]:
        if t["change"] is not None:
            change = f"{t['change'] * 100:+.1f} %"
        elif t["last_week"] == 0 and t["this_week"]:
            change = "up from 0"
        else:
            change = NO_DATA
        trend_rows.append(
            [
                t["label"],
                fmt(t["last_week"], t["unit"]),
                fmt(t["this_week"], t["unit"]),
                change,
                t["verdict"] or "",
            ]
        )
    cap_rows = []
    for c in report["capacity"]:
        growth = c["growth_per_day"]
        unit = c["unit"]
        growth_text = (
            NO_DATA if growth is None else f"{'+' if growth >= 0 else ''}{fmt(growth, unit)}/day"
        )
        if c["days_until_limit"] is not None:
            when = fmt(c["days_until_limit"], "days")
        elif c["current"] is None:
            when = NO_DATA
        elif c["note"]:
            when = c["note"]
        else:
            when = "not growing"
        cap_rows.append([c["label"], fmt(c["current"], unit), growth_text, when])
    suggestions = Section("Performance suggestions")
    for s in report["suggestions"]:
        suggestions.notes.append(f"{s['topic']}: {s['suggestion']} (because {s['because']})")
    if not report["suggestions"]:
        suggestions.notes.append("Nothing in this week's numbers calls for a change.")
    patterns = Section("Alert pattern analysis")
    p = report["alert_patterns"]
    if not p["available"]:
        patterns.notes.append(p["note"])
    else:
        patterns.tables.append(
            Table(
                ["Noisiest alerts", "Fired"], [[n["alert"], str(n["fired"])] for n in p["noisiest"]]
            )
        )
        patterns.notes.append(
            "Flapping (fired again within an hour of resolving): "
            + (
                ", ".join(
                    f"{f['alert']} ({f['refired_within_an_hour']} times)" for f in p["flapping"]
                )
                or "none"
            )
        )
        patterns.notes.append(
            f"Resolved by themselves within {p['self_resolving_minutes']} minutes (candidates for a longer for: or a"
            " better threshold): "
            + (
                ", ".join(
                    f"{s['alert']} ({s['resolved_within_minutes']} of {s['of']})"
                    for s in p["self_resolving"]
                )
                or "none"
            )
        )
    return [
        Section(
            "Trend analysis: this week against last",
            tables=[Table(["Figure", "Last week", "This week", "Change", ""], trend_rows)],
        ),
        Section(
            "Capacity planning", tables=[Table(["Limit", "Now", "Growth", "Reached in"], cap_rows)]
        ),
        suggestions,
        patterns,
    ]


def sections(report: dict[str, Any]) -> list[Section]:
    if report["kind"] == "weekly":
        return weekly_sections(report) + summary_sections(report)
    return summary_sections(report)


# --- HTML ------------------------------------------------------------------------------

_env = Environment(
    loader=PackageLoader("reports", "templates"), autoescape=select_autoescape(["html"])
)


def html(report: dict[str, Any], charts: list[tuple[str, str, bytes]], inline: bool = True) -> str:
    """`inline`: images as data URIs (a standalone file); else `cid:<name>` (email)."""
    images = []
    for name, caption, png in charts:
        src = f"data:image/png;base64,{base64.b64encode(png).decode()}" if inline else f"cid:{name}"
        images.append({"src": src, "caption": caption})
    return _env.get_template("report.html").render(
        report=report,
        headline=headline(report),
        sections=sections(report),
        images=images,
        colours=STATUS_COLOURS,
    )


# --- PDF --------------------------------------------------------------------------------


def _latin1(text: str) -> str:
    # The PDF core fonts are Latin-1; a route or alert name never needs more.
    return text.encode("latin-1", "replace").decode("latin-1")


class _Pdf(FPDF):
    def __init__(self, title: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.report_title = title
        self.set_auto_page_break(auto=True, margin=15)
        self.set_title(_latin1(title))
        self.set_creator("TraceTrack Monitor")

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", size=8)
        self.set_text_color(120)
        self.cell(0, 6, _latin1(f"{self.report_title} - page {self.page_no()}"), align="C")


def _pdf_rows(pdf: _Pdf, rows: list[Row]) -> None:
    pdf.set_font("Helvetica", size=10)
    for row in rows:
        pdf.set_text_color(0)
        pdf.cell(80, 6, _latin1(row.label))
        colour = STATUS_COLOURS.get(row.status or "")
        if colour:
            pdf.set_text_color(*(int(colour[i : i + 2], 16) for i in (1, 3, 5)))
        pdf.multi_cell(0, 6, _latin1(row.value), new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0)


def _pdf_table(pdf: _Pdf, table: Table) -> None:
    pdf.set_font("Helvetica", size=9)
    # The first column holds names: twice the room of the figures beside it.
    widths = (2, *([1] * (len(table.headers) - 1)))
    with pdf.table(
        first_row_as_headings=True, line_height=5, col_widths=widths, text_align="LEFT"
    ) as t:
        for cells in [table.headers, *table.rows]:
            row = t.row()
            for cell in cells:
                row.cell(_latin1(cell))
    pdf.ln(2)


def pdf(report: dict[str, Any], charts: list[tuple[str, str, bytes]]) -> bytes:
    import io

    doc = _Pdf(report["title"])
    doc.add_page()
    doc.set_font("Helvetica", "B", 16)
    doc.multi_cell(0, 9, _latin1(report["title"]), new_x="LMARGIN", new_y="NEXT")
    doc.set_font("Helvetica", size=9)
    doc.set_text_color(100)
    doc.multi_cell(
        0,
        5,
        _latin1(
            f"{report['start']} to {report['end']} ({report['timezone']}), generated {report['generated_at']}"
        ),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    doc.ln(3)
    doc.set_text_color(0)
    doc.set_font("Helvetica", "B", 12)
    doc.cell(0, 7, "Headline", new_x="LMARGIN", new_y="NEXT")
    _pdf_rows(doc, headline(report))
    for section in sections(report):
        doc.ln(3)
        doc.set_font("Helvetica", "B", 12)
        doc.cell(0, 7, _latin1(section.title), new_x="LMARGIN", new_y="NEXT")
        _pdf_rows(doc, section.rows)
        for table in section.tables:
            _pdf_table(doc, table)
        doc.set_font("Helvetica", size=9)
        for note in section.notes:
            doc.multi_cell(0, 5, _latin1(note), new_x="LMARGIN", new_y="NEXT")
    doc.add_page()
    doc.set_font("Helvetica", "B", 12)
    doc.cell(0, 7, "Charts", new_x="LMARGIN", new_y="NEXT")
    for _name, caption, png in charts:
        if doc.get_y() > 200:
            doc.add_page()
        doc.set_font("Helvetica", size=9)
        doc.cell(0, 5, _latin1(caption), new_x="LMARGIN", new_y="NEXT")
        doc.image(io.BytesIO(png), w=180)
        doc.ln(2)
    return bytes(doc.output())
