"""Level rules: the level a watch time reaches and the time to the next (SPEC §10.5)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyaltybot.features.levels.rules import (
    Level,
    Standing,
    level_for,
    levels_from,
    validate_levels,
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


@pytest.mark.parametrize(
    ("tables", "problems"),
    [
        ([{"name": "A", "watch_hours": 0}, {"name": "B", "watch_hours": 1.5}], []),
        ([{"name": "", "watch_hours": 1}], [("[0].name", "must be a non-empty string")]),
        ([{"watch_hours": 1}], [("[0].name", "must be a non-empty string")]),
        ([{"name": "A" * 51, "watch_hours": 1}],
         [("[0].name", "must be at most 50 characters")]),
        ([{"name": "A", "watch_hours": 1}, {"name": "a ", "watch_hours": 2}],
         [("[1].name", "is the same as the name of level [0]")]),
        ([{"name": "A", "watch_hours": -1}],
         [("[0].watch_hours", "must be a number from 0 to 1,000,000")]),
        ([{"name": "A", "watch_hours": "10"}],
         [("[0].watch_hours", "must be a number from 0 to 1,000,000")]),
        ([{"name": "A", "watch_hours": True}],
         [("[0].watch_hours", "must be a number from 0 to 1,000,000")]),
        ([{"name": "A", "watch_hours": float("nan")}],
         [("[0].watch_hours", "must be a number from 0 to 1,000,000")]),
        ([{"name": "A", "watch_hours": 5}, {"name": "B", "watch_hours": 5}],
         [("[1].watch_hours", "must be more than the watch_hours of the level before")]),
        ([{"name": "A", "watch_hours": 5}, {"name": "B", "watch_hours": 2}],
         [("[1].watch_hours", "must be more than the watch_hours of the level before")]),
        ([{"name": "A", "watch_hours": 1, "colour": "red"}], [("[0].colour", "unknown key")]),
        (["A"], [("[0]", "must be a table")]),
        ("A", [("", "must be a list of tables")]),
    ],
)
def test_validate_levels(tables: Any, problems: list[tuple[str, str]]) -> None:
    """Names unique and non-empty, hours >= 0 and ascending; each problem names its key."""
    assert validate_levels(tables) == problems


def test_levels_from_tables() -> None:
    """Valid tables become levels; invalid ones raise with every problem."""
    assert levels_from([{"name": " Regular ", "watch_hours": 10}]) == [Level("Regular", 10)]
    with pytest.raises(ValueError, match="watch_hours"):
        levels_from([{"name": "A", "watch_hours": -1}])
