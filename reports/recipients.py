"""Who gets the reports: the `'reports'` entry of alert_config.py (ALERT_CONFIG_FILE),
`{'daily': [addresses], 'weekly': [addresses]}`. Mistakes are reported with the file
and the entry, like the bridge does for its own entries."""

from __future__ import annotations

from pathlib import Path

from common.alert_config import CONFIG_VARIABLE, REPORTS_ENTRY, AlertConfigError, read_recipients
from common.reportfiles import KINDS
from common.smtp import is_email

ENTRY = REPORTS_ENTRY


class RecipientsError(ValueError):
    pass


def load_recipients(path: Path) -> dict[str, list[str]]:
    try:
        raw = read_recipients(path)
    except AlertConfigError as exc:
        raise RecipientsError(str(exc)) from exc.__cause__
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
