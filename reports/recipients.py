"""Who gets the reports: the `'reports'` entry of alert_config.py (ALERT_CONFIG_FILE),
`{'daily': [addresses], 'weekly': [addresses]}`. Mistakes are reported with the file
and the entry, like the bridge does for its own entries."""

from __future__ import annotations

import runpy
from pathlib import Path

from common.smtp import is_email
from reports.period import KINDS

CONFIG_VARIABLE = "ALERT_RECIPIENTS"
ENTRY = "reports"


class RecipientsError(ValueError):
    pass


def load_recipients(path: Path) -> dict[str, list[str]]:
    if not path.is_file():
        raise RecipientsError(f"{path}: alert config file not found (ALERT_CONFIG_FILE)")
    try:
        namespace = runpy.run_path(str(path))
    except Exception as exc:
        raise RecipientsError(f"{path}: cannot be loaded: {type(exc).__name__}: {exc}") from exc
    raw = namespace.get(CONFIG_VARIABLE, {})
    entry = raw.get(ENTRY, {}) if isinstance(raw, dict) else {}
    where = f"{path}: {CONFIG_VARIABLE}[{ENTRY!r}]"
    if not isinstance(entry, dict):
        raise RecipientsError(f"{where} must be a dict like {{'daily': [...], 'weekly': [...]}}")
    out: dict[str, list[str]] = {kind: [] for kind in KINDS}
    for kind, addresses in entry.items():
        if kind not in KINDS:
            raise RecipientsError(f"{where}[{kind!r}]: unknown report; expected daily or weekly")
        if not isinstance(addresses, list | tuple):
            raise RecipientsError(f"{where}[{kind!r}] must be a list of email addresses")
        for i, address in enumerate(addresses):
            if not is_email(address):
                raise RecipientsError(
                    f"{where}[{kind!r}][{i}]: {address!r} is not an email address"
                )
        out[kind] = list(dict.fromkeys(addresses))
    return out
