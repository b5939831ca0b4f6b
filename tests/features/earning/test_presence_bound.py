"""The presence bound is far above real channels, configurable, and never silent (issue 16)."""

from __future__ import annotations

from loyaltybot.features.earning.presence import MAX_PRESENT, PresenceTracker
from loyaltybot.points.viewers import Viewer

CHANNEL = "alice"


def test_the_default_bound_holds_five_million() -> None:
    """Far above any real channel: at least 5,000,000 present viewers by default."""
    assert PresenceTracker().max_present == MAX_PRESENT >= 5_000_000


def test_viewers_past_the_bound_are_counted_and_named() -> None:
    """Past the bound nobody is silently dropped: each is counted, the first few named."""
    tracker = PresenceTracker(max_present=3)
    tracker.set_chatters(CHANNEL, {str(n): (f"v{n}", f"V{n}") for n in range(5)})
    for n in range(10, 16):
        tracker.message(CHANNEL, Viewer(str(n), f"c{n}", f"C{n}"), subscriber=False)
    present = list(tracker.take(CHANNEL))
    assert len(present) == 6  # three from the list, three who chatted
    left = tracker.take_left_out(CHANNEL)
    assert left.count == 5
    assert left.logins == ("v3", "v4", "c13", "c14", "c15")
    assert tracker.take_left_out(CHANNEL).count == 0  # reported once
