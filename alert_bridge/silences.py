"""Silences made from a notification page, through Alertmanager's API (v2).

The silence matches the notification's group (its `groupLabels`: with the shipped
routes, the alert name and the job or instance), so the next notification of that
group is not sent, while other problems still page.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from common.settings import without_credentials

DURATIONS = {"1h": timedelta(hours=1), "4h": timedelta(hours=4), "24h": timedelta(hours=24)}
TIMEOUT_SECONDS = 5.0


class SilenceError(Exception):
    """Alertmanager did not take the silence; the message says why."""


def matchers_for(body: Mapping[str, Any]) -> list[dict[str, object]]:
    """Equality matchers on the group's labels (the alert name at least)."""
    labels = dict(body.get("groupLabels") or {})
    if not labels:
        alerts = body.get("alerts") or []
        names = {a["labels"].get("alertname") for a in alerts}
        if len(names) == 1:
            labels = {"alertname": names.pop()}
    return [
        {"name": k, "value": str(v), "isRegex": False, "isEqual": True}
        for k, v in sorted(labels.items())
    ]


def create_silence(
    alertmanager_url: str,
    matchers: list[dict[str, object]],
    duration: str,
    who: str,
    comment: str,
    now: datetime | None = None,
    client: httpx.Client | None = None,
) -> tuple[str, datetime]:
    """(silence id, end). Raises SilenceError naming Alertmanager's answer."""
    if not matchers:
        raise SilenceError("the notification names no labels to silence")
    start = now or datetime.now(UTC)
    end = start + DURATIONS[duration]
    body = {
        "matchers": matchers,
        "startsAt": start.isoformat(),
        "endsAt": end.isoformat(),
        "createdBy": who,
        "comment": comment,
    }
    url = f"{alertmanager_url.rstrip('/')}/api/v2/silences"
    try:
        resp = (client or httpx).post(url, json=body, timeout=TIMEOUT_SECONDS)
    except httpx.HTTPError as exc:
        raise SilenceError(  # shown on the notification page: no credentials
            f"Alertmanager {without_credentials(alertmanager_url)} unreachable: {type(exc).__name__}"
        ) from None
    if resp.status_code != 200:
        raise SilenceError(f"Alertmanager answered HTTP {resp.status_code}: {resp.text[:200]}")
    try:
        return str(resp.json()["silenceID"]), end
    except (ValueError, KeyError, TypeError):  # ALERTMANAGER_URL at something else: 500 before
        raise SilenceError(
            f"{without_credentials(alertmanager_url)} answered HTTP 200 but not as"
            " Alertmanager's API does (is ALERTMANAGER_URL right?)"
        ) from None
