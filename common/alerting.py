"""The alerting vocabulary every component speaks: severities, notification channels,
which channels each severity reaches, and the heartbeat alert's name.

Rules label alerts with these severities, Alertmanager routes on them, the bridge
delivers by the channel matrix, and /analytics, the dashboards and the reports count
by them. alertmanager/alertmanager.yml echoes them; tests check it does.
"""

from __future__ import annotations

SEVERITIES = ("critical", "warning", "info")
CHANNELS = ("email", "sms", "webhook")

# The channel matrix (docs/architecture.md §4): critical -> SMS + email + webhook; warning -> email +
# webhook; info -> email only.
CHANNEL_MATRIX: dict[str, tuple[str, ...]] = {
    "critical": ("sms", "email", "webhook"),
    "warning": ("email", "webhook"),
    "info": ("email",),
}

# Always firing: its arrival proves Prometheus -> Alertmanager -> bridge works; a
# count of firing alerts leaves it out.
WATCHDOG = "Watchdog"
