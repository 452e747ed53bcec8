"""Alertmanager's webhook payload (version 4), validated, and the keys derived from it."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class PayloadError(ValueError):
    """A malformed payload: answered with a 4xx naming the problem, nothing stored."""


class Alert(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: str
    endsAt: str = ""
    generatorURL: str = ""
    fingerprint: str = ""

    def key_fingerprint(self) -> str:
        if self.fingerprint:
            return self.fingerprint
        # Alertmanager always sends one; other senders get a stable stand-in.
        canon = json.dumps(self.labels, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()[:16]

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "alert")


class WebhookPayload(BaseModel):
    model_config = ConfigDict(extra="allow")

    version: Literal["4"]
    groupKey: str = Field(min_length=1)
    status: Literal["firing", "resolved"]
    receiver: str = ""
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    truncatedAlerts: int = 0
    alerts: list[Alert] = Field(min_length=1)

    def notification_key(self) -> str:
        """Identity of this notification: group, status, and each alert's fingerprint
        and start time. Alertmanager's retries and both members of an HA pair
        produce the same key, so the bridge sends it once."""
        alerts = sorted((a.key_fingerprint(), a.startsAt, a.status) for a in self.alerts)
        canon = json.dumps([self.groupKey, self.status, alerts], separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()

    @property
    def title(self) -> str:
        names = sorted({a.name for a in self.alerts})
        return self.groupLabels.get("alertname") or ", ".join(names)


def parse_payload(body: bytes) -> WebhookPayload:
    try:
        data: Any = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise PayloadError("body must be a JSON object (Alertmanager webhook payload)")
    if data.get("version") != "4":
        raise PayloadError(
            f"unsupported payload version {data.get('version')!r}; expected Alertmanager's '4'"
        )
    try:
        return WebhookPayload.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise PayloadError(
            f"invalid payload at {where or 'body'}: {first['msg']} ({exc.error_count()} problem(s))"
        ) from exc
