"""The app's table names: app/models.py declares the tables under these names and the
exporter reads their statistics by them (tests check the two agree)."""

from __future__ import annotations

USERS = "users"
BAGS = "bags"
SCANS = "scans"
BILLS = "bills"
BILL_BAGS = "bill_bags"
TABLES = (BAGS, SCANS, BILLS, BILL_BAGS, USERS)
