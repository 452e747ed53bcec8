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
storage (app/guard/shared.py), so a pattern spread over workers is still seen; on
Redis each worker counts its scans in batches (BATCH_SECONDS below).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

from app.guard.events import Event
from app.guard.metrics import GuardMetrics
from app.guard.shared import AsyncBackend, AsyncShared, redis_key
from common.settings import Settings

IMPOSSIBLE_TRAVEL, SCAN_BURST = "impossible_travel", "scan_burst"
UNKNOWN_QR_PROBING, BILLED_BAG = "unknown_qr_probing", "billed_bag"
PROBING_WINDOW_SECONDS = 300
BURST_WINDOW_SECONDS = 60
SCAN_ROUTE = "/api/scans"

log = logging.getLogger(__name__)

# On Redis, scans are counted in batches: each Redis round trip costs the event loop
# ~80-110 µs of CPU in a request (more than the guard's whole budget of 50 µs), so a
# worker collects the scans it records and counts them together, one round trip per
# batch, when BATCH_SIZE have gathered or BATCH_SECONDS after the first, whichever comes
# first. A pattern is therefore judged up to BATCH_SECONDS after the scan that completes
# it (its event keeps the scan's own time). On this process's memory (no Redis, or Redis
# down) there is no round trip to save, and each scan is counted as it is recorded.
BATCH_SIZE = 100
BATCH_SECONDS = 0.5

# The batch's counters, in order, as limits' incr keeps them (the first increment sets the
# expiry). KEYS: (here, places, burst) per scan; ARGV: the travel window (0: off), the
# burst window. Returns (places, burst) per scan, places 0 unless it is the bag's first
# scan at this location within the window.
_COUNT_SCANS = """
local travel = tonumber(ARGV[1])
local out = {}
for i = 1, #KEYS, 3 do
    local places = 0
    if travel > 0 and redis.call('incr', KEYS[i]) == 1 then
        redis.call('expire', KEYS[i], travel)
        places = redis.call('incr', KEYS[i + 1])
        if places == 1 then
            redis.call('expire', KEYS[i + 1], travel)
        end
    end
    local burst = redis.call('incr', KEYS[i + 2])
    if burst == 1 then
        redis.call('expire', KEYS[i + 2], ARGV[2])
    end
    out[#out + 1] = places
    out[#out + 1] = burst
end
return out
"""


class _Scan(NamedTuple):
    qr_id: str
    location: str
    user_id: int
    username: str
    ip: str
    at: float


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
        redis = ashared.redis
        self._count_script = (
            redis.client.register_script(_COUNT_SCANS)
            if redis is not None and redis.client is not None
            else None
        )
        self._batch: list[_Scan] = []
        self._flush_timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()

    def _found(
        self,
        kind: str,
        ip: str,
        username: str | None,
        route: str,
        status: int,
        at: float | None = None,
        **detail: object,
    ) -> None:
        self._metrics.suspicious_scans.labels(kind).inc()
        self._record(
            Event(
                "suspicious_scan",
                ip,
                username,
                route,
                status,
                {"kind": kind, **detail},
                time.time() if at is None else at,
            )
        )

    async def ascanned(
        self, qr_id: str, location: str, user_id: int, username: str, ip: str
    ) -> None:
        """After a scan is recorded (on the event loop: the scan route is async)."""
        scan = _Scan(qr_id, location, user_id, username, ip, time.time())
        if self._count_script is None or not self._ashared.on_redis:
            await self._count([scan])
            return
        self._batch.append(scan)
        if len(self._batch) >= BATCH_SIZE:
            self._flush_soon()
        elif self._flush_timer is None:
            self._flush_timer = asyncio.get_running_loop().call_later(
                BATCH_SECONDS, self._flush_soon
            )

    def _flush_soon(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        batch, self._batch = self._batch, []
        if batch:
            task = asyncio.get_running_loop().create_task(self._count_logging_errors(batch))
            self._flushes.add(task)  # the loop keeps only a weak reference
            task.add_done_callback(self._flushes.discard)

    async def flush(self) -> None:
        """Count the scans collected so far now (at shutdown; tests)."""
        self._flush_soon()
        if self._flushes:
            await asyncio.gather(*self._flushes)

    async def _count_logging_errors(self, batch: list[_Scan]) -> None:
        try:
            await self._count(batch)
        except Exception:  # a bug here must not stop later batches being counted
            log.exception("could not count %d scans for suspicious patterns", len(batch))

    async def _count(self, batch: Sequence[_Scan]) -> None:
        travel_window = self._settings.scan_min_relocation_seconds
        keys = [self._keys(s.qr_id, s.location, s.user_id) for s in batch]

        async def count(b: AsyncBackend) -> list[tuple[int, int]]:
            if b.client is not None and self._count_script is not None:
                flat = await self._count_script(
                    keys=[redis_key(k) for three in keys for k in three],
                    args=[travel_window, BURST_WINDOW_SECONDS],
                    client=b.client,
                )
                return [(int(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2)]
            counts = []
            for here, places_key, burst_key in keys:
                places = 0
                if travel_window > 0 and await b.storage.incr(here, travel_window) == 1:
                    places = await b.storage.incr(places_key, travel_window)
                counts.append((places, await b.storage.incr(burst_key, BURST_WINDOW_SECONDS)))
            return counts

        for scan, (places, burst) in zip(batch, await self._ashared.run(count), strict=True):
            self._judge(places, burst, scan)

    @staticmethod
    def _keys(qr_id: str, location: str, user_id: int) -> tuple[str, str, str]:
        return (
            f"scan:at:{qr_id}:{_location_key(location)}",
            f"scan:places:{qr_id}",
            f"scan:burst:{user_id}",
        )

    def _judge(self, places: int, burst: int, scan: _Scan) -> None:
        s = self._settings
        travel_window = s.scan_min_relocation_seconds
        if places >= 2:
            self._found(
                IMPOSSIBLE_TRAVEL,
                scan.ip,
                scan.username,
                SCAN_ROUTE,
                201,
                scan.at,
                qr_id=scan.qr_id,
                location=scan.location[:128],
                places_within_s=travel_window,
                places=places,
            )
        if burst == s.scan_burst_per_minute + 1:
            self._found(
                SCAN_BURST,
                scan.ip,
                scan.username,
                SCAN_ROUTE,
                201,
                scan.at,
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
