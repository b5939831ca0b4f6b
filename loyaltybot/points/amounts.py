"""Point amounts: the one place that decides what a valid amount is and how it reads.

Amounts are integers in [1, MAX_POINTS] (zero only where a caller allows it, as for
setting a balance). MAX_POINTS is 2^53-1 so a balance survives a trip through JSON and
JavaScript on the dashboard without rounding.
"""

from __future__ import annotations

import re

from loyaltybot.points.errors import InvalidAmount

MAX_POINTS = 2**53 - 1

# ASCII digits (int() would also take other scripts), optionally grouped in threes by
# commas: 1234, 1,234, 1,234,567.
_AMOUNT = re.compile(r"[0-9]+|[0-9]{1,3}(?:,[0-9]{3})+")


def parse_amount(text: str, *, allow_zero: bool = False) -> int:
    """Read an amount typed by a person (chat, dashboard, CLI).

    Raises:
        InvalidAmount: with a reason fit to show that person.
    """
    raw = text.strip()
    if not _AMOUNT.fullmatch(raw):
        if raw.startswith("-") and _AMOUNT.fullmatch(raw[1:]):
            raise InvalidAmount(text, "must be positive")
        raise InvalidAmount(text, "must be a whole number, like 100 or 1,000")
    value = int(raw.replace(",", ""))
    if value == 0 and not allow_zero:
        raise InvalidAmount(text, "must be at least 1")
    if value > MAX_POINTS:
        raise InvalidAmount(text, f"must be at most {MAX_POINTS:,}")
    return value


def check_amount(value: int, *, allow_zero: bool = False) -> int:
    """Validate an amount that arrives as an int (API, config, import files)."""
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_POINTS:
        raise InvalidAmount(str(value), f"must be a whole number from {low} to {MAX_POINTS:,}")
    return value


def clamp_credit(balance: int, amount: int) -> int:
    """The part of a credit that fits under MAX_POINTS."""
    return max(0, min(amount, MAX_POINTS - balance))


def format_points(value: int) -> str:
    """1234567 -> '1,234,567' (the separators chat and the dashboard use)."""
    return f"{value:,}"
