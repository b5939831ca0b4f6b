"""Contests on a real SQLite file: bets are escrow stakes on an option, the settlement pays
the whole pool back to the point, a cancel refunds it, and a burst commits in a few
transactions. Every test ends with the audit."""

from __future__ import annotations

import asyncio

import pytest

from loyaltybot.clock import FakeClock
from loyaltybot.db import Store
from loyaltybot.features.contests.rules import (
    BadLimits,
    BetTooLarge,
    BetTooSmall,
    CannotAfford,
    ContestClosed,
    NoContest,
    NoSuchOption,
    NotEligible,
    WrongOption,
    WrongState,
    parse_contest,
)
from loyaltybot.features.contests.service import Contests, Terms
from loyaltybot.points.bank import Bank
from loyaltybot.points.ledger import EntryType
from tests.conftest import CHANNEL, viewer

TERMS = Terms(min_bet=5, max_bet=1000, close_after_seconds=0)
SPEC = parse_contest("Who wins? | Red | Blue | Draw")


@pytest.fixture
def contests(bank: Bank, store: Store, clock: FakeClock) -> Contests:
    return Contests(bank, store, clock)


async def fund(bank: Bank, count: int, amount: int = 1000) -> None:
    await bank.credit_each(CHANNEL, [viewer(n) for n in range(count)], amount, kind=EntryType.ADD)


async def balance(bank: Bank, n: int) -> int:
    record = await bank.viewer(CHANNEL, viewer(n).login)
    return 0 if record is None else record.points


async def test_settlement_with_remainders_to_the_point(bank: Bank, contests: Contests) -> None:
    """By hand: Red has 10, 20, 40 (W = 70), Blue 7 and Draw 3 (L = 10). Shares 100/70 = 1
    r30, 200/70 = 2 r60, 400/70 = 5 r50; the 2 points the floors leave go to r60 and r50:
    payouts 11, 23, 46 = 80, the whole pool. The losers keep what they did not bet."""
    await fund(bank, 5, 100)
    await contests.open(CHANNEL, SPEC, Terms(1, 1000, 0), actor="mod")
    for n, option, amount in ((0, 1, 10), (1, 1, 20), (2, 1, 40), (3, 2, 7), (4, 3, 3)):
        await contests.bet(CHANNEL, viewer(n), option, amount)
    running = await contests.running(CHANNEL)
    assert running is not None and running.pools == (70, 7, 3) and running.held == 80
    done = await contests.settle(CHANNEL, 1, actor="mod")
    assert (done.outcome, done.winners, done.paid, done.viewers, done.lost) == ("paid", 3, 80, 3, 0)
    assert [await balance(bank, n) for n in range(5)] == [101, 103, 106, 93, 97]
    c = done.contest
    assert (c.state, c.winner, c.winning_pool, c.losing_pool, c.extra_points, c.held) == (
        "settled", 1, 70, 10, 2, 0)
    assert [(p.login, p.paid) for p in done.top] == [("user2", 46), ("user1", 23), ("user0", 11)]
    rows, _ = await bank.ledger_page(CHANNEL)
    assert sorted(r.amount for r in rows if r.type == "contest_payout") == [11, 23, 46]
    assert await bank.audit() == []


async def test_ties_go_to_the_earliest_first_bet(bank: Bank, contests: Contests) -> None:
    """Three winners of 10 each share L = 5: 1 r20 each, 2 points left: the first two
    bettors (a top-up does not move a viewer's place) get 12, the third 11."""
    await fund(bank, 4, 100)
    await contests.open(CHANNEL, SPEC, TERMS, actor="mod")
    await contests.bet(CHANNEL, viewer(2), 1, 5)
    await contests.bet(CHANNEL, viewer(0), 1, 10)
    await contests.bet(CHANNEL, viewer(3), 2, 5)
    await contests.bet(CHANNEL, viewer(1), 1, 10)
    await contests.bet(CHANNEL, viewer(2), 1, 5)  # a top-up: still the first bettor
    done = await contests.settle(CHANNEL, 1, actor="mod")
    assert done.paid == 35
    assert [await balance(bank, n) for n in range(4)] == [102, 101, 102, 95]
    assert await bank.audit() == []


async def test_nobody_on_the_winner_and_cancel_refund_everything(
    bank: Bank, contests: Contests
) -> None:
    """No bet on the winning option: every bet back. Cancel: every bet back. Balances are
    what they were, and a new contest may open after each."""
    await fund(bank, 3, 100)
    await contests.open(CHANNEL, SPEC, TERMS, actor="mod")
    await contests.bet(CHANNEL, viewer(0), 1, 30)
    await contests.bet(CHANNEL, viewer(1), 2, 40)
    done = await contests.settle(CHANNEL, 3, actor="mod")
    assert (done.outcome, done.paid, done.viewers, done.contest.state) == (
        "refunded", 70, 2, "refunded")
    await contests.open(CHANNEL, SPEC, TERMS, actor="mod")
    await contests.bet(CHANNEL, viewer(2), 3, 50)
    await contests.close(CHANNEL, actor="mod")
    canceled = await contests.cancel(CHANNEL, actor="mod")
    assert (canceled.outcome, canceled.paid, canceled.contest.state) == ("canceled", 50, "canceled")
    assert [await balance(bank, n) for n in range(3)] == [100, 100, 100]
    rows, _ = await bank.ledger_page(CHANNEL)
    assert sorted(r.amount for r in rows if r.type == "contest_refund") == [30, 40, 50]
    assert await bank.audit() == []


async def test_refusals_change_nothing(bank: Bank, contests: Contests) -> None:
    """Every refused bet leaves balances, pools and the books as they were."""
    await fund(bank, 2, 100)
    with pytest.raises(NoContest):
        await contests.bet(CHANNEL, viewer(0), 1, 10)
    await contests.open(CHANNEL, SPEC, TERMS, actor="mod")
    with pytest.raises(WrongState):
        await contests.open(CHANNEL, SPEC, TERMS, actor="mod")
    await contests.bet(CHANNEL, viewer(0), 1, 10)
    for option, amount, error in ((4, 10, NoSuchOption), (0, 10, NoSuchOption),
                                  (2, 10, WrongOption), (1, 991, BetTooLarge)):
        with pytest.raises(error):
            await contests.bet(CHANNEL, viewer(0), option, amount)
    with pytest.raises(BetTooSmall):
        await contests.bet(CHANNEL, viewer(1), 1, 4)
    with pytest.raises(CannotAfford) as poor:
        await contests.bet(CHANNEL, viewer(1), 1, 101)
    assert (poor.value.amount, poor.value.balance) == (101, 100)
    bank.set_excluded(CHANNEL, {"user1"})
    with pytest.raises(NotEligible):
        await contests.bet(CHANNEL, viewer(1), 1, 10)
    bank.set_excluded(CHANNEL, set())
    with pytest.raises(NoSuchOption):
        await contests.settle(CHANNEL, 4, actor="mod")
    await contests.close(CHANNEL, actor="mod")
    with pytest.raises(WrongState):
        await contests.close(CHANNEL, actor="mod")
    with pytest.raises(ContestClosed):
        await contests.bet(CHANNEL, viewer(1), 1, 10)
    running = await contests.running(CHANNEL)
    assert running is not None and running.pools == (10, 0, 0) and running.bettors == 1
    assert (await balance(bank, 0), await balance(bank, 1)) == (90, 100)
    with pytest.raises(BadLimits):
        await contests.open(CHANNEL, SPEC, Terms(10, 5, 0), actor="mod")
    assert await bank.audit() == []


async def test_top_ups_add_up_to_the_maximum(bank: Bank, contests: Contests) -> None:
    """More bets on the same option add to it; the total is capped, the minimum is the
    first bet's only."""
    await fund(bank, 1, 5000)
    await contests.open(CHANNEL, SPEC, TERMS, actor="mod")
    first = await contests.bet(CHANNEL, viewer(0), 2, 600)
    more = await contests.bet(CHANNEL, viewer(0), 2, 1)
    assert (first.total, more.total, more.balance) == (600, 601, 4399)
    with pytest.raises(BetTooLarge) as too_much:
        await contests.bet(CHANNEL, viewer(0), 2, 400)
    assert too_much.value.left == 399
    last = await contests.bet(CHANNEL, viewer(0), 2, 399)
    assert (last.total, last.pool, last.bettors) == (1000, 1000, 1)
    assert await bank.audit() == []


async def test_the_closing_time_stops_bets_and_close_due_closes(
    bank: Bank, contests: Contests, clock: FakeClock
) -> None:
    """Past closes_at no bet is taken even before the timer runs; close_due closes it."""
    await fund(bank, 2, 100)
    opened = await contests.open(CHANNEL, SPEC, Terms(1, 100, 30), actor="mod")
    assert opened.closes_at == contests.now_ms() + 30_000
    await contests.bet(CHANNEL, viewer(0), 1, 10)
    assert await contests.close_due() == []
    clock.advance(30)
    with pytest.raises(ContestClosed):
        await contests.bet(CHANNEL, viewer(1), 1, 10)
    closed = await contests.close_due()
    assert [c.id for c in closed] == [opened.id] and closed[0].state == "closed"
    assert await contests.next_closing() is None
    done = await contests.settle(CHANNEL, 1, actor="mod")
    assert done.paid == 10 and await balance(bank, 0) == 100
    assert await bank.audit() == []


async def test_a_burst_commits_in_few_transactions(bank: Bank, contests: Contests) -> None:
    """600 bets at once: every one committed once, in a handful of transactions; the pools
    add up; settling pays exactly the pool."""
    await fund(bank, 600, 100)
    await contests.open(CHANNEL, SPEC, TERMS, actor="mod")
    placed = await asyncio.gather(
        *(contests.bet(CHANNEL, viewer(n), 1 + n % 3, 5 + n % 50) for n in range(600))
    )
    assert len(placed) == 600 and contests.stats.groups <= 6
    running = await contests.running(CHANNEL)
    assert running is not None
    assert running.pool == sum(5 + n % 50 for n in range(600)) == running.held
    assert running.bettors == 600
    done = await contests.settle(CHANNEL, 2, actor="mod")
    assert done.paid == running.pool and done.winners == 200
    assert await bank.audit() == []
