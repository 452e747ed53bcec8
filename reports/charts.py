"""The report's charts, drawn server-side with matplotlib's Agg backend (no display,
no browser) from the series in report.json, as PNG bytes."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from common import slo
from common.thresholds import BY_KEY

WIDTH, HEIGHT, DPI = 8.0, 2.8, 100
BLUE, ORANGE, RED, GREY, GREEN = "#1f77b4", "#ff7f0e", "#d62728", "#7f7f7f", "#2ca02c"


def _times(points: list[list[float]], tz: ZoneInfo) -> tuple[Any, list[float]]:
    """Matplotlib's date numbers (the axis formatter shows them in `tz`) and the values."""
    return mdates.date2num([datetime.fromtimestamp(t, tz) for t, _ in points]), [
        v for _, v in points
    ]


def _new(title: str) -> tuple[Figure, Axes]:
    fig, ax = plt.subplots(figsize=(WIDTH, HEIGHT), dpi=DPI)
    ax.set_title(title, fontsize=11, loc="left")
    ax.grid(True, alpha=0.3)
    return fig, ax


def _png(fig: Figure) -> bytes:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _no_data(ax: Axes) -> None:
    ax.text(
        0.5,
        0.5,
        "no data",
        ha="center",
        va="center",
        fontsize=14,
        color=GREY,
        transform=ax.transAxes,
    )


def _time_axis(ax: Axes, tz: ZoneInfo, kind: str) -> None:
    fmt = "%H:%M" if kind == "daily" else "%a %d"
    ax.xaxis.set_major_formatter(mdates.DateFormatter(fmt, tz=tz))


def _threshold_lines(ax: Axes, key: str, scale: float = 1.0) -> None:
    t = BY_KEY[key]
    ax.axhline(t.warning * scale, color=ORANGE, linestyle="--", linewidth=1, label="warning")
    ax.axhline(t.critical * scale, color=RED, linestyle="--", linewidth=1, label="critical")


def traffic(report: dict[str, Any], tz: ZoneInfo) -> bytes:
    fig, ax = _new("Requests per minute and error rate")
    rpm = report["series"]["requests_per_minute"]
    errors = report["series"]["error_rate"]
    if not rpm:
        _no_data(ax)
        return _png(fig)
    ax.plot(*_times(rpm, tz), color=BLUE, label="requests/min")
    ax.set_ylabel("requests/min")
    right = ax.twinx()
    if errors:
        xs, ys = _times(errors, tz)
        right.plot(xs, [v * 100 for v in ys], color=RED, label="5xx %")
    right.set_ylabel("5xx %")
    _time_axis(ax, tz, report["kind"])
    return _png(fig)


def latency(report: dict[str, Any], tz: ZoneInfo) -> bytes:
    fig, ax = _new("Response time percentiles (seconds)")
    series = report["series"]
    if not series["p95"]:
        _no_data(ax)
        return _png(fig)
    for name, colour in (("p50", GREEN), ("p95", BLUE), ("p99", GREY)):
        if series[name]:
            ax.plot(*_times(series[name], tz), color=colour, label=name)
    _threshold_lines(ax, "response_time")
    ax.set_yscale("log")
    ax.legend(loc="upper left", fontsize=8)
    _time_axis(ax, tz, report["kind"])
    return _png(fig)


def system(report: dict[str, Any], tz: ZoneInfo) -> bytes:
    fig, ax = _new("CPU and memory (%)")
    series = report["series"]
    if not series["cpu"] and not series["memory"]:
        _no_data(ax)
        return _png(fig)
    for name, colour in (("cpu", BLUE), ("memory", GREEN)):
        if series[name]:
            xs, ys = _times(series[name], tz)
            ax.plot(xs, [v * 100 for v in ys], color=colour, label=name)
    ax.axhline(
        BY_KEY["cpu_usage"].critical * 100,
        color=RED,
        linestyle="--",
        linewidth=1,
        label="CPU critical",
    )
    ax.set_ylim(0, 100)
    ax.legend(loc="upper left", fontsize=8)
    _time_axis(ax, tz, report["kind"])
    return _png(fig)


def scans(report: dict[str, Any], tz: ZoneInfo) -> bytes:
    fig, ax = _new("Scans per hour")
    per_hour = report["business"]["scans_per_hour"]
    if not per_hour:
        _no_data(ax)
        return _png(fig)
    hours = [datetime.fromisoformat(h).hour for h, _ in per_hour]
    ax.bar(hours, [v for _, v in per_hour], color=BLUE)
    ax.set_xticks(range(0, 24, 2))
    ax.set_xlabel("hour of day")
    return _png(fig)


def availability_by_day(report: dict[str, Any], tz: ZoneInfo) -> bytes:
    fig, ax = _new(f"Availability by day (objective {slo.objective_percent()})")
    days = [(d, v) for d, v in report["availability_by_day"] if v is not None]
    if not days:
        _no_data(ax)
        return _png(fig)
    labels = [datetime.fromisoformat(d).strftime("%a %d") for d, _ in days]
    values = [v * 100 for _, v in days]
    colours = [GREEN if v >= slo.OBJECTIVE * 100 else RED for v in values]
    ax.bar(labels, values, color=colours)
    ax.axhline(slo.OBJECTIVE * 100, color=ORANGE, linestyle="--", linewidth=1)
    ax.set_ylim(max(0.0, min(values) - 0.5), 100.05)
    return _png(fig)


def p95_by_day(report: dict[str, Any], tz: ZoneInfo) -> bytes:
    fig, ax = _new("p95 response time by day: this week and last (seconds)")
    this, last = report["p95_by_day"]["this_week"], report["p95_by_day"]["last_week"]
    if all(v is None for v in this + last):
        _no_data(ax)
        return _png(fig)
    days = list(range(7))
    names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    ax.bar(
        [d - 0.2 for d in days], [v or 0 for v in last], width=0.4, color=GREY, label="last week"
    )
    ax.bar(
        [d + 0.2 for d in days], [v or 0 for v in this], width=0.4, color=BLUE, label="this week"
    )
    ax.set_xticks(days, names)
    _threshold_lines(ax, "response_time")
    ax.legend(loc="upper left", fontsize=8)
    return _png(fig)


def _projection_chart(
    report: dict[str, Any], tz: ZoneInfo, series: str, row: int, title: str, scale: float
) -> bytes:
    fig, ax = _new(title)
    points = report["series"].get(series) or []
    cap = report["capacity"][row]
    if not points:
        _no_data(ax)
        return _png(fig)
    xs, ys = _times(points, tz)
    ax.plot(xs, [v * scale for v in ys], color=BLUE, label="measured")
    days = cap.get("days_until_limit")
    if days is not None and cap.get("growth_per_day"):
        shown = min(days, 60.0)
        end = points[-1][0] + shown * 86400
        ax.plot(
            [xs[-1], mdates.date2num(datetime.fromtimestamp(end, tz))],
            [ys[-1] * scale, (ys[-1] + cap["growth_per_day"] * shown) * scale],
            color=ORANGE,
            linestyle="--",
            label=f"at this growth: limit in {days:.0f} days",
        )
    if cap.get("limit") is not None:
        ax.axhline(cap["limit"] * scale, color=RED, linestyle=":", linewidth=1, label="limit")
    ax.legend(loc="upper left", fontsize=8)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b", tz=tz))
    return _png(fig)


def disk(report: dict[str, Any], tz: ZoneInfo) -> bytes:
    return _projection_chart(report, tz, "disk", 0, "Disk usage (%) and projection", 100)


def bags(report: dict[str, Any], tz: ZoneInfo) -> bytes:
    row = next(i for i, r in enumerate(report["capacity"]) if r["label"].startswith("Bags"))
    return _projection_chart(report, tz, "bags", row, "Bags (millions) and projection", 1e-6)


def alerts_by_hour(report: dict[str, Any], tz: ZoneInfo) -> bytes:
    fig, ax = _new("Alerts by hour of day (start time)")
    patterns = report["alert_patterns"]
    if not patterns.get("available"):
        _no_data(ax)
        return _png(fig)
    ax.bar(range(24), patterns["by_hour_of_day"], color=ORANGE)
    ax.set_xticks(range(0, 24, 2))
    ax.set_xlabel("hour of day")
    return _png(fig)


Chart = Callable[[dict[str, Any], ZoneInfo], bytes]
CHARTS: dict[str, tuple[tuple[str, str, Chart], ...]] = {
    # (file name, caption, drawing)
    "daily": (
        ("traffic.png", "Requests per minute and error rate", traffic),
        ("latency.png", "Response time percentiles", latency),
        ("system.png", "CPU and memory", system),
        ("scans.png", "Scans per hour", scans),
    ),
    "weekly": (
        ("availability.png", "Availability by day", availability_by_day),
        ("latency.png", "p95 by day, this week and last", p95_by_day),
        ("traffic.png", "Requests per minute and error rate", traffic),
        ("disk.png", "Disk usage and projection", disk),
        ("bags.png", "Bags and projection", bags),
        ("alerts.png", "Alerts by hour of day", alerts_by_hour),
    ),
}


def render_all(report: dict[str, Any]) -> list[tuple[str, str, bytes]]:
    tz = ZoneInfo(report["timezone"])
    return [(name, caption, draw(report, tz)) for name, caption, draw in CHARTS[report["kind"]]]
