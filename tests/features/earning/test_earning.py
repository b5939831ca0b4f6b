"""Earning: the schedule, presence, and real interval loops on a real database."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from loyaltybot.clock import SystemClock
from loyaltybot.db import Store
from loyaltybot.features.earning.service import (
    Earning,
    PresenceTracker,
    first_due,
    next_due,
    settings_reader,
)
from loyaltybot.points.bank import Bank
from loyaltybot.points.ledger import EntryType
from loyaltybot.points.viewers import Viewer
from tests.conftest import CHANNEL, viewer


def test_first_tick_is_one_interval_after_the_last_or_after_start() -> None:
    """Never at start-up: after the last credited tick if that is still ahead, else after now."""
    assert first_due(now=1000, interval=300, last_credited=None) == 1300
    assert first_due(now=1000, interval=300, last_credited=900) == 1200
    assert first_due(now=1000, interval=300, last_credited=100) == 1300
    assert first_due(now=1000, interval=300, last_credited=700) == 1300


def test_missed_intervals_are_skipped_not_paid_in_a_burst() -> None:
    """A slow tick or a suspended machine moves the schedule on; whole missed intervals lapse."""
    assert next_due(1000, 300, now=1010) == (1300, 0)
    assert next_due(1000, 300, now=1350) == (1300, 0)  # late tick: due now, once
    assert next_due(1000, 300, now=2250) == (2200, 3)


def test_presence_merges_chatters_chat_and_joins() -> None:
    """Chatters from Helix plus who chatted; without Helix, JOINs resolved to ids."""
    tracker = PresenceTracker()
    tracker.set_excluded(CHANNEL, {"nightbot", CHANNEL})
    tracker.message(CHANNEL, viewer(1), subscriber=True)
    tracker.message(CHANNEL, viewer(1), subscriber=True)
    tracker.message(CHANNEL, Viewer("9", "nightbot", "Nightbot"), subscriber=False)
    tracker.join(CHANNEL, "user2")
    tracker.join(CHANNEL, "user3")
    tracker.learn(CHANNEL, {"1002": "user2"})
    first = {p.login: (p.subscriber, p.messages) for p in list(tracker.take(CHANNEL))}
    assert first == {"user1": (True, 2), "user2": (False, 0)}  # user3 has no known id
    assert tracker.unresolved_joins(CHANNEL) == ["user3"]

    tracker.set_chatters(CHANNEL, {"1004": ("user4", "User4"), "1": (CHANNEL, "Alice")})
    tracker.message(CHANNEL, viewer(1), subscriber=False)
    second = {p.login: (p.subscriber, p.messages) for p in list(tracker.take(CHANNEL))}
    assert second == {"user4": (False, 0), "user1": (False, 1)}


async def run_earning(
    bank: Bank,
    file_settings: Mapping[str, Any],
    seconds: float,
    feed: Any = None,
    live: bool = True,
) -> Earning:
    await bank.ensure_channels([CHANNEL])
    tracker = PresenceTracker()
    earning = Earning(
        bank,
        tracker,
        SystemClock(),
        settings_reader(bank.store, bank.channel_id, lambda c: file_settings),
        max_sleep=0.05,
    )
    await earning.start([CHANNEL])
    earning.set_live(CHANNEL, live)
    if feed:
        feed(tracker)
    await asyncio.sleep(seconds)
    await earning.close()
    return earning


FAST = {
    "interval_minutes": 0.005,
    "points_per_interval": 10,
    "subscriber_multiplier": 2.0,
    "active_bonus": 3,
}  # a tick every 0.3 s


async def ticks(store: Store) -> list[tuple[int, int, int]]:
    return await store.read(
        lambda c: c.execute(
            "SELECT seq, present, points FROM earning_ticks ORDER BY seq"
        ).fetchall()
    )


async def test_live_channel_earns_every_interval(bank: Bank, store: Store) -> None:
    """While live, present viewers earn per tick; chatters earn the bonus once per interval."""

    def feed(tracker: PresenceTracker) -> None:
        tracker.message(CHANNEL, viewer(1), subscriber=False)
        tracker.message(CHANNEL, viewer(2), subscriber=True)
        tracker.join(CHANNEL, "user3")
        tracker.learn(CHANNEL, {"1003": "user3"})

    await bank.credit(CHANNEL, viewer(3), 1, kind=EntryType.ADD)
    earning = await run_earning(bank, FAST, 1.05, feed)
    done = await ticks(store)
    assert len(done) == earning.ticks == 3
    assert [t[0] for t in done] == [1, 2, 3]
    assert done[0][1:] == (3, 13 + 23 + 10)  # first interval: 1 and 2 chatted
    assert done[1][1:] == (1, 10)  # later: only the JOINed viewer is still present
    points = {n: (await bank.viewer(CHANNEL, f"user{n}")) for n in (1, 2, 3)}
    assert {n: r.points for n, r in points.items() if r} == {1: 13, 2: 23, 3: 1 + 30}
    watched = await store.read(
        lambda c: c.execute("SELECT sum(watch_seconds) FROM earning_ticks").fetchone()[0]
    )
    # Ticks credit whole seconds; the rest (the carry and the unfinished interval) is
    # written at shutdown: about 1.05 s in all for a viewer present throughout.
    assert points[3] is not None and watched <= points[3].watch_seconds <= 2
    assert points[3].watch_seconds >= 1
    assert await bank.audit() == []


async def test_offline_channel_earns_nothing_but_counts_messages(bank: Bank, store: Store) -> None:
    """Offline (without enable_offline): no tick, no points, message counts still kept."""
    earning = await run_earning(
        bank, FAST, 0.8, lambda t: t.message(CHANNEL, viewer(1), subscriber=False), live=False
    )
    assert earning.ticks == 0 and await ticks(store) == []
    record = await bank.viewer(CHANNEL, "user1")
    assert record is not None and (record.points, record.messages, record.watch_seconds) == (
        0,
        1,
        0,
    )


async def test_enable_offline_pays_while_offline(bank: Bank, store: Store) -> None:
    """With enable_offline the channel earns whether or not it is live."""
    earning = await run_earning(
        bank,
        {**FAST, "enable_offline": True},
        0.5,
        lambda t: t.message(CHANNEL, viewer(1), subscriber=False),
        live=False,
    )
    assert earning.ticks >= 1
    record = await bank.viewer(CHANNEL, "user1")
    assert record is not None and record.points >= 13


async def test_restart_between_ticks_never_credits_twice(bank: Bank, store: Store) -> None:
    """After a restart the tick numbers continue and the first tick waits an interval."""
    slow = {**FAST, "interval_minutes": 0.01}  # 0.6 s
    feed = lambda t: t.join(CHANNEL, "user1") or t.learn(CHANNEL, {"1001": "user1"})  # noqa: E731
    await run_earning(bank, slow, 0.75, feed)
    first = await ticks(store)
    assert [t[0] for t in first] == [1]
    # Restart right away: the next tick is due 0.6 s after the first, not at start-up.
    await run_earning(bank, slow, 0.3, feed)
    assert await ticks(store) == first
    await run_earning(bank, slow, 0.9, feed)
    assert [t[0] for t in await ticks(store)] == [1, 2]
    assert await bank.audit() == []


async def test_settings_change_applies_on_next_tick(bank: Bank, store: Store) -> None:
    """A dashboard edit of the rate is used by the very next tick."""
    from loyaltybot import settings as settings_mod

    await bank.ensure_channels([CHANNEL])
    channel_id = bank.channel_id(CHANNEL)
    await store.write(
        lambda tx: settings_mod.apply_dashboard(
            tx, channel_id, {"interval_minutes": 0.005, "points_per_interval": 7}, "test"
        )
    )
    earning = await run_earning(
        bank, {}, 0.45, lambda t: t.message(CHANNEL, viewer(1), subscriber=False)
    )
    assert earning.ticks == 1
    record = await bank.viewer(CHANNEL, "user1")
    assert record is not None and record.points == 7


async def test_present_is_the_chat_layers_presence_source(bank: Bank) -> None:
    """`!addpoints all` sees everyone present: chatters, active and resolved JOINs."""
    await bank.ensure_channels([CHANNEL])
    tracker = PresenceTracker()
    earning = Earning(
        bank, tracker, SystemClock(), settings_reader(bank.store, bank.channel_id, lambda c: FAST)
    )
    tracker.message(CHANNEL, viewer(1), subscriber=False)
    tracker.join(CHANNEL, "user2")
    tracker.learn(CHANNEL, {"1002": "user2"})
    assert sorted(v.login for v in earning.present(CHANNEL)) == ["user1", "user2"]
