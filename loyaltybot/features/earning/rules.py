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


AHEAD_FROM_SECONDS = 0.25  # a chatter list read faster than this is read at the tick


def collect_lead(last_seconds: float, interval: float) -> float:
    """How long before a tick to start reading the chatter list: 0 for a small channel
    (read at the tick itself), else one and a half times the last reading, at most half
    the interval. A million viewers are 1,000 pages that Twitch's rate limit spreads over
    more than a minute: they cannot be read inside the tick."""
    if last_seconds < AHEAD_FROM_SECONDS:
        return 0.0
    return min(interval / 2, last_seconds * 1.5 + 0.5)
