"""Billing rules: only billing marks a bag billed, a bag is on one open bill at most, and
scans of a billed bag keep it billed. Against the real app and PostgreSQL."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app import repository as repo
from app.db import asyncpg_dsn
from common.metric_names import SUSPICIOUS_SCANS
from tests.support.appkit import add_user


def bag(client: TestClient, headers: dict[str, str], qr_id: str) -> None:
    r = client.post("/api/bags", json={"qr_id": qr_id, "bag_type": "parent"}, headers=headers)
    assert r.status_code == 201, r.text


def status_of(client: TestClient, headers: dict[str, str], qr_id: str) -> str:
    return str(client.get(f"/api/bags/{qr_id}", headers=headers).json()["status"])


def test_a_bag_cannot_go_on_a_second_open_bill(
    client: TestClient, dispatcher: dict[str, str], biller: dict[str, str]
) -> None:
    for qr in ("B1", "B2", "B3"):
        bag(client, dispatcher, qr)
    first = client.post("/api/bills", json={"bill_number": "INV-1", "bag_qr_ids": ["B1", "B2"]})
    assert first.status_code == 401  # needs a biller
    first = client.post(
        "/api/bills", json={"bill_number": "INV-1", "bag_qr_ids": ["B1", "B2"]}, headers=biller
    )
    assert first.status_code == 201
    r = client.post(
        "/api/bills", json={"bill_number": "INV-2", "bag_qr_ids": ["B3", "B2"]}, headers=biller
    )
    assert r.status_code == 409
    assert r.json()["detail"] == "already on an open bill: B2 (bill INV-1)"
    assert client.get("/api/bills/INV-2", headers=biller).status_code == 404  # nothing half-made
    assert status_of(client, biller, "B3") == "created"
    ok = client.post(
        "/api/bills", json={"bill_number": "INV-3", "bag_qr_ids": ["B3"]}, headers=biller
    )
    assert ok.status_code == 201


def test_a_bag_on_a_closed_bill_can_be_billed_again(
    client: TestClient, dispatcher: dict[str, str], biller: dict[str, str]
) -> None:
    bag(client, dispatcher, "B1")
    client.post("/api/bills", json={"bill_number": "OLD", "bag_qr_ids": ["B1"]}, headers=biller)
    client.portal.call(  # type: ignore[union-attr]
        client.app.state.db.execute,  # type: ignore[attr-defined]
        "UPDATE bills SET status = 'closed' WHERE bill_number = 'OLD'",
    )
    r = client.post("/api/bills", json={"bill_number": "NEW", "bag_qr_ids": ["B1"]}, headers=biller)
    assert r.status_code == 201, r.text


def test_two_bills_racing_for_one_bag_queue_on_its_row_lock(
    client: TestClient, database_url: str, dispatcher: dict[str, str]
) -> None:
    bag(client, dispatcher, "RACE")
    user_id = add_user(database_url, "billy", "biller")

    async def race() -> BaseException | None:
        dsn = asyncpg_dsn(database_url)
        first, second, probe = [await asyncpg.connect(dsn) for _ in range(3)]
        try:
            billing = first.transaction()
            await billing.start()
            await repo.create_bill(first, "FIRST", user_id, ["RACE"])  # holds the row lock
            async with second.transaction():
                racer = asyncio.ensure_future(repo.create_bill(second, "SECOND", user_id, ["RACE"]))
                deadline, waiting = time.monotonic() + 30, False
                while time.monotonic() < deadline and not waiting:
                    waiting = await probe.fetchval(
                        "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1",
                        second.get_server_pid(),
                    )
                    await asyncio.sleep(0.05)
                assert waiting, "the second bill did not wait for the first one's lock"
                await billing.commit()
                done, _ = await asyncio.wait([racer], timeout=30)
                assert done, "the second bill still waits after the first committed"
                return racer.exception()
        finally:
            for conn in (first, second, probe):
                await conn.close()

    outcome = asyncio.run(race())
    assert isinstance(outcome, repo.Conflict), outcome
    assert "RACE (bill FIRST)" in str(outcome)


@pytest.mark.parametrize(
    "path, body",
    [
        ("/api/bags", {"qr_id": "NB", "bag_type": "parent", "status": "billed"}),
        ("/api/bags/bulk", {"bags": [{"qr_id": "NB", "bag_type": "parent", "status": "billed"}]}),
        ("/api/scans", {"qr_id": "B1", "location": "Hub", "status": "billed"}),
    ],
)
def test_only_billing_marks_a_bag_billed(
    client: TestClient, admin: dict[str, str], path: str, body: dict
) -> None:
    bag(client, admin, "B1")
    r = client.post(path, json=body, headers=admin)
    assert r.status_code == 422, r.text
    assert any("status" in err["loc"] for err in r.json()["detail"])
    assert status_of(client, admin, "B1") == "created"


def test_a_scan_of_a_billed_bag_keeps_it_billed(
    client: TestClient, dispatcher: dict[str, str], biller: dict[str, str]
) -> None:
    bag(client, dispatcher, "B1")
    client.post("/api/bills", json={"bill_number": "INV-1", "bag_qr_ids": ["B1"]}, headers=biller)
    before = billed_bag_scans(client)
    r = client.post(
        "/api/scans",
        json={"qr_id": "B1", "location": "Gate 4", "status": "in_transit"},
        headers=dispatcher,
    )
    assert r.status_code == 201  # the scan itself is recorded
    got = client.get("/api/bags/B1", headers=dispatcher).json()
    assert got["status"] == "billed" and got["location"] == "Gate 4"
    scans = client.get("/api/bags/B1/scans", headers=dispatcher).json()["items"]
    assert [s["location"] for s in scans] == ["Gate 4"]
    assert billed_bag_scans(client) == before + 1  # a suspicious-scan kind


def billed_bag_scans(client: TestClient) -> float:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == SUSPICIOUS_SCANS and sample.labels.get("kind") == "billed_bag":
                return sample.value
    raise AssertionError("no billed_bag series in /metrics")


def test_a_scan_of_an_unbilled_bag_still_sets_its_status(
    client: TestClient, dispatcher: dict[str, str]
) -> None:
    bag(client, dispatcher, "B1")
    client.post(
        "/api/scans",
        json={"qr_id": "B1", "location": "Hub", "status": "delivered"},
        headers=dispatcher,
    )
    assert status_of(client, dispatcher, "B1") == "delivered"
