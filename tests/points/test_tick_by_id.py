"""A tick that credits known viewers by id (``TickPlan.listed``) writes exactly what the
same tick with a row object per viewer writes, on every path: subscribers, chatters
among the listed, minimum watch time, a clamp at the maximum, earning switched off, and
a hint that is wrong (a listed viewer with no row). Ranks follow it; the audit passes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loyaltybot.clock import FakeClock
from loyaltybot.db import open_store
from loyaltybot.points.amounts import MAX_POINTS
from loyaltybot.points.bank import Bank
from loyaltybot.points.ledger import EarningRates, EntryType, Presence, TickPlan
from loyaltybot.points.viewers import Viewer

CHANNEL = "alice"
ROWS = ("SELECT user_id, login, display_name, points, earned_total, watch_seconds, messages,"
        " subscriber FROM viewers ORDER BY user_id")


def presence(n: int, *, sub: bool = False, messages: int = 0) -> Presence:
    return Presence(str(5000 + n), f"viewer{n}", f"Viewer{n}", sub, messages)


async def run_ticks(
    path: Path, ticks: list[tuple[list[Presence], EarningRates]], *, by_id: bool,
    setup: bool = True,
) -> tuple[list[tuple[object, ...]], dict[str, int | None]]:
    store = await open_store(path, clock=FakeClock())
    bank = Bank(store)
    try:
        await bank.ensure_channels([CHANNEL])
        if setup:
            await bank.credit(CHANNEL, Viewer("5001", "viewer1", "Viewer1"), 5,
                              kind=EntryType.ADD)
            await bank.set_balance(CHANNEL, Viewer("5002", "viewer2", "Viewer2"), MAX_POINTS - 3)
            await bank.credit(CHANNEL, Viewer("5003", "viewer3", "Viewer3"), 1,
                              kind=EntryType.ADD)
            await store.write(lambda tx: tx.conn.execute(  # no command sets it yet
                "UPDATE viewers SET earning_enabled = 0 WHERE user_id = '5003'"))
        await bank.rank(CHANNEL, "5001")  # the daemon keeps the ranks: ticks report
        known = await bank.load_known_logins(CHANNEL)
        channel_id = bank.channel_id(CHANNEL)
        for seq, (present, rates) in enumerate(ticks, start=1):
            listed: list[int] = []
            rows = present
            if by_id:  # known under the same login and quiet: by id alone
                rows = [p for p in present if p.messages or known.get(p.user_id) != p.login]
                listed = sorted(int(p.user_id) for p in present if p not in rows)
            subscribers = {p.user_id for p in present if p.subscriber}
            plan = TickPlan(channel_id, seq, seq * 1000, 60, rates, rows, known,
                            listed=np.array(listed, dtype=np.int64), subscribers=subscribers)
            await bank.credit_tick(plan)
        assert await bank.audit() == []
        table = await store.read(lambda c: c.execute(ROWS).fetchall())
        ranks = {str(row[0]): await bank.rank(CHANNEL, str(row[0])) for row in table}
        return table, ranks
    finally:
        await store.close()


RATES = st.builds(
    EarningRates,
    points=st.integers(0, 20),
    subscriber_points=st.integers(0, 30),
    active_bonus=st.integers(0, 5),
    min_watch_seconds=st.sampled_from([0, 0, 90]),
)
TICK = st.tuples(
    st.lists(
        st.builds(presence, st.integers(0, 30), sub=st.booleans(),
                  messages=st.sampled_from([0, 0, 0, 2])),
        max_size=25,
        unique_by=lambda p: p.user_id,
    ),
    RATES,
)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(TICK, min_size=1, max_size=5))
async def test_by_id_writes_what_row_objects_write(
    tmp_path: Path, ticks: list[tuple[list[Presence], EarningRates]]
) -> None:
    case = tmp_path / str(len(list(tmp_path.iterdir())))
    case.mkdir()
    by_rows = await run_ticks(case / "rows.db", ticks, by_id=False)
    by_ids = await run_ticks(case / "ids.db", ticks, by_id=True)
    assert by_ids == by_rows
    assert {row[0]: row[3:6] for row in by_ids[0]} == model(ticks)


def model(ticks: list[tuple[list[Presence], EarningRates]]) -> dict[str, tuple[int, int, int]]:
    """user id -> (points, earned_total, watch_seconds), one viewer at a time (SPEC §4)."""
    rows = {"5001": [5, 0, 0], "5002": [MAX_POINTS - 3, 0, 0], "5003": [1, 0, 0]}
    for present, rates in ticks:
        for p in present:
            row = rows.setdefault(p.user_id, [0, 0, 0])
            amount = (rates.subscriber_points if p.subscriber else rates.points) + (
                rates.active_bonus if p.messages else 0)
            eligible = p.user_id != "5003" and row[2] + 60 >= rates.min_watch_seconds
            credit = min(amount * eligible, MAX_POINTS - row[0])
            row[0] += credit
            row[1] += credit
            row[2] += 60
    return {user_id: (r[0], r[1], r[2]) for user_id, r in rows.items()}


async def test_a_listed_viewer_the_database_lost_is_written_not_skipped(tmp_path: Path) -> None:
    """The hint says known; the row is gone (another process deleted it): still credited."""
    store = await open_store(tmp_path / "lost.db", clock=FakeClock())
    bank = Bank(store)
    try:
        await bank.ensure_channels([CHANNEL])
        await bank.credit(CHANNEL, Viewer("5001", "viewer1", "Viewer1"), 5, kind=EntryType.ADD)
        known = await bank.load_known_logins(CHANNEL)
        known["5009"] = "viewer9"  # known to the hint only
        rates = EarningRates(points=10, subscriber_points=15, active_bonus=0, min_watch_seconds=0)
        plan = TickPlan(bank.channel_id(CHANNEL), 1, 1000, 60, rates, [], known,
                        listed=np.array([5001, 5009], dtype=np.int64), subscribers={"5009"})
        applied = await bank.credit_tick(plan)
        assert applied.present == 2
        rows = await store.read(
            lambda c: c.execute("SELECT user_id, login, points FROM viewers ORDER BY 1").fetchall()
        )
        assert rows == [("5001", "viewer1", 15), ("5009", "viewer9", 15)]
        assert await bank.audit() == []
    finally:
        await store.close()


async def test_a_viewer_known_by_id_keeps_their_display_name(tmp_path: Path) -> None:
    """``!addpoints all`` names listed viewers without a display name: the stored stays."""
    store = await open_store(tmp_path / "names.db", clock=FakeClock())
    bank = Bank(store)
    try:
        await bank.ensure_channels([CHANNEL])
        await bank.credit(CHANNEL, Viewer("5001", "viewer1", "ViewerOne"), 5, kind=EntryType.ADD)
        await bank.credit_each(CHANNEL, [Viewer("5001", "viewer1", ""),
                                         Viewer("5002", "viewer2", "")], 3, kind=EntryType.ADD)
        rows = await store.read(lambda c: c.execute(
            "SELECT user_id, display_name, points FROM viewers ORDER BY 1").fetchall())
        assert rows == [("5001", "ViewerOne", 8), ("5002", "", 3)]
    finally:
        await store.close()
