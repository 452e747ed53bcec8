"""common/thresholds.py's levels, read the same way by /analytics and the reports: a
value is at the worse level it breaches, on the bad side of the limit for the
threshold's direction, and exactly at a limit is still within it (alerts use > / <)."""

from __future__ import annotations

from common.thresholds import BY_KEY, LEVELS, SECURITY_BY_KEY, worst_level


def test_levels_are_warning_then_critical() -> None:
    assert LEVELS == ("warning", "critical")


def test_worst_level_of_an_above_threshold() -> None:
    t = BY_KEY["response_time"]  # warning 2 s, critical 5 s
    assert [worst_level(t, v) for v in (1.0, 2.0, 2.5, 5.0, 7.0)] == [
        None,
        None,
        "warning",
        "warning",
        "critical",
    ]


def test_worst_level_of_a_below_threshold() -> None:
    t = BY_KEY["cache_hit_rate"]  # warning below 70 %, critical below 50 %
    assert [worst_level(t, v) for v in (0.9, 0.7, 0.6, 0.5, 0.4)] == [
        None,
        None,
        "warning",
        "warning",
        "critical",
    ]
    assert [t.limit(level) for level in LEVELS] == [t.warning, t.critical]


def test_security_thresholds_read_the_same_way() -> None:
    t = SECURITY_BY_KEY["login_failures"]
    assert worst_level(t, t.warning) is None
    assert worst_level(t, t.warning + 1) == "warning"
    assert worst_level(t, t.critical + 1) == "critical"
