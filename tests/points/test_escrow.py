"""Escrow on a real SQLite file: stakes leave balances into rounds, one transaction settles
a round, and the audit notices any round that does not hold exactly its stakes."""

from __future__ import annotations

from pathlib import Path

import pytest

from loyaltybot.clock import FakeClock, to_ms
from loyaltybot.db import Store, Tx, open_store
from loyaltybot.points import escrow
from loyaltybot.points.amounts import MAX_POINTS
from loyaltybot.points.bank import Bank
from loyaltybot.points.errors import (
    InsufficientPoints,
    RoundNotOpen,
    StakeOptionMismatch,
    UnknownRound,
)
from loyaltybot.points.escrow import RoundState
from loyaltybot.points.ledger import EntryType
from tests.conftest import CHANNEL, viewer


async def funded(bank: Bank, *amounts: int) -> None:
    for n, amount in enumerate(amounts):
        await bank.credit(CHANNEL, viewer(n), amount, kind=EntryType.ADD)


async def balance(bank: Bank, n: int) -> int:
    record = await bank.viewer(CHANNEL, viewer(n).login)
    assert record is not None
    return record.points


async def test_a_stake_leaves_the_balance_and_the_round_holds_it(bank: Bank) -> None:
    """Stakes are ledger debits naming the round; the round holds their sum; audit passes."""
    await funded(bank, 1000, 500)
    opened = await bank.open_round(CHANNEL, "giveaway")
    first = await bank.stake(opened.id, viewer(0), 300, kind=EntryType.GIVEAWAY_TICKET, units=3)
    again = await bank.stake(opened.id, viewer(0), 100, kind=EntryType.GIVEAWAY_TICKET, units=1)
    await bank.stake(opened.id, viewer(1), 500, kind=EntryType.GIVEAWAY_TICKET, units=5)
    assert first.new_entrant and not again.new_entrant
    assert (again.stake.amount, again.stake.units, again.stake.seq) == (400, 4, 1)
    assert await balance(bank, 0) == 600 and await balance(bank, 1) == 0
    held = await bank.round(opened.id)
    assert held is not None
    assert (held.held, held.staked, held.units, held.entrants) == (900, 900, 9, 2)
    rows, _ = await bank.ledger_page(CHANNEL)
    tickets = [r for r in rows if r.type == "giveaway_ticket"]
    assert sorted(r.amount for r in tickets) == [-500, -300, -100]
    assert await bank.audit() == []
    assert await bank.escrow_totals(CHANNEL) == (1, 900)


async def test_refused_stakes_change_nothing(bank: Bank) -> None:
    """Too few points, another option, a settled or unknown round: refused, nothing moves."""
    await funded(bank, 100)
    opened = await bank.open_round(CHANNEL, "contest")
    with pytest.raises(InsufficientPoints):
        await bank.stake(opened.id, viewer(0), 101, kind=EntryType.CONTEST_STAKE, option=1)
    await bank.stake(opened.id, viewer(0), 10, kind=EntryType.CONTEST_STAKE, option=1)
    with pytest.raises(StakeOptionMismatch) as mismatch:
        await bank.stake(opened.id, viewer(0), 10, kind=EntryType.CONTEST_STAKE, option=2)
    assert (mismatch.value.held, mismatch.value.requested) == (1, 2)
    with pytest.raises(UnknownRound):
        await bank.stake(opened.id + 99, viewer(0), 10, kind=EntryType.CONTEST_STAKE)
    await bank.refund_round(opened.id, kind=EntryType.CONTEST_REFUND)
    with pytest.raises(RoundNotOpen):
        await bank.stake(opened.id, viewer(0), 10, kind=EntryType.CONTEST_STAKE, option=1)
    assert await balance(bank, 0) == 100
    assert await bank.audit() == []


async def test_refund_gives_every_stake_back_exactly_once(bank: Bank) -> None:
    """Cancel: every stake back to the point; a second refund or a payout is refused."""
    await funded(bank, 1000, 1000, 1000)
    opened = await bank.open_round(CHANNEL, "giveaway")
    for n, amount in enumerate((10, 250, 999)):
        await bank.stake(opened.id, viewer(n), amount, kind=EntryType.GIVEAWAY_TICKET, units=1)
    done = await bank.refund_round(opened.id, kind=EntryType.GIVEAWAY_REFUND, reason="canceled")
    assert done.round.state is RoundState.REFUNDED and done.round.held == 0
    assert done.paid == 1259 and done.lost == ()
    assert [await balance(bank, n) for n in range(3)] == [1000, 1000, 1000]
    with pytest.raises(RoundNotOpen):
        await bank.refund_round(opened.id, kind=EntryType.GIVEAWAY_REFUND)
    with pytest.raises(RoundNotOpen):
        await bank.settle_round(opened.id, kind=EntryType.CONTEST_PAYOUT)
    assert await bank.audit() == []


async def test_settle_pays_stakers_only_and_may_pay_nothing(bank: Bank) -> None:
    """Payouts go to stakers (more or less than staked); spent tickets pay nobody."""
    await funded(bank, 100, 100)
    heist = await bank.open_round(CHANNEL, "heist")
    await bank.stake(heist.id, viewer(0), 100, kind=EntryType.HEIST_STAKE)
    await bank.stake(heist.id, viewer(1), 100, kind=EntryType.HEIST_STAKE)
    with pytest.raises(ValueError, match="without a stake"):
        await bank.settle_round(heist.id, {viewer(5).user_id: 1}, kind=EntryType.HEIST_PAYOUT)
    paid = await bank.settle_round(heist.id, {viewer(0).user_id: 170, viewer(1).user_id: 0},
                                   kind=EntryType.HEIST_PAYOUT)
    assert paid.paid == 170 and paid.round.returned == 170 and paid.round.staked == 200
    assert (await balance(bank, 0), await balance(bank, 1)) == (170, 0)
    tickets = await bank.open_round(CHANNEL, "giveaway")
    await bank.stake(tickets.id, viewer(0), 70, kind=EntryType.GIVEAWAY_TICKET, units=7)
    spent = await bank.settle_round(tickets.id, kind=EntryType.GIVEAWAY_REFUND)
    assert spent.paid == 0 and spent.round.held == 0
    assert await balance(bank, 0) == 100
    assert await bank.audit() == []


async def test_a_refund_to_a_full_balance_is_clamped_and_recorded(bank: Bank) -> None:
    """A staker who reached the maximum meanwhile gets what fits; the rest is reported."""
    await funded(bank, 1000)
    opened = await bank.open_round(CHANNEL, "contest")
    await bank.stake(opened.id, viewer(0), 1000, kind=EntryType.CONTEST_STAKE)
    await bank.credit(CHANNEL, viewer(0), MAX_POINTS - 10, kind=EntryType.ADD)
    done = await bank.refund_round(opened.id, kind=EntryType.CONTEST_REFUND)
    assert done.paid == 10 and done.lost == ((viewer(0).user_id, 990),)
    assert await balance(bank, 0) == MAX_POINTS
    assert await bank.audit() == []


async def test_free_entries_hold_units_without_points(bank: Bank) -> None:
    """A free ticket is a stake of 0 points and 1 unit: no ledger row, the viewer a row."""
    opened = await bank.open_round(CHANNEL, "giveaway")
    accepted = await bank.stake(opened.id, viewer(3), 0, kind=EntryType.GIVEAWAY_TICKET, units=1)
    assert accepted.change is None and accepted.round.units == 1 and accepted.round.held == 0
    assert await balance(bank, 3) == 0
    with pytest.raises(ValueError, match="never nothing"):
        await bank.stake(opened.id, viewer(3), 0, kind=EntryType.GIVEAWAY_TICKET)
    assert await bank.audit() == []


async def test_due_lists_rounds_whose_time_ran_out_also_after_a_restart(
    db_path: Path, clock: FakeClock
) -> None:
    """A deadline that passes while the store is closed is listed at the next start."""
    store = await open_store(db_path, clock=clock)
    bank = Bank(store)
    await bank.ensure_channels([CHANNEL])
    await funded(bank, 50)
    now = to_ms(clock.now())
    soon = await bank.open_round(CHANNEL, "duel", deadline_ms=now + 60_000)
    later = await bank.open_round(CHANNEL, "heist", deadline_ms=now + 600_000)
    await bank.open_round(CHANNEL, "giveaway")  # no deadline: never due
    await bank.stake(soon.id, viewer(0), 50, kind=EntryType.DUEL_STAKE)
    assert await bank.due_rounds(now) == []
    await store.close()
    clock.advance(120)  # the daemon was down
    store = await open_store(db_path, clock=clock)
    bank = Bank(store)
    await bank.load_channels()
    due = await bank.due_rounds(to_ms(clock.now()))
    assert [r.id for r in due] == [soon.id]
    assert [r.id for r in await bank.due_rounds(to_ms(clock.now()), kind="heist")] == []
    assert (await bank.escrow_totals()) == (3, 50)
    await bank.refund_round(soon.id, kind=EntryType.DUEL_REFUND)
    assert await balance(bank, 0) == 50
    moved = await bank.set_round_deadline(later.id, None)
    assert moved.deadline_ms is None
    assert await bank.audit() == []
    await store.close()


# ---- the audit notices what does not add up ------------------------------------------


async def _tamper(store: Store, sql: str, *args: object) -> None:
    def run(tx: Tx) -> None:
        tx.conn.execute(sql, args)

    await store.write(run)


@pytest.mark.parametrize(
    ("sql", "found"),
    [
        ("UPDATE escrow_rounds SET held = held + 5, staked = staked + 5", "ledger took"),
        ("UPDATE escrow_rounds SET held = held - 5", "holds"),
        ("UPDATE escrow_stakes SET amount = amount + 1 WHERE seq = 1", "stakes add up"),
        ("DELETE FROM escrow_stakes WHERE seq = 2", "its stakes"),
        ("UPDATE escrow_stakes SET units = units + 1 WHERE seq = 1", "units"),
        ("UPDATE ledger SET round_id = NULL WHERE type = 'giveaway_ticket' AND amount = -30",
         "ledger took"),
    ],
)
async def test_audit_finds_a_round_that_does_not_hold_its_stakes(
    bank: Bank, store: Store, sql: str, found: str
) -> None:
    """Any change behind the escrow's back is a discrepancy naming the round."""
    await funded(bank, 100, 100)
    opened = await bank.open_round(CHANNEL, "giveaway")
    await bank.stake(opened.id, viewer(0), 30, kind=EntryType.GIVEAWAY_TICKET, units=3)
    await bank.stake(opened.id, viewer(1), 20, kind=EntryType.GIVEAWAY_TICKET, units=2)
    assert await bank.audit() == []
    await _tamper(store, sql)
    problems = [str(p) for p in await bank.audit()]
    assert problems and any(found in p for p in problems), problems
    assert any(f"round {opened.id}" in p for p in problems)


async def test_audit_finds_a_settled_round_still_holding_points(bank: Bank, store: Store) -> None:
    """A settled round with points in it (or credits it never recorded) is reported."""
    await funded(bank, 100)
    opened = await bank.open_round(CHANNEL, "contest")
    await bank.stake(opened.id, viewer(0), 40, kind=EntryType.CONTEST_STAKE)
    await bank.settle_round(opened.id, {viewer(0).user_id: 40}, kind=EntryType.CONTEST_PAYOUT)
    assert await bank.audit() == []
    await _tamper(store, "UPDATE escrow_rounds SET returned = 39")
    assert any("ledger paid 40" in str(p) for p in await bank.audit())


async def test_a_stake_is_atomic_with_the_callers_transaction(bank: Bank, store: Store) -> None:
    """A feature's own failure after a stake, in the same transaction, undoes the stake."""
    await funded(bank, 100)
    opened = await bank.open_round(CHANNEL, "duel")

    def run(tx: Tx) -> None:
        escrow.stake(tx, opened.id, viewer(0), 60, kind=EntryType.DUEL_STAKE)
        raise RuntimeError("the duel could not be recorded")

    with pytest.raises(RuntimeError):
        await store.write(run)
    assert await balance(bank, 0) == 100
    found = await bank.round(opened.id)
    assert found is not None and found.held == 0 and await bank.stakes(opened.id) == []
    assert await bank.audit() == []
