"""The app's table names: app/models.py declares the tables under these names and the
exporter reads their statistics by them (tests/test_vocabulary.py checks the two agree:
a new table gets its name here)."""

from __future__ import annotations

USERS = "users"
BAGS = "bags"
SCANS = "scans"
BILLS = "bills"
BILL_BAGS = "bill_bags"
SECURITY_BLOCKS = "security_blocks"
SECURITY_EVENTS = "security_events"
IDEMPOTENCY_KEYS = "idempotency_keys"
TABLES = (BAGS, SCANS, BILLS, BILL_BAGS, USERS, SECURITY_BLOCKS, SECURITY_EVENTS, IDEMPOTENCY_KEYS)
