"""Amounts as people type them: SPEC §5's input rules."""

from __future__ import annotations

import pytest

from loyaltybot.points.amounts import (
    MAX_POINTS,
    check_amount,
    clamp_credit,
    format_points,
    parse_amount,
)
from loyaltybot.points.errors import InvalidAmount


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", 1),
        ("100", 100),
        ("1,000", 1000),
        ("1,234,567", 1234567),
        (" 42 ", 42),
        (str(MAX_POINTS), MAX_POINTS),
        ("9,007,199,254,740,991", MAX_POINTS),
    ],
)
def test_valid_amounts(text: str, value: int) -> None:
    """Digits, optionally grouped by commas, up to 2^53-1, are accepted."""
    assert parse_amount(text) == value


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("0", "at least 1"),
        ("-5", "positive"),
        ("1e5", "whole number"),
        ("1.5", "whole number"),
        ("abc", "whole number"),
        ("99999999999999999999", "at most"),
        ("", "whole number"),
        ("1,00", "whole number"),
        ("12,3456", "whole number"),
        ("+5", "whole number"),
        ("0x10", "whole number"),
        ("١٢", "whole number"),
        (str(MAX_POINTS + 1), "at most"),
    ],
)
def test_invalid_amounts(text: str, reason: str) -> None:
    """Every malformed amount of SPEC §5 is refused with a reason a viewer understands."""
    with pytest.raises(InvalidAmount) as caught:
        parse_amount(text)
    assert reason in caught.value.reason


def test_zero_only_where_allowed() -> None:
    """Zero is a valid balance to set, never an amount to give."""
    assert parse_amount("0", allow_zero=True) == 0
    assert check_amount(0, allow_zero=True) == 0
    with pytest.raises(InvalidAmount):
        check_amount(0)
    with pytest.raises(InvalidAmount):
        check_amount(True)


def test_clamp_and_format() -> None:
    """A credit is clamped to what fits under the maximum; numbers read with separators."""
    assert clamp_credit(MAX_POINTS - 5, 10) == 5
    assert clamp_credit(MAX_POINTS, 10) == 0
    assert clamp_credit(0, 10) == 10
    assert format_points(1234567) == "1,234,567"
