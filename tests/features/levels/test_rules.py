"""Level rules: the level a watch time reaches and the time to the next (SPEC §10.5)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyaltybot.features.levels.rules import (
    Level,
    Standing,
    level_for,
)

LEVELS = [Level("Newcomer", 0), Level("Regular", 10), Level("Veteran", 100.5)]


@pytest.mark.parametrize(
    ("seconds", "current", "following", "left"),
    [
        (0, "Newcomer", "Regular", 36_000),
        (35_999, "Newcomer", "Regular", 1),
        (36_000, "Regular", "Veteran", 325_800),
        (361_799.5, "Regular", "Veteran", 1),
        (361_800, "Veteran", None, None),
        (10**9, "Veteran", None, None),
    ],
)
def test_level_for(seconds: float, current: str, following: str | None,
                   left: int | None) -> None:
    """The highest level reached, the next one, and whole seconds still to watch (rounded up)."""
    standing = level_for(seconds, LEVELS)
    assert standing.current is not None and standing.current.name == current
    assert (standing.next.name if standing.next else None) == following
    assert standing.seconds_to_next == left


def test_below_the_first_level_there_is_none() -> None:
    """Without a level at 0 hours a new viewer has no level yet."""
    assert level_for(10, [Level("Regular", 1)]) == Standing(None, Level("Regular", 1), 3590)


def test_no_levels() -> None:
    """No levels configured: no level, nothing next."""
    assert level_for(1000, []) == Standing(None, None, None)


def test_hours_count_as_written() -> None:
    """1.1 hours is 3,960 seconds exactly, not a float's 3,960.0000000000005."""
    assert Level("x", 1.1).watch_seconds == 3960
    assert level_for(3960, [Level("x", 1.1)]).current == Level("x", 1.1)


@given(st.lists(st.integers(0, 10**6), unique=True, max_size=8), st.integers(0, 10**10))
def test_level_is_the_highest_threshold_reached(hours: list[int], seconds: int) -> None:
    """For any levels and watch time: current <= watched < next, and the gap is exact."""
    levels = [Level(f"L{h}", h) for h in sorted(hours)]
    standing = level_for(seconds, levels)
    reached = [lv for lv in levels if lv.watch_seconds <= seconds]
    assert standing.current == (reached[-1] if reached else None)
    if standing.next is not None:
        assert standing.seconds_to_next == standing.next.watch_seconds - seconds > 0
