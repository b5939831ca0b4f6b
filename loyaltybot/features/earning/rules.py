"""The earning schedule and rates, as pure functions (SPEC §4).

No tick is credited twice and none at start-up: the first comes one interval after the
last credited one (or after start); a machine that slept is not paid for every interval
it missed.
"""

from __future__ import annotations

import math

from loyaltybot.points.ledger import EarningRates
from loyaltybot.settings import ChannelSettings


def first_due(now: float, interval: float, last_credited: float | None) -> float:
    """One interval after the last credited tick, or after start; never at start-up."""
    if last_credited is not None and last_credited + interval > now:
        return last_credited + interval
    return now + interval


def next_due(previous_due: float, interval: float, now: float) -> tuple[float, int]:
    """The due time after ``previous_due``, skipping whole intervals already missed (a
    suspended machine is not paid for hours in one burst); returns (due, skipped)."""
    due = previous_due + interval
    skipped = 0
    if due + interval <= now:
        skipped = math.floor((now - due) / interval)
        due += skipped * interval
    return due, skipped


def rates_of(settings: ChannelSettings) -> EarningRates:
    return EarningRates(
        points=settings.points_per_interval,
        subscriber_points=settings.subscriber_points,
        active_bonus=settings.active_bonus,
        min_watch_seconds=round(settings.min_watchtime_minutes * 60),
    )
