"""Send rates that respect the providers' published limits, per destination.

- Slack incoming webhooks: about 1 message per second per webhook (channel);
- Discord webhooks: 5 requests per 2 seconds per webhook;
- Twilio: 1 message segment per second per long-code sending number (all our SMS share
  TWILIO_FROM_NUMBER, and each of ours is one segment).

A generic cell rate algorithm per destination (the same schedule as a token bucket of
`count` tokens refilled over `per` seconds, without a timer). A `Retry-After` from a
provider pauses that destination for everyone. The clock is injected: tests drive it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Rate:
    count: int
    per: float  # seconds

    @property
    def interval(self) -> float:
        return self.per / self.count


# Keyed by the webhook format, or "sms".
PROVIDER_RATES: dict[str, Rate] = {
    "slack": Rate(1, 1.0),
    "discord": Rate(5, 2.0),
    "sms": Rate(1, 1.0),
}


class SendRates:
    def __init__(
        self,
        rates: dict[str, Rate] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rates = PROVIDER_RATES if rates is None else rates
        self.clock = clock
        self._lock = threading.Lock()
        self._tat: dict[tuple[str, str], float] = {}  # theoretical arrival time per key
        self._paused: dict[tuple[str, str], float] = {}

    def reserve(self, kind: str, destination: str) -> float:
        """0 when a message may go now (and counts it); else seconds to wait first."""
        rate = self.rates.get(kind)
        key = (kind, destination)
        with self._lock:
            now = self.clock()
            paused = self._paused.get(key, 0.0) - now
            if paused > 0:
                return paused
            if rate is None:
                return 0.0
            tat = max(self._tat.get(key, now), now)
            wait = tat - (rate.per - rate.interval) - now
            if wait > 1e-9:
                return wait
            self._tat[key] = tat + rate.interval
            return 0.0

    def pause(self, kind: str, destination: str, seconds: float) -> None:
        """The provider said Retry-After: nothing goes to it before then."""
        with self._lock:
            key = (kind, destination)
            self._paused[key] = max(self._paused.get(key, 0.0), self.clock() + seconds)
