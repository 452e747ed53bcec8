"""The reporter's settings: where Prometheus and the bridge's store are, where reports
go, when they are sent, and the bridge's SMTP settings (common/smtp.py)."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator

from common.dburl import sqlalchemy_url
from common.settings import url_problem
from common.smtp import SmtpSettings

# The bridge's store when BRIDGE_DATABASE_URL is unset (alert_bridge/settings.py).
BRIDGE_SQLITE_NAME = "bridge.sqlite3"


class ReportSettings(SmtpSettings):
    bridge_database_url: str | None = None
    # The operator's file, in the directory the reporter runs from (as the bridge reads it).
    alert_config_file: Path = Path("alert_config.py")
    report_hour: int = Field(8, ge=0, le=23)  # local time of the daily and weekly sends
    # Database size capacity planning: days until this size (none: growth only).
    report_db_size_limit_bytes: float | None = Field(None, gt=0)
    report_query_timeout_seconds: float = Field(60.0, gt=0)
    # The scrape interval range windows are sized from; None -> Prometheus' own
    # configuration, or the shipped 10 s where the server does not publish it.
    report_scrape_interval_seconds: float | None = Field(None, gt=0)
    # How often the reporter checks whether a report is due.
    reporter_poll_seconds: float = Field(60.0, gt=0)

    @field_validator("bridge_database_url")
    @classmethod
    def _bridge_store(cls, value: str | None) -> str | None:
        # The bridge's own check (alert_bridge/config.py), which the reporter reads.
        problem = value and url_problem(sqlalchemy_url(value), ("postgresql", "sqlite"))
        if problem:
            raise ValueError(f"BRIDGE_DATABASE_URL: {problem}")
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def bridge_store_url(self) -> str:
        if self.bridge_database_url:
            return sqlalchemy_url(self.bridge_database_url)
        return f"sqlite:///{self.resolved_var_dir() / BRIDGE_SQLITE_NAME}"
