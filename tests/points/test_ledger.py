"""The ledger: every balance change exact, recorded, and proven by the audit."""

from __future__ import annotations

import sqlite3

import pytest

from loyaltybot.db import Store, Tx
from loyaltybot.points import ledger
from loyaltybot.points.amounts import MAX_POINTS
from loyaltybot.points.bank import Bank
from loyaltybot.points.errors import (
    AlreadyApplied,
    BalanceTooHigh,
    InsufficientPoints,
    InvalidAmount,
    SelfTransfer,
    UnknownViewer,
)
from loyaltybot.points.ledger import EarningRates, EntryType, Presence, TickPlan
from loyaltybot.points.viewers import Viewer
from tests.conftest import CHANNEL, viewer

ADD = EntryType.ADD


async def rows(store: Store, sql: str, *args: object) -> list[tuple[object, ...]]:
    return await store.read(lambda c: c.execute(sql, args).fetchall())


async def test_credit_writes_balance_and_ledger_row(bank: Bank, store: Store) -> None:
    """A credit creates the viewer, raises the balance and records who, what, why and when."""
    change = await bank.credit(CHANNEL, viewer(1), 100, kind=ADD, reason="welcome", actor="mod1")
    assert (change.applied, change.balance, change.clamped) == (100, 100, False)
    [row] = await rows(
        store,
        "SELECT user_id, amount, balance_after, type, reason, actor,"
        " related_user_id, requested FROM ledger",
    )
    assert row == ("1001", 100, 100, "add", "welcome", "mod1", None, None)
    assert await bank.audit() == []


async def test_debit_refuses_overdraft_and_changes_nothing(bank: Bank, store: Store) -> None:
    """Taking more than the balance fails with the balance in the error; nothing is written."""
    await bank.credit(CHANNEL, viewer(1), 50, kind=ADD)
    with pytest.raises(InsufficientPoints) as caught:
        await bank.debit(CHANNEL, viewer(1), 51, kind=EntryType.REMOVE)
    assert (caught.value.balance, caught.value.requested) == (50, 51)
    assert len(await rows(store, "SELECT * FROM ledger")) == 1
    change = await bank.debit(CHANNEL, viewer(1), 50, kind=EntryType.REMOVE)
    assert change.balance == 0 and change.applied == -50


@pytest.mark.parametrize("amount", [0, -1, MAX_POINTS + 1])
async def test_amounts_out_of_range_are_refused(bank: Bank, amount: int) -> None:
    """Credits and debits take 1..2^53-1 only."""
    with pytest.raises(InvalidAmount):
        await bank.credit(CHANNEL, viewer(1), amount, kind=ADD)
    with pytest.raises(InvalidAmount):
        await bank.debit(CHANNEL, viewer(1), amount, kind=EntryType.REMOVE)


async def test_credit_clamps_at_maximum_and_records_what_applied(bank: Bank, store: Store) -> None:
    """Near 2^53-1 a credit applies what fits and the ledger row says what was asked."""
    await bank.set_balance(CHANNEL, viewer(1), MAX_POINTS - 5)
    change = await bank.credit(CHANNEL, viewer(1), 100, kind=ADD)
    assert (change.requested, change.applied, change.balance) == (100, 5, MAX_POINTS)
    assert change.clamped
    [(amount, requested)] = await rows(
        store, "SELECT amount, requested FROM ledger WHERE type = 'add'"
    )
    assert (amount, requested) == (5, 100)
    with pytest.raises(BalanceTooHigh):
        await bank.credit(CHANNEL, viewer(1), 1, kind=ADD)
    assert await bank.audit() == []


async def test_set_balance_records_the_difference(bank: Bank, store: Store) -> None:
    """Setting a balance writes the delta; setting the same value writes nothing."""
    await bank.credit(CHANNEL, viewer(1), 70, kind=ADD)
    change = await bank.set_balance(CHANNEL, viewer(1), 20, reason="reset")
    assert (change.applied, change.balance) == (-50, 20)
    same = await bank.set_balance(CHANNEL, viewer(1), 20)
    assert same.entry_id is None and same.applied == 0
    zero = await bank.set_balance(CHANNEL, viewer(1), 0)
    assert zero.balance == 0
    assert [r[0] for r in await rows(store, "SELECT amount FROM ledger ORDER BY id")] == [
        70,
        -50,
        -20,
    ]
    assert await bank.audit() == []


async def test_give_moves_points_atomically(bank: Bank, store: Store) -> None:
    """!give writes both rows, each naming the other side, and conserves the total."""
    await bank.credit(CHANNEL, viewer(1), 100, kind=ADD)
    await bank.credit(CHANNEL, viewer(2), 5, kind=ADD)
    transfer = await bank.give(CHANNEL, viewer(1), "user2", 30)
    assert (transfer.sender.balance, transfer.receiver.balance, transfer.amount) == (70, 35, 30)
    got = await rows(
        store,
        "SELECT user_id, amount, related_user_id, type FROM ledger"
        " WHERE type = 'transfer' ORDER BY id",
    )
    assert got == [("1001", -30, "1002", "transfer"), ("1002", 30, "1001", "transfer")]
    assert await bank.audit() == []


async def test_give_refusals_change_nothing(bank: Bank, store: Store) -> None:
    """Self-gifts, unknown receivers and overdrafts are refused without a trace in the ledger."""
    await bank.credit(CHANNEL, viewer(1), 10, kind=ADD)
    await bank.credit(CHANNEL, viewer(2), 1, kind=ADD)
    with pytest.raises(SelfTransfer):
        await bank.give(CHANNEL, viewer(1), "user1", 5)
    with pytest.raises(UnknownViewer) as unknown:
        await bank.give(CHANNEL, viewer(1), "nobody", 5)
    assert unknown.value.channel == CHANNEL
    with pytest.raises(InsufficientPoints):
        await bank.give(CHANNEL, viewer(1), "user2", 11)
    assert len(await rows(store, "SELECT * FROM ledger")) == 2


async def test_give_matches_exact_login_only(bank: Bank) -> None:
    """`!give bob 5` never pays `bobby`: logins match exactly."""
    await bank.credit(CHANNEL, Viewer("1", "bobby", "Bobby"), 1, kind=ADD)
    await bank.credit(CHANNEL, viewer(1), 10, kind=ADD)
    with pytest.raises(UnknownViewer):
        await bank.give(CHANNEL, viewer(1), "bob", 5)
    with pytest.raises(UnknownViewer):
        await bank.give(CHANNEL, viewer(1), "bobb", 5)
    bobby = await bank.viewer(CHANNEL, "bobby")
    assert bobby is not None and bobby.points == 1


async def test_transfer_into_full_balance_moves_only_what_fits(bank: Bank) -> None:
    """A receiver near the maximum takes what fits; the sender loses exactly that."""
    await bank.set_balance(CHANNEL, viewer(2), MAX_POINTS - 3)
    await bank.credit(CHANNEL, viewer(1), 10, kind=ADD)
    transfer = await bank.give(CHANNEL, viewer(1), "user2", 10)
    assert (transfer.amount, transfer.sender.balance, transfer.receiver.balance) == (
        3,
        7,
        MAX_POINTS,
    )
    assert transfer.sender.clamped and transfer.sender.requested == -10
    assert await bank.audit() == []


async def test_refs_make_operations_idempotent(bank: Bank) -> None:
    """An operation with a used idempotency key is refused and changes nothing."""
    await bank.credit(CHANNEL, viewer(1), 10, kind=EntryType.REWARD, ref="redemption:abc")
    with pytest.raises(AlreadyApplied):
        await bank.credit(CHANNEL, viewer(1), 10, kind=EntryType.REWARD, ref="redemption:abc")
    record = await bank.viewer(CHANNEL, "user1")
    assert record is not None and record.points == 10
    # The same key in another channel is another operation.
    await bank.credit("bob_tv", viewer(1), 10, kind=EntryType.REWARD, ref="redemption:abc")


async def test_renamed_viewer_keeps_points_and_history(bank: Bank, store: Store) -> None:
    """Viewers are keyed by user id: a rename keeps the balance and files the old login."""
    await bank.credit(CHANNEL, Viewer("42", "oldname", "OldName"), 10, kind=ADD)
    await bank.credit(CHANNEL, Viewer("42", "newname", "NewName"), 5, kind=ADD)
    assert await bank.viewer(CHANNEL, "oldname") is None
    renamed = await bank.viewer(CHANNEL, "newname")
    assert renamed is not None and renamed.points == 15
    assert await rows(store, "SELECT user_id, login FROM login_history") == [("42", "oldname")]


async def test_failed_write_rolls_back_everything(bank: Bank, store: Store) -> None:
    """An error half-way through a write function undoes the whole transaction."""
    channel_id = bank.channel_id(CHANNEL)

    def half(tx: Tx) -> None:
        ledger.credit(tx, channel_id, viewer(1), 10, kind=ADD)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await store.write(half)
    assert await rows(store, "SELECT * FROM ledger") == []
    assert await bank.viewer(CHANNEL, "user1") is None


async def test_audit_finds_tampering(bank: Bank, db_path: object) -> None:
    """The audit fails when a balance no longer equals its history (it can fail)."""
    await bank.credit(CHANNEL, viewer(1), 10, kind=ADD)
    await bank.credit(CHANNEL, viewer(2), 10, kind=ADD)
    conn = sqlite3.connect(str(db_path))
    conn.execute("UPDATE viewers SET points = points + 1 WHERE user_id = '1001'")
    conn.execute("UPDATE ledger SET amount = 11 WHERE user_id = '1002'")
    conn.execute(
        "INSERT INTO ledger (channel_id, user_id, amount, balance_after, type,"
        " created_at) SELECT channel_id, user_id, 3, 3, 'transfer', 0 FROM viewers"
        " WHERE user_id = '1002'"
    )
    conn.commit()
    conn.close()
    found = [str(d) for d in await bank.audit()]
    assert any("user1 (1001): balance 11 != earned 0 + ledger 10" in f for f in found)
    assert any("user2 (1002)" in f for f in found)
    assert any("transfers do not sum to zero" in f for f in found)


# ---- earning ticks ---------------------------------------------------------------------

RATES = EarningRates(points=10, subscriber_points=15, active_bonus=2, min_watch_seconds=0)


def plan(
    bank: Bank, seq: int, present: list[Presence], rates: EarningRates = RATES, watch: int = 300
) -> TickPlan:
    return TickPlan(
        bank.channel_id(CHANNEL),
        seq,
        seq * 300_000,
        watch,
        rates,
        present,
        bank.known_logins(CHANNEL),
    )


def presence(n: int, *, sub: bool = False, messages: int = 0) -> Presence:
    v = viewer(n)
    return Presence(v.user_id, v.login, v.display_name, sub, messages)


async def balances(bank: Bank, store: Store) -> dict[str, tuple[int, int, int, int]]:
    got = await rows(
        store,
        "SELECT login, points, earned_total, watch_seconds, messages"
        " FROM viewers WHERE channel_id = ?",
        bank.channel_id(CHANNEL),
    )
    return {str(r[0]): (int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in got}  # type: ignore[call-overload]


async def test_tick_credits_exactly_per_spec(bank: Bank, store: Store) -> None:
    """Regular, subscriber and active viewers earn exactly their rate; watch time grows."""
    await bank.load_known_logins(CHANNEL)
    present = [
        presence(1),
        presence(2, sub=True),
        presence(3, messages=4),
        presence(4, sub=True, messages=1),
    ]
    first = await bank.credit_tick(plan(bank, 1, present))
    assert (first.present, first.points) == (4, 10 + 15 + 12 + 17)
    second = await bank.credit_tick(
        plan(bank, 2, [presence(1), presence(2, sub=True), presence(3), presence(4, sub=True)])
    )
    assert second.points == 10 + 15 + 10 + 15
    assert await balances(bank, store) == {
        "user1": (20, 20, 600, 0),
        "user2": (30, 30, 600, 0),
        "user3": (22, 22, 600, 4),
        "user4": (32, 32, 600, 1),
    }
    assert await bank.audit() == []


async def test_tick_is_credited_once(bank: Bank, store: Store) -> None:
    """A tick id already credited is refused whole; nothing changes."""
    await bank.credit_tick(plan(bank, 7, [presence(1)]))
    with pytest.raises(AlreadyApplied):
        await bank.credit_tick(plan(bank, 7, [presence(1), presence(2)]))
    assert await balances(bank, store) == {"user1": (10, 10, 300, 0)}


async def test_tick_respects_min_watch_and_earning_switch(bank: Bank, store: Store) -> None:
    """No points before the minimum watch time or with earning switched off; watch time counts."""
    rates = EarningRates(10, 15, 2, min_watch_seconds=600)
    await bank.credit_tick(plan(bank, 1, [presence(1), presence(2)], rates))
    await store.write(
        lambda tx: tx.conn.execute("UPDATE viewers SET earning_enabled = 0 WHERE user_id = '1002'")
    )
    await bank.credit_tick(plan(bank, 2, [presence(1), presence(2)], rates))
    await bank.credit_tick(plan(bank, 3, [presence(1), presence(2)], rates))
    got = await balances(bank, store)
    assert got["user1"] == (20, 20, 900, 0)  # earned at 600 s and 900 s, not at 300 s
    assert got["user2"] == (0, 0, 900, 0)
    assert await bank.audit() == []


async def test_tick_with_a_wrong_hint_still_credits_everyone(bank: Bank, store: Store) -> None:
    """A viewer the hint wrongly calls known gets their row created and credited."""
    bank.known_logins(CHANNEL)["1009"] = "user9"  # claims user9 is stored; it is not
    await bank.credit_tick(plan(bank, 1, [presence(9), presence(1)]))
    assert (await balances(bank, store))["user9"] == (10, 10, 300, 0)
    assert await bank.audit() == []


async def test_tick_clamps_at_maximum(bank: Bank, store: Store) -> None:
    """A tick never pushes a balance past 2^53-1 and records only what it applied."""
    await bank.set_balance(CHANNEL, viewer(1), MAX_POINTS - 4)
    await bank.load_known_logins(CHANNEL)
    applied = await bank.credit_tick(plan(bank, 1, [presence(1), presence(2)]))
    assert applied.points == 4 + 10
    assert (await balances(bank, store))["user1"][0] == MAX_POINTS
    assert await bank.audit() == []


async def test_tick_follows_renames(bank: Bank, store: Store) -> None:
    """A known viewer seen under a new login gets the new login, and keeps the old as history."""
    await bank.credit_tick(plan(bank, 1, [presence(1)]))
    await bank.load_known_logins(CHANNEL)
    renamed = Presence("1001", "newlogin", "NewLogin")
    await bank.credit_tick(plan(bank, 2, [renamed]))
    assert (await balances(bank, store))["newlogin"] == (20, 20, 600, 0)
    assert await rows(store, "SELECT login FROM login_history") == [("user1",)]


async def test_standings_follow_every_change(bank: Bank) -> None:
    """Ranks and the top list reflect transfers and ticks as soon as they commit."""
    for n, points in [(1, 50), (2, 30), (3, 30), (4, 10)]:
        await bank.credit(CHANNEL, viewer(n), points, kind=ADD)
    assert [await bank.rank(CHANNEL, viewer(n).user_id) for n in (1, 2, 3, 4)] == [1, 2, 2, 4]
    await bank.give(CHANNEL, viewer(1), "user4", 45)
    assert await bank.rank(CHANNEL, "1004") == 1
    assert await bank.rank(CHANNEL, "1001") == 4
    await bank.credit_tick(plan(bank, 1, [presence(1, sub=True)]))  # user1: 5 + 15 = 20
    top = await bank.top(CHANNEL, 5)
    assert [(s.rank, s.login, s.points) for s in top] == [
        (1, "user4", 55),
        (2, "user2", 30),
        (2, "user3", 30),
        (4, "user1", 20),
    ]


async def test_standings_leave_out_excluded_and_empty(bank: Bank) -> None:
    """Ignored users, the broadcaster and the bot never appear; zero balances are unranked."""
    bank.set_excluded(CHANNEL, {"user2", "alice"})
    await bank.credit(CHANNEL, viewer(1), 5, kind=ADD)
    await bank.credit(CHANNEL, viewer(2), 500, kind=ADD)
    await bank.credit(CHANNEL, viewer(3), 1, kind=ADD)
    await bank.debit(CHANNEL, viewer(3), 1, kind=EntryType.REMOVE)
    assert [s.login for s in await bank.top(CHANNEL, 10)] == ["user1"]
    assert await bank.rank(CHANNEL, "1002") is None
    assert await bank.rank(CHANNEL, "1003") is None
