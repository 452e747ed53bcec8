"""The bases of the links alert rules carry, and which links can open on a phone.

The generated rules (prometheus/rules.yml) carry absolute `runbook_url` and
`dashboard_url` annotations built on two placeholder bases, the bridge and Grafana on
their default local ports. Whoever knows the deployment's addresses swaps them: the
alert bridge when it renders a notification (its own public URL, GRAFANA_URL), and
`tracetrack up` when it renders the rules for its Prometheus. A link on a loopback
host (127.0.0.1, localhost) opens only on the machine that runs the stack, never on
the phone of the engineer it pages.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from common.topology import BRIDGE_PORT, GRAFANA_PORT

# Where the links of the committed rules point: the bridge (which serves the runbook
# and the notification pages) and Grafana, on their default local ports.
DEFAULT_PUBLIC_URL = f"http://127.0.0.1:{BRIDGE_PORT}"
DEFAULT_GRAFANA_URL = f"http://127.0.0.1:{GRAFANA_PORT}"
RUNBOOK_PATH = "/runbook"


def rebase(url: str, default: str, base: str | None) -> str:
    """`url` with the placeholder base `default` replaced by `base` (when given)."""
    if (
        base
        and url.startswith(default)
        and url[len(default) : len(default) + 1] in ("", "/", "?", "#")
    ):
        return base.rstrip("/") + url[len(default) :]
    return url


def is_loopback(url: str) -> bool:
    """True for a link whose host is this machine (127.0.0.0/8, ::1, localhost)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
