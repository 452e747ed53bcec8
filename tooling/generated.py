"""Committed files generated from code (dashboards, compose configs): write them, or
check that the committed copies are current (what the tests and CI run)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path


def write_or_check(files: Mapping[Path, str], check: bool, regenerate: str) -> int:
    """Write `files` (path -> text), or with `check` compare them with what is on disk.

    Returns the exit status: 1 when checking finds a missing or different file, with
    the files and the `regenerate` command on stderr; 0 otherwise.
    """
    stale = []
    for path, text in files.items():
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print(f"stale (run {regenerate}): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0
