"""The delivery worker: claims due deliveries and sends them through the providers.

Ordering per delivery: claim (commit: status=sending, lease, attempts+1) ->
provider call -> mark sent/retry/failed (commit, right after the call). A crash
before the provider call loses nothing (the lease expires, or our restart
releases it at once); a crash after the provider accepted but before the commit
re-sends that one delivery on restart, with the same Message-ID /
Idempotency-Key. That window is a few milliseconds per in-flight delivery.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

from alert_bridge.config import Recipient
from alert_bridge.messages import Message, build_message
from alert_bridge.metrics import BridgeMetrics
from alert_bridge.providers.base import (
    PermanentError,
    Provider,
    TransientError,
    display_recipient,
)
from alert_bridge.settings import BridgeSettings
from alert_bridge.store import Claimed, Store

log = logging.getLogger("alert_bridge.delivery")

MAX_RETRY_AFTER = 3600.0


def backoff_delay(attempts: int, initial: float, maximum: float,
                  retry_after: float | None = None, rng: random.Random | None = None) -> float:
    """Exponential backoff with equal jitter: half the step fixed, half random, so
    replicas and groups retrying together spread out but never retry at once."""
    step = min(maximum, initial * (2 ** max(0, attempts - 1)))
    delay = step / 2 + (rng or random).uniform(0, step / 2)
    # The receiver's Retry-After wins over our schedule (capped: a bogus header must
    # not park a page for a day).
    return max(delay, min(retry_after or 0.0, MAX_RETRY_AFTER))


class Deliverer:
    def __init__(self, store: Store, providers: dict[str, Provider], metrics: BridgeMetrics,
                 settings: BridgeSettings, owner: str) -> None:
        self.store = store
        self.providers = providers
        self.metrics = metrics
        self.settings = settings
        self.owner = owner
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._slots = threading.Semaphore(settings.bridge_worker_threads)
        self._pool = ThreadPoolExecutor(settings.bridge_worker_threads,
                                        thread_name_prefix="bridge-send")
        self._thread: threading.Thread | None = None
        self._message = lru_cache(maxsize=256)(build_message)

    # --- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        released = self.store.release_own_claims(self.owner)
        if released:
            log.warning("retrying %d deliveries that were in flight when %s last stopped",
                        released, self.owner)
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
                    claimed = self.store.claim(self.owner, time.time(), s.bridge_lease_seconds,
                                               min(free, s.bridge_claim_batch))
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
        except Exception:  # noqa: BLE001 - a bug must not kill the worker thread
            log.exception("unexpected error delivering %s", c.id)
        finally:
            self._slots.release()
            self.wake.set()

    # --- one delivery ------------------------------------------------------------------

    def deliver(self, c: Claimed) -> None:
        s = self.settings
        who = display_recipient(c.channel, c.recipient)
        provider = self.providers[c.channel]
        try:
            message: Message = self._message(c.notification_key, c.kind, c.severity, c.status,
                                             c.body)
            ref = provider.send(Recipient(c.channel, c.recipient, c.format), message)
        except PermanentError as exc:
            why = exc.reason
            self._finish("failed", c, lambda: self.store.mark_failed(c.id, self.owner, why))
            log.error("%s to %s failed permanently (attempt %d): %s",
                      c.channel, who, c.attempts, why)
            return
        except Exception as exc:  # noqa: BLE001 - transient, or an unexpected error: retry
            reason = exc.reason if isinstance(exc, TransientError) else f"{type(exc).__name__}: {exc}"
            retry_after = exc.retry_after if isinstance(exc, TransientError) else None
            age = time.time() - c.created_at
            if age >= s.bridge_retry_give_up_seconds:
                why = f"gave up after {c.attempts} attempts over {age:.0f}s; last error: {reason}"
                self._finish("failed", c, lambda: self.store.mark_failed(c.id, self.owner, why))
                log.error("%s to %s: %s", c.channel, who, why)
                return
            delay = backoff_delay(c.attempts, s.bridge_retry_initial_seconds,
                                  s.bridge_retry_max_delay_seconds, retry_after)
            self._finish("retry", c, lambda: self.store.mark_retry(
                c.id, self.owner, time.time() + delay, reason))
            log.warning("%s to %s failed (attempt %d), retrying in %.1fs: %s",
                        c.channel, who, c.attempts, delay, reason)
            return
        outcome = provider.outcome
        self._finish(outcome, c, lambda: self.store.mark_sent(c.id, self.owner, time.time(), ref,
                                                              status=outcome))
        if outcome == "sent":
            self.metrics.delivery_seconds.labels(c.channel).observe(time.time() - c.created_at)
            log.info("%s %s to %s (%s)", c.channel, message.status, who, message.title)

    def _finish(self, outcome: str, c: Claimed, mark: object) -> None:
        """Record the outcome; after a provider success this must not be lost to a
        momentary store error, or the delivery is sent again when its lease expires."""
        deadline = time.monotonic() + min(30.0, self.settings.bridge_lease_seconds / 2)
        while True:
            try:
                if not mark():  # type: ignore[operator]
                    log.warning("delivery %s: lease lost to another worker before recording "
                                "%s", c.id, outcome)
                break
            except Exception as exc:  # noqa: BLE001
                if time.monotonic() > deadline:
                    log.error("delivery %s: could not record %s: %s", c.id, outcome, exc)
                    return
                time.sleep(0.2)
        self.metrics.count(c.channel, c.severity, outcome)
