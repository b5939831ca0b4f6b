"""The in-memory ranks follow earning ticks exactly, without rebuilding (issue 16)."""

from __future__ import annotations

import sqlite3

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loyaltybot.clock import FakeClock
from loyaltybot.points.amounts import MAX_POINTS
from loyaltybot.points.bank import Bank
from loyaltybot.points.ledger import EarningRates, EntryType, Presence, TickPlan
from loyaltybot.points.standings import Standings
from loyaltybot.points.viewers import Viewer

CHANNEL = "alice"


def presence(n: int, *, sub: bool = False, messages: int = 0) -> Presence:
    return Presence(str(7000 + n), f"viewer{n}", f"Viewer{n}", sub, messages)


async def truth(bank: Bank) -> dict[str, int]:
    """Every ranked viewer's rank, computed from the database alone."""
    channel_id = bank.channel_id(CHANNEL)

    def read(conn: sqlite3.Connection) -> list[tuple[str, int]]:
        return conn.execute(
            "SELECT user_id, points FROM viewers WHERE channel_id = ? AND points > 0",
            (channel_id,),
        ).fetchall()

    rows = await bank.store.read(read)
    return {u: 1 + sum(1 for _, q in rows if q > p) for u, p in rows}


async def check(bank: Bank, kept: Standings) -> None:
    expected = await truth(bank)
    standings = bank._standings[bank.channel_id(CHANNEL)]
    assert standings is kept, "the ranks were rebuilt instead of followed"
    assert len(standings) == len(expected)
    for user_id, rank in expected.items():
        assert standings.rank(user_id) == rank, user_id
    top = await bank.top(CHANNEL, 10)
    assert [s.rank for s in top] == sorted(expected.values())[:10]


async def tick(bank: Bank, seq: int, present: list[Presence], rates: EarningRates,
               watch: int = 60) -> None:
    known = await bank.load_known_logins(CHANNEL)
    plan = TickPlan(bank.channel_id(CHANNEL), seq, seq * 1000, watch, rates, present, known)
    await bank.credit_tick(plan)


async def test_ticks_with_new_known_chatting_and_waiting_viewers(
    bank: Bank, clock: FakeClock
) -> None:
    """New and known viewers, subscribers, chatters, viewers short of the minimum watch
    time, and one clamped at the maximum: every rank right after each tick."""
    await bank.ensure_channels([CHANNEL])
    await bank.credit(CHANNEL, Viewer("7000", "viewer0", "Viewer0"), 5, kind=EntryType.ADD)
    await bank.rank(CHANNEL, "7000")  # the daemon now keeps the ranks
    kept = bank._standings[bank.channel_id(CHANNEL)]
    plain = EarningRates(points=10, subscriber_points=15, active_bonus=2, min_watch_seconds=0)
    await tick(bank, 1, [presence(n, sub=n % 3 == 0) for n in range(40)], plain)
    await check(bank, kept)
    waiting = EarningRates(points=10, subscriber_points=15, active_bonus=2, min_watch_seconds=90)
    newcomers = [presence(n) for n in range(40, 60)]
    await tick(bank, 2, [presence(n, messages=n % 2) for n in range(30)] + newcomers, waiting)
    await check(bank, kept)  # the newcomers have 60 s of the 90 they need: not credited
    await tick(bank, 3, newcomers, waiting)
    await check(bank, kept)
    await bank.set_balance(CHANNEL, Viewer("7001", "viewer1", "Viewer1"), MAX_POINTS - 5)
    await tick(bank, 4, [presence(n) for n in range(10)], plain)  # viewer1 is clamped
    await check(bank, kept)
    assert kept.points("7001") == MAX_POINTS
    assert await bank.audit() == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 60), st.integers(0, 1000)), max_size=60),
       st.lists(st.integers(0, 80), max_size=60), st.integers(0, 50))
def test_a_vectorised_credit_equals_one_update_each(
    balances: list[tuple[int, int]], credited: list[int], amount: int
) -> None:
    """``Standings.add`` gives the same ranks as adding to each viewer one at a time."""
    one_by_one, at_once = Standings(), Standings()
    truth_points: dict[str, int] = {}
    for n, points in balances:
        for standings in (one_by_one, at_once):
            standings.update(str(n), f"u{n}", points)
        truth_points[str(n)] = points
    ids = sorted({str(n) for n in credited})
    at_once.add(np.array([int(i) for i in ids], dtype=np.int64), amount)
    for user_id in ids:
        truth_points[user_id] = truth_points.get(user_id, 0) + amount
        one_by_one.update(user_id, "x", truth_points[user_id])
    for user_id in truth_points:
        assert at_once.rank(user_id) == one_by_one.rank(user_id)
    assert [s.points for s in at_once.top(100)] == [s.points for s in one_by_one.top(100)]


def test_a_location_found_before_an_insert_is_not_used_after_it() -> None:
    """``locate`` runs on the database's thread; if a viewer was ranked in between, the
    positions are stale and the addition finds them again."""
    standings = Standings([("10", "a", 5), ("30", "c", 7)])
    keys = np.array([10, 30], dtype=np.int64)
    located = standings.locate(keys)
    standings.update("20", "b", 6)  # inserted between the two: positions moved
    standings.add(keys, 10, presorted=True, located=located)
    assert [standings.points(u) for u in ("10", "20", "30")] == [15, 6, 17]
    fresh = standings.locate(keys)
    standings.add(keys, 1, presorted=True, located=fresh)  # still good: used as found
    assert [standings.points(u) for u in ("10", "20", "30")] == [16, 6, 18]
