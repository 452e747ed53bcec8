"""Realistic TraceTrack load for locust.

Each simulated user logs in once (nine in ten as seeded dispatchers, one in ten as
billers), then mixes bag lookups, QR-prefix searches, scan history, scans (dispatchers)
and bill creation (billers) as a working warehouse shift would. Needs a seeded database
(`tracetrack seed --bags N`): bags are picked from the seeder's QR ids (P/C + 10 digits,
ids 1..N, newer bags have higher ids).

Which bags, and why (real traffic is not uniform over five million bags):

- Bags in motion are the recently created ones: scans go to the newest
  TT_BAGS_IN_MOTION bags (default 50,000), uniformly. Each dispatcher works at one hub
  and scans the bags that are at that hub (a bag sits at one hub during a test), so
  the load never looks like a bag in two places at once (the guard's "impossible
  travel" count, TraceTrackSuspiciousScans).
- Lookups, searches and scan histories follow the bags people are watching: the newest
  TT_TRACKED_BAGS (default 2,000), with a skewed popularity (the k-th newest is picked
  with density ~ 1/sqrt(k): the newest are looked up most), plus 2 % anywhere in the
  table (audits, old claims).
- The app's cache warming preloads the same kind of set: the newest bags and the most
  recently scanned ones (app/repository.py `hot_bags`), so the first minute after a
  deploy already hits. A scan invalidates its bag's cache entry; since scans spread
  over many more bags than lookups concentrate on, the cache hit rate stays ~95 %,
  far from the TraceTrackCacheHitRateLow thresholds (70 % warning, 50 % critical).
- Billers bill delivered parent bags that are on no open bill yet, among the bags no
  longer in motion (delivered ones: a dispatcher scanning a billed bag is a suspicious
  scan, TraceTrackSuspiciousScans): they find some with a search, then bill them. Two billers may race for the same bags; the loser's
  409 ("already on an open bill") is the app's correct answer and is reported under
  its own name, `/api/bills (taken by another biller)`, not as a failure.

    locust -f loadtest/locustfile.py --headless -u 1000 -r 20 -t 5m \\
        --host http://127.0.0.1:8000

Writes behave like a careful client: each scan and bill carries an `Idempotency-Key`,
and one answered 503 (or lost to a connection error) is retried once with the same key
after its `Retry-After`, so a write the server committed anyway is not stored twice.

A rollout adds users gradually: `-r 20` brings 1000 users in over 50 s (a shift
starting), and each login costs a deliberately slow password hash (argon2id), so a
far faster ramp measures a login storm, not the steady state; `bench.locust_load`
reports the ramp apart from the steady state.

The client is locust's `FastHttpUser` (geventhttpclient): about a third of the CPU of
the default `HttpUser` per request, which matters when locust shares the cores with
the app it measures.

Environment: TT_SEEDED_BAGS (how many bags were seeded; default 100000),
TT_PASSWORD (the seeded users' password; default the seeder's),
TT_WAIT_MIN / TT_WAIT_MAX (think time between a user's tasks, seconds; default 0.5 / 2),
TT_TRACKED_BAGS, TT_BAGS_IN_MOTION (above).
"""

from __future__ import annotations

import itertools
import os
import random
import time
import uuid
from typing import Any

from locust import between, task
from locust.contrib.fasthttp import FastHttpUser

SEEDED_BAGS = int(os.environ.get("TT_SEEDED_BAGS", "100000"))
PASSWORD = os.environ.get("TT_PASSWORD", "tracetrack-seed")
WAIT_MIN = float(os.environ.get("TT_WAIT_MIN", "0.5"))
WAIT_MAX = float(os.environ.get("TT_WAIT_MAX", "2.0"))
TRACKED_BAGS = max(1, min(SEEDED_BAGS, int(os.environ.get("TT_TRACKED_BAGS", "2000"))))
BAGS_IN_MOTION = max(1, min(SEEDED_BAGS, int(os.environ.get("TT_BAGS_IN_MOTION", "50000"))))
ANYWHERE = 0.02  # share of lookups of any bag at all
# The seeder names users seed-<role>-<index>: dispatchers where index % 3 != 0, billers where == 0.
DISPATCHERS = [f"seed-dispatcher-{i:03d}" for i in range(1, 50) if i % 3]
BILLERS = [f"seed-biller-{i:03d}" for i in range(3, 50, 3)]
LOCATIONS = ("Mumbai Hub", "Delhi Hub", "Chennai Hub", "Pune Depot", "Jaipur Depot")
TAKEN = "already on an open bill"
MAX_RETRY_AFTER = 5.0
_counter = itertools.count()
_hubs = itertools.count()


def qr_of(bag_id: int) -> str:
    """The seeder's QR id of bag `bag_id`: every 10th bag (id % 10 == 1) is a parent."""
    return f"{'P' if bag_id % 10 == 1 else 'C'}{bag_id:010d}"


def tracked_qr() -> str:
    """A bag someone looks up: mostly the newest, skewed towards the very newest."""
    if random.random() < ANYWHERE:
        return qr_of(random.randint(1, SEEDED_BAGS))
    return qr_of(SEEDED_BAGS - int(TRACKED_BAGS * random.random() ** 2))


def moving_qr(hub: int | None = None) -> str:
    """A bag in motion; with `hub`, one at that hub (bag id % len(LOCATIONS) == hub)."""
    bag_id = SEEDED_BAGS - random.randrange(BAGS_IN_MOTION)
    if hub is not None:
        bag_id = max(1, bag_id - (bag_id - hub) % len(LOCATIONS))
    return qr_of(bag_id)


def settled_qr() -> str:
    """A bag that is no longer in motion (older than the bags in motion)."""
    settled = max(1, SEEDED_BAGS - BAGS_IN_MOTION)
    return qr_of(random.randint(1, settled))


class _LoggedIn(FastHttpUser):
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
        self.auth = {"Authorization": f"Bearer {r.json()['access_token']}"}

    def post_once(self, path: str, body: dict[str, Any]) -> None:
        """POST with an Idempotency-Key; one retry with the same key after a 503."""
        headers = {**self.auth, "Idempotency-Key": str(uuid.uuid4())}
        with self.client.post(
            path, json=body, headers=headers, name=path, catch_response=True
        ) as r:
            if r.status_code == 409 and TAKEN in (r.text or ""):
                r.success()  # another biller got there first: the app's correct answer
                r.request_meta["name"] = f"{path} (taken by another biller)"
            retry = r.status_code in (0, 503)  # 0: connection error, no answer
            delay = r.headers.get("Retry-After", "1") if r.headers else "1"
        if retry:
            try:
                wait = float(delay)
            except ValueError:
                wait = 1.0
            time.sleep(min(wait, MAX_RETRY_AFTER))
            self.client.post(path, json=body, headers=headers, name=f"{path} (retry)")

    @task(50)
    def lookup(self) -> None:
        self.client.get(f"/api/bags/{tracked_qr()}", name="/api/bags/{qr_id}", headers=self.auth)

    @task(20)
    def search(self) -> None:
        prefix = tracked_qr()[: random.randint(7, 9)]
        self.client.get(f"/api/bags?q={prefix}&limit=20", name="/api/bags?q=", headers=self.auth)

    @task(5)
    def history(self) -> None:
        self.client.get(
            f"/api/bags/{tracked_qr()}/scans?limit=10",
            name="/api/bags/{qr_id}/scans",
            headers=self.auth,
        )


class Dispatcher(_LoggedIn):
    """Nine in ten users: scanning bags through hubs, looking them up."""

    weight = 9
    usernames = DISPATCHERS

    def on_start(self) -> None:
        super().on_start()
        self.hub = next(_hubs) % len(LOCATIONS)

    @task(25)
    def scan(self) -> None:
        self.post_once(
            "/api/scans", {"qr_id": moving_qr(self.hub), "location": LOCATIONS[self.hub]}
        )


class Biller(_LoggedIn):
    """One in ten users: billing delivered parent bags."""

    weight = 1
    usernames = BILLERS

    @task(25)
    def bill(self) -> None:
        prefix = settled_qr()[1:9]  # ten ids or so among the bags that arrived
        found = self.client.get(
            f"/api/bags?q=P{prefix}&type=parent&status=delivered&limit=3",
            name="/api/bags?q=&type=parent&status=delivered",
            headers=self.auth,
        )
        if not found.ok:
            return
        qr_ids = [b["qr_id"] for b in found.json()["items"]]
        if not qr_ids:
            return
        self.post_once(
            "/api/bills", {"bill_number": f"LT-{uuid.uuid4().hex[:16]}", "bag_qr_ids": qr_ids}
        )
