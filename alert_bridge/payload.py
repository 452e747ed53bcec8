"""Alertmanager's webhook payload (version 4), validated, and the keys derived from it."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class PayloadError(ValueError):
    """A malformed payload: answered with a 4xx naming the problem, nothing stored."""


class Alert(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)  # JSON types as Alertmanager sends them

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
    model_config = ConfigDict(extra="allow", strict=True)  # JSON types as Alertmanager sends them

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


# Alertmanager's payload nests 4 levels (body, alerts, alert, labels); extra fields
# may add a few. Deeper is not a webhook, and would exhaust the recursion of what
# walks it.
MAX_DEPTH = 32
# Go's JSON encoder never sends an unpaired surrogate, and reads one as U+FFFD; NUL
# cannot be stored in PostgreSQL text (an HA outbox). Both become U+FFFD, as in Go: the
# page is delivered rather than refused or retried forever.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.encode("utf-8", "backslashreplace").decode()


def _scrub(value: Any, depth: int = 0) -> tuple[Any, bool]:
    """(value with NUL and unpaired surrogates replaced, whether anything was)."""
    if depth > MAX_DEPTH:
        raise PayloadError(f"body nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        if _UNSTORABLE.search(value) is None:
            return value, False
        return _UNSTORABLE.sub(REPLACEMENT, value), True
    if isinstance(value, dict):
        out, changed = {}, False
        for k, v in value.items():
            k2, c1 = _scrub(k, depth + 1)
            v2, c2 = _scrub(v, depth + 1)
            out[k2] = v2
            changed = changed or c1 or c2
        return out, changed
    if isinstance(value, list):
        items = [_scrub(v, depth + 1) for v in value]
        return [v for v, _ in items], any(c for _, c in items)
    return value, False


def parse_webhook(body: bytes) -> tuple[WebhookPayload, bytes]:
    """The validated payload and the body to store: `body` itself, or re-encoded when
    characters had to be replaced. PayloadError (answered 400) names the problem."""
    try:
        data: Any = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise PayloadError(f"body nests deeper than {MAX_DEPTH} levels") from exc
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise PayloadError(f"body is not acceptable JSON: {short_repr(str(exc), 120)}") from exc
    if not isinstance(data, dict):
        raise PayloadError("body must be a JSON object (Alertmanager webhook payload)")
    data, scrubbed = _scrub(data)
    if data.get("version") != "4":
        raise PayloadError(
            f"unsupported payload version {short_repr(data.get('version'))}; expected Alertmanager's '4'"
        )
    try:
        payload = WebhookPayload.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(short_repr(p, 40).strip("'") for p in first["loc"])
        raise PayloadError(
            f"invalid payload at {where or 'body'}: {first['msg']} ({exc.error_count()} problem(s))"
        ) from exc
    return payload, json.dumps(data).encode() if scrubbed else body


def openapi_schemas() -> dict[str, Any]:
    """WebhookPayload and the models it uses, as OpenAPI components."""
    schema = WebhookPayload.model_json_schema(ref_template="#/components/schemas/{model}")
    return {"WebhookPayload": schema, **schema.pop("$defs", {})}


def parse_payload(body: bytes) -> WebhookPayload:
    return parse_webhook(body)[0]
