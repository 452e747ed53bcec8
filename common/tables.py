"""The app's table names: app/models.py declares the tables under these names and the
exporter reads their statistics by them (tests check the two agree)."""

from __future__ import annotations

USERS = "users"
BAGS = "bags"
SCANS = "scans"
BILLS = "bills"
BILL_BAGS = "bill_bags"
SECURITY_BLOCKS = "security_blocks"
SECURITY_EVENTS = "security_events"
TABLES = (BAGS, SCANS, BILLS, BILL_BAGS, USERS, SECURITY_BLOCKS, SECURITY_EVENTS)
