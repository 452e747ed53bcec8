"""Per-recipient SMS budget: a storm reaches a phone as a bounded number of SMS.

Each phone gets at most `BRIDGE_SMS_BUDGET` SMS (3) within `BRIDGE_SMS_BUDGET_WINDOW_MINUTES`
(10, sliding). The next one becomes a single digest SMS ("SMS limit reached ... email and
chat have every alert" and the page link), and later ones in the window are recorded as
`suppressed`, not sent, until the window has room again. Email and chat keep everything.

Decided at intake, in the transaction that stores the notification, so it is exact
across replicas sharing the outbox and across restarts. The dead man's switch is never
budgeted (it is the page that says nothing else can page).
"""

from __future__ import annotations

from sqlalchemy import Connection, and_, func, select, update

from alert_bridge.config import Recipient
from alert_bridge.store import deliveries

SUPPRESSED = "suppressed"
DIGEST = "digest"


def apply_sms_budget(
    conn: Connection,
    key: str,
    recipients: list[Recipient],
    now: float,
    budget: int,
    window: float,
) -> tuple[list[Recipient], list[Recipient]]:
    """Mark this notification's new SMS deliveries digest or suppressed where a phone's
    budget is spent. Returns (digests, suppressed)."""
    digests: list[Recipient] = []
    suppressed: list[Recipient] = []
    if budget <= 0:
        return digests, suppressed
    for r in recipients:
        if r.channel != "sms":
            continue
        recent = and_(
            deliveries.c.channel == "sms",
            deliveries.c.recipient == r.address,
            deliveries.c.created_at > now - window,
            deliveries.c.notification_key != key,
            deliveries.c.status != SUPPRESSED,
        )
        sent, digested = conn.execute(
            select(
                func.count(),
                func.count().filter(deliveries.c.format == DIGEST),
            ).where(recent)
        ).one()
        if not digested and sent < budget:
            continue
        this = and_(
            deliveries.c.notification_key == key,
            deliveries.c.channel == "sms",
            deliveries.c.recipient == r.address,
        )
        if digested:
            conn.execute(update(deliveries).where(this).values(status=SUPPRESSED, sent_at=now))
            suppressed.append(r)
        else:
            conn.execute(update(deliveries).where(this).values(format=DIGEST))
            digests.append(r)
    return digests, suppressed
