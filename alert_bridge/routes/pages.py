"""A notification's page: what fired, with the links, and two actions.

GET  /n/{token}           the page (HTML; 404 unknown, 410 expired)
POST /n/{token}/ack       form: who            -> records who and when, stops re-pages
POST /n/{token}/silence   form: who, duration  -> a silence in Alertmanager (1h|4h|24h)

The token is the capability (128 random bits, from the notification's SMS/email/chat).
Both actions are logged and counted (tracetrack_bridge_actions_total).
"""

from __future__ import annotations

import json
import logging
import time
import unicodedata
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from alert_bridge import landing, pages
from alert_bridge.deps import ServiceDep
from alert_bridge.messages import Message, build_message, stamp
from alert_bridge.service import BridgeService
from alert_bridge.silences import DURATIONS, SilenceError, create_silence, matchers_for

log = logging.getLogger("alert_bridge.pages")

router = APIRouter()

MAX_FORM_BYTES = 4096
NAME_MAX = 100
WHO_RULE = f"1 to {NAME_MAX} characters, no control characters"


def _html(body: str, status: int = 200) -> HTMLResponse:
    # Never cached, never indexed: the page is a capability.
    return HTMLResponse(
        body,
        status_code=status,
        headers={
            "Cache-Control": "no-store",
            "X-Robots-Tag": "noindex",
            "Referrer-Policy": "no-referrer",
        },
    )


def _load(service: BridgeService, token: str) -> tuple[pages.Page, Message, dict] | HTMLResponse:  # type: ignore[type-arg]
    page = pages.page_by_token(service.store, token)
    if page is None:
        return _html("<p>No such notification page.</p>", 404)
    if time.time() > page.expires_at:
        return _html(landing.gone(page.expires_at), 410)
    row = pages.notification(service.store, page.notification_key)
    if row is None:
        return _html("<p>No such notification page.</p>", 404)
    m = build_message(
        row["key"],
        row["kind"],
        row["severity"],
        row["status"],
        row["body"],
        at=row["received_at"],
        page_url=f"{service.public_url}/n/{token}",
        links=service.links,
    )
    return page, m, json.loads(row["body"])


def _render(
    service: BridgeService, token: str, flash: str = "", error: str = "", status: int = 200
) -> HTMLResponse:
    loaded = _load(service, token)
    if isinstance(loaded, HTMLResponse):
        return loaded
    page, m, _ = loaded
    ack = pages.ack_of(service.store, page.group_key)
    return _html(landing.page(m, token, ack, page.expires_at, flash, error), status)


async def _form(request: Request) -> dict[str, str]:
    # Read no more than the limit: a huge body is refused, not held in memory.
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return {"_error": f"form larger than {MAX_FORM_BYTES} bytes"}
    try:
        parsed = parse_qs(body.decode(), keep_blank_values=True)
    except UnicodeDecodeError:
        return {"_error": "form is not UTF-8"}
    return {k: v[-1] for k, v in parsed.items()}


def _who(form: dict[str, str]) -> str | None:
    who = " ".join(form.get("who", "").split())
    # A name is text: no NUL (PostgreSQL refuses it), no escape sequences or bidi
    # overrides (it is logged and shown on the page).
    if any(unicodedata.category(c).startswith("C") for c in who):
        return None
    return who if 0 < len(who) <= NAME_MAX else None


@router.get("/n/{token}", response_class=HTMLResponse)
async def show(token: str, service: ServiceDep) -> HTMLResponse:
    return await run_in_threadpool(_render, service, token)


@router.post("/n/{token}/ack", response_class=HTMLResponse)
async def acknowledge(token: str, request: Request, service: ServiceDep) -> HTMLResponse:
    form = await _form(request)
    who = _who(form)
    if who is None or "_error" in form:
        reason = form.get("_error") or f"say who acknowledges ({WHO_RULE})"
        return await run_in_threadpool(_render, service, token, "", reason, 400)

    def act() -> HTMLResponse:
        loaded = _load(service, token)
        if isinstance(loaded, HTMLResponse):
            return loaded
        page, m, _ = loaded
        if m.resolved:
            return _render(service, token, "", "already resolved: nothing to acknowledge", 409)
        now = time.time()
        ack = pages.record_ack(service.store, page, who, now)
        service.metrics.actions.labels("ack", "ok").inc()
        if ack.acked_at == now and m.started is not None:  # this POST acknowledged it
            service.metrics.time_to_ack.labels(m.severity).observe(
                max(0.0, now - m.started.timestamp())
            )
        log.warning(
            "acknowledged by %s: %s (group %s, notification %s)",
            ack.acked_by,
            m.title,
            page.group_key,
            page.notification_key[:12],
        )
        return _render(service, token, f"Acknowledged by {ack.acked_by}.")

    return await run_in_threadpool(act)


@router.post("/n/{token}/silence", response_class=HTMLResponse)
async def silence(token: str, request: Request, service: ServiceDep) -> HTMLResponse:
    form = await _form(request)
    who = _who(form)
    duration = form.get("duration", "")
    if who is None or duration not in DURATIONS or "_error" in form:
        reason = form.get("_error") or (
            f"say who silences ({WHO_RULE})"
            if who is None
            else f"duration must be one of {', '.join(DURATIONS)}"
        )
        return await run_in_threadpool(_render, service, token, "", reason, 400)

    def act() -> HTMLResponse:
        loaded = _load(service, token)
        if isinstance(loaded, HTMLResponse):
            return loaded
        page, m, body = loaded
        comment = f"From TraceTrack notification {page.notification_key[:12]}: {m.headline}"
        try:
            silence_id, end = create_silence(
                service.settings.alertmanager_url, matchers_for(body), duration, who, comment
            )
        except SilenceError as exc:
            service.metrics.actions.labels("silence", "failed").inc()
            log.error("silence by %s of %s failed: %s", who, m.title, exc)
            return _render(service, token, "", f"Not silenced: {exc}", 502)
        service.metrics.actions.labels("silence", "ok").inc()
        log.warning(
            "silenced by %s for %s: %s (silence %s, group %s)",
            who,
            duration,
            m.title,
            silence_id,
            page.group_key,
        )
        return _render(
            service, token, f"Silenced by {who} until {stamp(end)} (silence {silence_id})."
        )

    return await run_in_threadpool(act)
