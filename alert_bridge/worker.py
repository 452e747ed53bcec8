"""The delivery worker: claims due deliveries and sends them through the providers.

Ordering per delivery: claim (commit: status=sending, lease, attempts+1) ->
provider call -> record sent/retry/failed (group-committed by the Recorder within
milliseconds of the call). A crash before the provider call loses nothing (the
lease expires, or our restart releases it at once); a crash after the provider
accepted but before the commit re-sends that delivery on restart, with the same
Message-ID / Idempotency-Key. That window is a few milliseconds per delivery.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache, partial
from typing import Any

from alert_bridge.config import Recipient
from alert_bridge.links import Links
from alert_bridge.messages import Message, build_message
from alert_bridge.metrics import BridgeMetrics
from alert_bridge.providers.base import (
    PermanentError,
    Provider,
    TransientError,
    display_recipient,
)
from alert_bridge.ratelimit import SendRates
from alert_bridge.settings import BridgeSettings
from alert_bridge.store import Claimed, Store

log = logging.getLogger("alert_bridge.delivery")

MAX_RETRY_AFTER = 3600.0
# A delivery waits this long at most for its destination's send rate, holding a worker
# slot; longer, it is put back (outcome "deferred") and other deliveries go first.
MAX_INLINE_WAIT = 2.0


def backoff_delay(
    attempts: int,
    initial: float,
    maximum: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Exponential backoff with equal jitter: half the step fixed, half random, so
    replicas and groups retrying together spread out but never retry at once."""
    step = min(maximum, initial * (2 ** max(0, attempts - 1)))
    delay = step / 2 + (rng or random).uniform(0, step / 2)
    # The receiver's Retry-After wins over our schedule (capped: a bogus header must
    # not park a page for a day).
    return float(max(delay, min(retry_after or 0.0, MAX_RETRY_AFTER)))


class Deliverer:
    def __init__(
        self,
        store: Store,
        providers: dict[str, Provider],
        metrics: BridgeMetrics,
        settings: BridgeSettings,
        owner: str,
        page_url: Callable[[str], str] = lambda key: "",
        rates: SendRates | None = None,
        links: Links | None = None,
    ) -> None:
        self.store = store
        # Notification key -> its page's absolute URL ("" when it has none).
        self.page_url = lru_cache(maxsize=1024)(page_url)
        self.rates = rates or SendRates()
        self.providers = providers
        self.metrics = metrics
        self.settings = settings
        self.owner = owner
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._slots = threading.Semaphore(settings.bridge_worker_threads)
        self._pool = ThreadPoolExecutor(
            settings.bridge_worker_threads, thread_name_prefix="bridge-send"
        )
        self._thread: threading.Thread | None = None
        # Rendering is a pure function of the stored notification and these bases.
        self._message = lru_cache(maxsize=256)(partial(build_message, links=links))
        self.recorder = Recorder(
            store, metrics, owner, retry_for=min(30.0, settings.bridge_lease_seconds / 2)
        )

    # --- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        released = self.store.release_own_claims(self.owner)
        if released:
            log.warning(
                "retrying %d deliveries that were in flight when %s last stopped",
                released,
                self.owner,
            )
        self.recorder.start()
        self._thread = threading.Thread(target=self._run, name="bridge-dispatch", daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        # In-flight sends finish and record their outcome; nothing new is claimed.
        self._pool.shutdown(wait=True)
        self.recorder.stop()

    # --- the loop ----------------------------------------------------------------------

    def _free_slots(self) -> int:
        n = 0
        while self._slots.acquire(blocking=False):
            n += 1
        return n

    def _run(self) -> None:
        s = self.settings
        while not self._stop.is_set():
            self.wake.clear()
            free = self._free_slots()
            claimed: list[Claimed] = []
            try:
                if free:
                    claimed = self.store.claim(
                        self.owner,
                        time.time(),
                        s.bridge_lease_seconds,
                        min(free, s.bridge_claim_batch),
                    )
            except Exception as exc:  # noqa: BLE001 - store down: keep trying, stay alive
                log.error("cannot claim deliveries: %s", exc)
            for _ in range(free - len(claimed)):
                self._slots.release()
            for c in claimed:
                self._pool.submit(self._deliver_and_release, c)
            if claimed and len(claimed) == free:
                # Busy: come back as soon as a slot frees up.
                self.wake.wait(0.05)
            elif not claimed:
                self.wake.wait(self._idle_wait())

    def _idle_wait(self) -> float:
        try:
            due = self.store.next_due()
        except Exception:  # noqa: BLE001
            due = None
        wait = self.settings.bridge_poll_interval_seconds
        if due is not None:
            wait = min(wait, max(0.01, due - time.time()))
        return wait

    def _deliver_and_release(self, c: Claimed) -> None:
        try:
            self.deliver(c)
        except Exception:
            log.exception("unexpected error delivering %s", c.id)
        finally:
            self._slots.release()
            self.wake.set()

    # --- one delivery ------------------------------------------------------------------

    def _rate_key(self, c: Claimed) -> tuple[str, str]:
        """(kind, destination) the providers' limits count per (alert_bridge/ratelimit.py)."""
        if c.channel == "sms":
            return "sms", self.settings.twilio_from_number or ""
        if c.channel == "webhook":
            return c.format or "json", c.recipient
        return c.channel, c.recipient

    def _wait_for_slot(self, kind: str, dest: str) -> float:
        """Wait (briefly) for the destination's send rate; 0 when it may go now, else the
        seconds still to wait when that is longer than a worker should hold a slot."""
        while True:
            wait = self.rates.reserve(kind, dest)
            if wait <= 0:
                return 0.0
            if wait > MAX_INLINE_WAIT or self._stop.is_set():
                return wait
            time.sleep(wait)

    def deliver(self, c: Claimed) -> None:
        s = self.settings
        who = display_recipient(c.channel, c.recipient)
        provider = self.providers[c.channel]
        try:
            page = self.page_url(c.notification_key) if c.kind != "watchdog" else ""
            message: Message = self._message(
                c.notification_key, c.kind, c.severity, c.status, c.body, c.created_at, page
            )
            kind, dest = self._rate_key(c)
            if provider.outcome == "sent":
                wait = self._wait_for_slot(kind, dest)
                if wait:  # the destination's rate is spent for longer: come back then
                    self.recorder.record(
                        c, "deferred", status="pending", next_attempt_at=time.time() + wait
                    )
                    return
            ref = provider.send(Recipient(c.channel, c.recipient, c.format), message)
        except PermanentError as exc:
            self.recorder.record(c, "failed", status="failed", last_error=exc.reason[:2000])
            log.error(
                "%s to %s failed permanently (attempt %d): %s",
                c.channel,
                who,
                c.attempts,
                exc.reason,
            )
            return
        except Exception as exc:  # noqa: BLE001 - transient, or an unexpected error: retry
            if isinstance(exc, TransientError):
                reason, retry_after = exc.reason, exc.retry_after
                if retry_after:  # the provider's word holds for every message to it
                    self.rates.pause(*self._rate_key(c), min(retry_after, MAX_RETRY_AFTER))
            else:
                reason, retry_after = f"{type(exc).__name__}: {exc}", None
            age = time.time() - c.created_at
            if age >= s.bridge_retry_give_up_seconds:
                why = f"gave up after {c.attempts} attempts over {age:.0f}s; last error: {reason}"
                self.recorder.record(c, "failed", status="failed", last_error=why[:2000])
                log.error("%s to %s: %s", c.channel, who, why)
                return
            delay = backoff_delay(
                c.attempts,
                s.bridge_retry_initial_seconds,
                s.bridge_retry_max_delay_seconds,
                retry_after,
            )
            self.recorder.record(
                c,
                "retry",
                status="pending",
                next_attempt_at=time.time() + delay,
                last_error=reason[:2000],
            )
            log.warning(
                "%s to %s failed (attempt %d), retrying in %.1fs: %s",
                c.channel,
                who,
                c.attempts,
                delay,
                reason,
            )
            return
        self.recorder.record(
            c,
            provider.outcome,
            status=provider.outcome,
            sent_at=time.time(),
            provider_ref=ref,
            last_error=None,
        )
        if provider.outcome == "sent":
            log.info("%s %s to %s (%s)", c.channel, message.status, who, message.title)


class Recorder:
    """Group commit of delivery outcomes: whatever finished in the last moment is
    recorded in one transaction, so N deliveries cost one fsync, not N.

    The price is a few more milliseconds between a provider's success and the
    durable "sent" (the window in which a crash re-sends); a store error is retried
    for up to half a lease, after which the delivery is re-sent when its lease ends.
    """

    def __init__(
        self,
        store: Store,
        metrics: BridgeMetrics,
        owner: str,
        retry_for: float,
        max_batch: int = 500,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.owner = owner
        self.retry_for = retry_for
        self.max_batch = max_batch
        self._queue: queue.Queue[tuple[Claimed, str, dict[str, Any]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="bridge-recorder", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def record(self, c: Claimed, outcome: str, **values: Any) -> None:
        self._queue.put((c, outcome, values))

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            batch = []
            if first is None:
                stopping = True
            else:
                batch.append(first)
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                else:
                    batch.append(item)
            if batch:
                self._flush(batch)

    def _flush(self, batch: list[tuple[Claimed, str, dict[str, Any]]]) -> None:
        deadline = time.monotonic() + self.retry_for
        while True:
            try:
                done = self.store.finish_many(self.owner, [(c.id, v) for c, _, v in batch])
                break
            except Exception as exc:  # noqa: BLE001
                if time.monotonic() > deadline:
                    log.error("could not record %d delivery outcomes: %s", len(batch), exc)
                    return
                time.sleep(0.2)
        now = time.time()
        for (c, outcome, _), ok in zip(batch, done, strict=True):
            if not ok:
                log.warning(
                    "delivery %s: lease lost to another worker before recording %s", c.id, outcome
                )
                continue
            self.metrics.count(c.channel, c.severity, outcome)
            if outcome == "sent":
                self.metrics.delivery_seconds.labels(c.channel).observe(now - c.created_at)
