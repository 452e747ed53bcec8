"""The app's domain words, once: the types the API validates with, and the tuples the
database constraints, the seeder and the CLI use (derived, so they cannot drift).

app/migrations are history and keep their literal copies; tests check the migrated
database's constraints allow exactly these values.
"""

from __future__ import annotations

from typing import Literal, get_args

Role = Literal["admin", "dispatcher", "biller"]
BagType = Literal["parent", "child"]
BagStatus = Literal["created", "in_transit", "delivered", "billed", "lost"]
# What a client may set on a bag or a scan: "billed" is reached only by billing it.
SettableBagStatus = Literal["created", "in_transit", "delivered", "lost"]
BillStatus = Literal["open", "closed", "cancelled"]

ROLES: tuple[str, ...] = get_args(Role)
BAG_TYPES: tuple[str, ...] = get_args(BagType)
BAG_STATUSES: tuple[str, ...] = get_args(BagStatus)
BILL_STATUSES: tuple[str, ...] = get_args(BillStatus)
