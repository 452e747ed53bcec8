"""Realistic TraceTrack load for locust.

Each simulated user logs in once (nine in ten as seeded dispatchers, one in ten
as billers), then mixes bag lookups, QR-prefix searches, scan history, scans
(dispatchers) and bill creation (billers) as a working warehouse shift would. Needs a seeded database (`tracetrack seed --bags N`):
lookups and scans pick from the seeder's QR ids (P/C + 10 digits).

    locust -f loadtest/locustfile.py --headless -u 1000 -r 100 -t 2m \
        --host http://127.0.0.1:8000

Environment: TT_SEEDED_BAGS (how many bags were seeded; default 100000),
TT_PASSWORD (the seeded users' password; default the seeder's),
TT_WAIT_MIN / TT_WAIT_MAX (think time between a user's tasks, seconds; default 0.5 / 2).

Writes behave like a careful client: each scan and bill carries an `Idempotency-Key`,
and one answered 503 (or lost to a connection error) is retried once with the same key
after its `Retry-After`, so a write the server committed anyway is not stored twice.
"""

from __future__ import annotations

import itertools
import os
import random
import time
import uuid
from typing import Any

from locust import HttpUser, between, task

SEEDED_BAGS = int(os.environ.get("TT_SEEDED_BAGS", "100000"))
PASSWORD = os.environ.get("TT_PASSWORD", "tracetrack-seed")
WAIT_MIN = float(os.environ.get("TT_WAIT_MIN", "0.5"))
WAIT_MAX = float(os.environ.get("TT_WAIT_MAX", "2.0"))
# The seeder names users seed-<role>-<index>: dispatchers where index % 3 != 0, billers where == 0.
DISPATCHERS = [f"seed-dispatcher-{i:03d}" for i in range(1, 50) if i % 3]
BILLERS = [f"seed-biller-{i:03d}" for i in range(3, 50, 3)]
LOCATIONS = ("Mumbai Hub", "Delhi Hub", "Chennai Hub", "Pune Depot", "Jaipur Depot")
_counter = itertools.count()
MAX_RETRY_AFTER = 5.0


def random_qr() -> str:
    """A QR id the seeder created: every 10th bag (id % 10 == 1) is a parent."""
    bag_id = random.randint(1, SEEDED_BAGS)
    return f"{'P' if bag_id % 10 == 1 else 'C'}{bag_id:010d}"


class _LoggedIn(HttpUser):
    abstract = True
    wait_time = between(WAIT_MIN, WAIT_MAX)
    usernames: list[str] = []

    def on_start(self) -> None:
        username = self.usernames[next(_counter) % len(self.usernames)]
        r = self.client.post(
            "/api/auth/login",
            json={"username": username, "password": PASSWORD},
            name="/api/auth/login",
        )
        r.raise_for_status()
        self.client.headers["Authorization"] = f"Bearer {r.json()['access_token']}"

    def post_once(self, path: str, body: dict[str, Any]) -> None:
        """POST with an Idempotency-Key; one retry with the same key after a 503."""
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        r = self.client.post(path, json=body, headers=headers, name=path)
        if r.status_code == 503 or r.status_code == 0:  # 0: connection error, no answer
            try:
                delay = float(r.headers.get("Retry-After", "1"))
            except ValueError:
                delay = 1.0
            time.sleep(min(delay, MAX_RETRY_AFTER))
            self.client.post(path, json=body, headers=headers, name=f"{path} (retry)")

    @task(50)
    def lookup(self) -> None:
        self.client.get(f"/api/bags/{random_qr()}", name="/api/bags/{qr_id}")

    @task(20)
    def search(self) -> None:
        prefix = random_qr()[: random.randint(7, 9)]
        self.client.get("/api/bags", params={"q": prefix, "limit": 20}, name="/api/bags?q=")

    @task(5)
    def history(self) -> None:
        self.client.get(
            f"/api/bags/{random_qr()}/scans", params={"limit": 10}, name="/api/bags/{qr_id}/scans"
        )


class Dispatcher(_LoggedIn):
    """Nine in ten users: scanning bags through hubs, looking them up."""

    weight = 9
    usernames = DISPATCHERS

    @task(25)
    def scan(self) -> None:
        self.post_once("/api/scans", {"qr_id": random_qr(), "location": random.choice(LOCATIONS)})


class Biller(_LoggedIn):
    """One in ten users: billing parent bags."""

    weight = 1
    usernames = BILLERS

    @task(25)
    def bill(self) -> None:
        parents = [f"P{random.randint(0, SEEDED_BAGS // 10 - 1) * 10 + 1:010d}" for _ in range(3)]
        self.post_once(
            "/api/bills", {"bill_number": f"LT-{uuid.uuid4().hex[:16]}", "bag_qr_ids": parents}
        )
