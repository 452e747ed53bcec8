"""alert_config.py, the operator's recipients file: one reader for the bridge (who is
paged, per channel and severity) and the reporter (its `'reports'` entry). Each checks
its own entries; this reads the file and names it in every error."""

from __future__ import annotations

import runpy
from pathlib import Path

CONFIG_VARIABLE = "ALERT_RECIPIENTS"
REPORTS_ENTRY = "reports"


class AlertConfigError(ValueError):
    """alert_config.py cannot be used; the message starts with the file's path."""


def read_recipients(path: Path) -> object:
    """The file's ALERT_RECIPIENTS value, not yet checked."""
    path = Path(path)
    if not path.is_file():
        where = "" if path.is_absolute() else f" in {Path.cwd()}"
        raise AlertConfigError(
            f"{path}: alert config file not found{where} (set ALERT_CONFIG_FILE)"
        )
    try:
        namespace = runpy.run_path(str(path))
    except Exception as exc:
        raise AlertConfigError(f"{path}: cannot be loaded: {type(exc).__name__}: {exc}") from exc
    except SystemExit as exc:  # the whole service would exit, without a word
        raise AlertConfigError(f"{path}: cannot be loaded: it calls exit ({exc.code})") from exc
    if CONFIG_VARIABLE not in namespace:
        raise AlertConfigError(f"{path}: defines no {CONFIG_VARIABLE} dict")
    return namespace[CONFIG_VARIABLE]
