"""The runbook as HTML, so a notification's link opens on a phone.

GET /runbook               the whole runbook (alert_bridge.runbook renders it)
GET /runbook/{alertname}   a redirect to that alert's section (a short link)
"""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from alert_bridge.deps import BridgeError, ServiceDep
from alert_bridge.payload import short_repr
from alert_bridge.runbook import Runbook, slug

log = logging.getLogger("alert_bridge.runbook")

router = APIRouter()


def _page(book: Runbook) -> tuple[str, list[str]]:
    try:
        return book.page()
    except OSError as exc:
        log.error("runbook %s cannot be read: %s", book.path, exc)
        raise BridgeError(
            503, f"the runbook is not available on this bridge ({book.path}: {exc.strerror})"
        ) from None


@router.get("/runbook", response_class=HTMLResponse)
def runbook_page(service: ServiceDep) -> Response:
    page, _ = _page(service.runbook)
    return HTMLResponse(page, headers={"Cache-Control": "no-cache"})


@router.get("/runbook/{alertname}")
def runbook_section(alertname: str, service: ServiceDep) -> Response:
    _, ids = _page(service.runbook)
    anchor = slug(alertname)
    if anchor not in ids:
        # Named, not echoed whole: the path may be any length.
        raise BridgeError(404, f"the runbook has no section for {short_repr(alertname)}")
    return RedirectResponse(f"{service.public_url}/runbook#{anchor}", status_code=302)
