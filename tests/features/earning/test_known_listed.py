"""A big chatter list's known viewers are kept as numbers only (issue 16): the tick
credits them by id, everyone else as rows, nobody twice and nobody excluded."""

from __future__ import annotations

import numpy as np

from loyaltybot.features.earning.presence import PresenceTracker
from loyaltybot.points.known import KnownLogins, LoginBatch
from loyaltybot.points.viewers import Viewer

CHANNEL = "alice"


def tracker_with(known: dict[str, str], *, bound: int = 100) -> PresenceTracker:
    tracker = PresenceTracker(max_present=bound)
    tracker.set_known(CHANNEL, KnownLogins(LoginBatch.of(known)))
    return tracker


def test_a_page_keeps_known_viewers_as_numbers_and_the_rest_as_rows() -> None:
    tracker = tracker_with({"10": "ann", "11": "bob", "12": "cat"})
    tracker.set_excluded(CHANNEL, ["cat"])
    listed = tracker.listed_filter(CHANNEL)
    # ann known; bob renamed; cat excluded; dan new
    mask = listed(["10", "11", "12", "13"], ["ann", "bobby", "cat", "dan"])
    assert mask.tolist() == [True, False, False, False]


def test_the_tick_names_the_others_and_present_names_everyone() -> None:
    tracker = tracker_with({"10": "ann", "11": "bob", "13": "dan"})
    tracker.set_chatters(CHANNEL, {"12": ("cat", "Cat")},
                         known=np.array([10, 11, 13], dtype=np.int64))
    tracker.message(CHANNEL, Viewer("11", "bob", "Bob"), subscriber=True)
    everyone = {v.login: v.display_name for v in tracker.present(CHANNEL)}
    assert everyone == {"ann": "", "dan": "", "cat": "Cat", "bob": "Bob"}  # "": keep stored
    interval = tracker.take(CHANNEL)
    assert sorted(p.login for p in interval) == ["bob", "cat"]  # the rows; bob chatted
    assert interval.known.tolist() == [10, 11, 13]  # the ledger leaves bob out of these


def test_a_reload_that_excludes_a_listed_viewer_takes_them_off() -> None:
    tracker = tracker_with({"10": "ann", "11": "bob"})
    tracker.set_chatters(CHANNEL, {}, known=np.array([10, 11], dtype=np.int64))
    tracker.set_excluded(CHANNEL, ["bob"])
    assert [v.login for v in tracker.present(CHANNEL)] == ["ann"]


def test_known_viewers_past_the_bound_are_counted_and_named() -> None:
    tracker = tracker_with({str(n): f"v{n}" for n in range(10, 15)}, bound=3)
    tracker.set_chatters(CHANNEL, {"20": ("new", "New")},
                         known=np.arange(10, 15, dtype=np.int64), listed=6)
    assert len(tracker.present(CHANNEL)) == 3
    left = tracker.take_left_out(CHANNEL)
    assert left.count == 3
    assert left.logins == ("v13", "v14", "new")
