"""Server-rendered HTML of /analytics (Jinja2, autoescaped; no JavaScript needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)

TITLES = {
    "cpu_usage": "CPU usage",
    "memory_usage": "Memory usage",
    "disk_usage": "Disk usage",
    "db_connections": "Active database connections",
    "avg_response_time": "Average response time",
    "p95_response_time": "p95 response time",
    "requests_per_minute": "Requests per minute",
    "error_rate": "Error rate",
    "cache_hit_rate": "Cache hit rate",
    "total_bags": "Total bags",
    "active_users": "Active users",
    "scans_today": "Scans today",
    "bills_today": "Bills created today",
    "login_failures_per_minute": "Failed logins per minute",
    "account_lockouts_last_15m": "Login lockouts (15 min)",
    "rate_limited_per_minute": "Rate-limited requests per minute",
    "suspicious_scans_last_15m": "Suspicious scans (15 min, worst kind)",
    "injection_attempts_last_15m": "Injection attempts (15 min, worst kind)",
    "blocked_requests_per_minute": "Blocked requests per minute",
    "blocked_clients": "Blocked addresses",
}
SECTION_TITLES = {
    "system": "System metrics",
    "performance": "Performance metrics",
    "business": "Business metrics",
    "security": "Security",
}
RECENT_ALERTS = 5


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "no data"
    if unit == "ratio":
        return f"{value * 100:.1f} %"
    if unit == "seconds":
        return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"
    if unit == "per_minute":
        return f"{value:,.1f} /min"
    return f"{value:,.0f}"


def limit_text(item: dict[str, Any]) -> str:
    if "warning" not in item:
        return ""
    sign = ">" if item["bad_when"] == "above" else "<"
    return (
        f"warning {sign} {fmt(item['warning'], item['unit'])}, "
        f"critical {sign} {fmt(item['critical'], item['unit'])}"
    )


def dashboard(
    metrics: dict[str, Any], alerts: dict[str, Any] | None, alert_error: str | None
) -> str:
    sections = []
    for key, title in SECTION_TITLES.items():
        cards = [
            {
                "name": name,
                "title": TITLES.get(name, name),
                "value": item["value"],
                "text": fmt(item["value"], item["unit"]),
                "status": item.get("status") or "none",
                "limits": limit_text(item),
            }
            for name, item in metrics[key].items()
        ]
        sections.append({"key": key, "title": title, "cards": cards})
    recent = alerts["alerts"][:RECENT_ALERTS] if alerts else []
    return _env.get_template("dashboard.html").render(
        sections=sections,
        alerts=recent,
        alert_total=alerts["total"] if alerts else 0,
        alert_error=alert_error,
        generated_at=metrics["generated_at"],
        cached=metrics["cached"],
        refresh_seconds=max(5, int(metrics["max_age_seconds"]) or 30),
    )


def login(error: str | None = None) -> str:
    return _env.get_template("login.html").render(error=error)


def forbidden() -> str:
    return _env.get_template("message.html").render(
        title="Admins only", message="The analytics dashboard is for admin users.", link=True
    )


def unavailable(reason: str) -> str:
    return _env.get_template("message.html").render(
        title="Metrics unavailable", message=reason, link=False, refresh=True
    )


def reports(items: list[dict[str, Any]]) -> str:
    def availability(value: float | None) -> str:
        return "no data" if value is None else f"{value * 100:.3f} %"

    return _env.get_template("reports.html").render(reports=items, availability=availability)
