"""Suspicious scanning patterns: counted by kind and recorded, never refused.

- impossible_travel: one QR id scanned at two different locations within
  `scan_min_relocation_seconds` (no bag moves between hubs that fast: a cloned
  label or a scanner reporting the wrong place);
- scan_burst: one user recording more than `scan_burst_per_minute` scans within a
  minute (a script, or a shared account);
- unknown_qr_probing: one client (user, else IP) asking for more than
  `unknown_qr_per_5m` QR ids that do not exist within five minutes (enumeration);
- billed_bag: a scan of a bag that is already billed (the domain rule that refuses
  it reports it here: `Guard.billed_bag_scanned`).

Burst and probing count once per window, when the client crosses the threshold;
travel and billed-bag scans count each occurrence. Counters live in the shared
storage (app/guard/shared.py), so a pattern spread over workers is still seen.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from app.guard.events import Event
from app.guard.metrics import GuardMetrics
from app.guard.shared import AsyncShared
from common.settings import Settings

IMPOSSIBLE_TRAVEL, SCAN_BURST = "impossible_travel", "scan_burst"
UNKNOWN_QR_PROBING, BILLED_BAG = "unknown_qr_probing", "billed_bag"
PROBING_WINDOW_SECONDS = 300
BURST_WINDOW_SECONDS = 60
SCAN_ROUTE = "/api/scans"


def _location_key(location: str) -> str:
    # Locations are free text: hash them into a bounded, safe key.
    return hashlib.blake2s(location.strip().casefold().encode(), digest_size=8).hexdigest()


class ScanWatch:
    def __init__(
        self,
        ashared: AsyncShared,
        settings: Settings,
        metrics: GuardMetrics,
        record: Callable[[Event], None],
    ) -> None:
        self._ashared = ashared
        self._settings = settings
        self._metrics = metrics
        self._record = record

    def _found(
        self, kind: str, ip: str, username: str | None, route: str, status: int, **detail: object
    ) -> None:
        self._metrics.suspicious_scans.labels(kind).inc()
        self._record(
            Event("suspicious_scan", ip, username, route, status, {"kind": kind, **detail})
        )

    async def ascanned(
        self, qr_id: str, location: str, user_id: int, username: str, ip: str
    ) -> None:
        """After a scan is recorded (on the event loop: the scan route is async)."""
        here, places_key, burst_key = self._keys(qr_id, location, user_id)
        travel_window = self._settings.scan_min_relocation_seconds

        async def count(b):
            places = 0
            if travel_window > 0:
                first_here = await b.storage.incr(here, travel_window) == 1
                if first_here:
                    places = await b.storage.incr(places_key, travel_window)
            burst = await b.storage.incr(burst_key, BURST_WINDOW_SECONDS)
            return places, burst

        places, burst = await self._ashared.run(count)
        self._judge(places, burst, qr_id, location, username, ip)

    @staticmethod
    def _keys(qr_id: str, location: str, user_id: int) -> tuple[str, str, str]:
        return (
            f"scan:at:{qr_id}:{_location_key(location)}",
            f"scan:places:{qr_id}",
            f"scan:burst:{user_id}",
        )

    def _judge(
        self, places: int, burst: int, qr_id: str, location: str, username: str, ip: str
    ) -> None:
        s = self._settings
        travel_window = s.scan_min_relocation_seconds
        if places >= 2:
            self._found(
                IMPOSSIBLE_TRAVEL,
                ip,
                username,
                SCAN_ROUTE,
                201,
                qr_id=qr_id,
                location=location[:128],
                places_within_s=travel_window,
                places=places,
            )
        if burst == s.scan_burst_per_minute + 1:
            self._found(
                SCAN_BURST,
                ip,
                username,
                SCAN_ROUTE,
                201,
                scans_per_minute_over=s.scan_burst_per_minute,
            )

    def billed_bag(self, qr_id: str, username: str | None, ip: str, status: int) -> None:
        self._found(BILLED_BAG, ip, username, SCAN_ROUTE, status, qr_id=qr_id)

    async def unknown_qr(self, client: str, username: str | None, ip: str, route: str) -> None:
        """After a QR lookup answered 404 (event-loop side)."""
        limit = self._settings.unknown_qr_per_5m
        misses = await self._ashared.run(
            lambda b: b.storage.incr(f"scan:unknown:{client}", PROBING_WINDOW_SECONDS)
        )
        if misses == limit + 1:
            self._found(
                UNKNOWN_QR_PROBING,
                ip,
                username,
                route,
                404,
                unknown_qr_ids_over=limit,
                window_s=PROBING_WINDOW_SECONDS,
            )
