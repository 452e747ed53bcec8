"""Prometheus durations (`1m30s`, `10s`, `500ms`) as seconds.

The reports read the running Prometheus' scrape interval at run time, and the
tooling renders and checks configurations with the same parser.
"""

from __future__ import annotations

import re

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$")


def duration_seconds(text: str) -> float:
    """Seconds in a Prometheus duration; ValueError naming the text otherwise."""
    match = _DURATION.match(text.strip())
    if not text.strip() or match is None:
        raise ValueError(f"not a duration: {text!r} (expected e.g. 10s, 1m, 500ms)")
    h, m, s, ms = (int(g) if g else 0 for g in match.groups())
    return h * 3600 + m * 60 + s + ms / 1000
