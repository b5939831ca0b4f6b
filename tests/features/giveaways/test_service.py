"""Giveaways on a real SQLite file: tickets are escrow stakes, cancel refunds them, the draw
is recorded and verifies, and a burst of purchases commits in a few transactions."""

from __future__ import annotations

import asyncio

import pytest

from loyaltybot.clock import FakeClock
from loyaltybot.db import Store
from loyaltybot.features.giveaways import rules
from loyaltybot.features.giveaways.rules import (
    CannotAfford,
    GiveawayClosed,
    NoEntrants,
    NoGiveaway,
    NotEligible,
    NoTicketsLeft,
    TooManyTickets,
    WrongState,
)
from loyaltybot.features.giveaways.service import Giveaways, Terms
from loyaltybot.points.bank import Bank
from loyaltybot.points.ledger import EntryType
from tests.conftest import CHANNEL, viewer

PAID = Terms(ticket_cost=10, max_tickets=5, luck=150)
FREE = Terms(ticket_cost=0, max_tickets=5, luck=100)


@pytest.fixture
def giveaways(bank: Bank, store: Store, clock: FakeClock) -> Giveaways:
    return Giveaways(bank, store, clock)


async def fund(bank: Bank, count: int, amount: int = 100) -> None:
    await bank.credit_each(CHANNEL, [viewer(n) for n in range(count)], amount, kind=EntryType.ADD)


async def balance(bank: Bank, n: int) -> int:
    record = await bank.viewer(CHANNEL, viewer(n).login)
    return 0 if record is None else record.points


async def test_tickets_are_stakes_and_the_limit_holds(bank: Bank, giveaways: Giveaways) -> None:
    """Tickets cost points held by the round; past the limit is refused, saying what is left."""
    await fund(bank, 2)
    opened = await giveaways.open(CHANNEL, "a signed mousepad", PAID, actor="mod")
    bought = await giveaways.buy(CHANNEL, viewer(0), 3)
    assert (bought.bought, bought.held, bought.price, bought.balance) == (3, 3, 30, 70)
    with pytest.raises(TooManyTickets) as too_many:
        await giveaways.buy(CHANNEL, viewer(0), 3)
    assert too_many.value.left == 2
    rest = await giveaways.buy(CHANNEL, viewer(0), "max")
    assert (rest.bought, rest.held) == (2, 5)
    with pytest.raises(NoTicketsLeft):
        await giveaways.buy(CHANNEL, viewer(0), 1)
    await giveaways.buy(CHANNEL, viewer(1), 1, subscriber=True)
    running = await giveaways.running(CHANNEL)
    assert running is not None and running.id == opened.id
    assert (running.tickets, running.entrants, running.held) == (6, 2, 60)
    assert await balance(bank, 0) == 50 and await balance(bank, 1) == 90
    assert await bank.audit() == []


async def test_refusals_change_nothing(bank: Bank, giveaways: Giveaways) -> None:
    """No giveaway, too few points, excluded users, a closed giveaway: nothing moves."""
    await fund(bank, 1, 25)
    with pytest.raises(NoGiveaway):
        await giveaways.buy(CHANNEL, viewer(0), 1)
    await giveaways.open(CHANNEL, "prize", PAID, actor="mod")
    with pytest.raises(CannotAfford) as poor:
        await giveaways.buy(CHANNEL, viewer(0), 3)
    assert (poor.value.tickets, poor.value.price, poor.value.balance) == (3, 30, 25)
    bank.set_excluded(CHANNEL, {"user0"})
    with pytest.raises(NotEligible):
        await giveaways.buy(CHANNEL, viewer(0), 1)
    bank.set_excluded(CHANNEL, set())
    await giveaways.close(CHANNEL, actor="mod")
    with pytest.raises(GiveawayClosed):
        await giveaways.buy(CHANNEL, viewer(0), 1)
    assert await balance(bank, 0) == 25
    assert await bank.audit() == []


async def test_free_entry_is_one_ticket_each(bank: Bank, giveaways: Giveaways) -> None:
    """Cost 0: one ticket per viewer, no points, no ledger row; a second is refused."""
    await giveaways.open(CHANNEL, "free stuff", FREE, actor="mod")
    first = await giveaways.buy(CHANNEL, viewer(7), 1)
    assert (first.bought, first.price, first.balance, first.limit) == (1, 0, None, 1)
    with pytest.raises(NoTicketsLeft):
        await giveaways.buy(CHANNEL, viewer(7), "max")
    assert await bank.audit() == []


async def test_cancel_refunds_every_ticket_to_the_point(bank: Bank, giveaways: Giveaways) -> None:
    """Cancel: one transaction gives every stake back; then a new giveaway may open."""
    await fund(bank, 4)
    await giveaways.open(CHANNEL, "prize", PAID, actor="mod")
    for n in range(4):
        await giveaways.buy(CHANNEL, viewer(n), n + 1)
    await giveaways.close(CHANNEL, actor="mod")
    done = await giveaways.cancel(CHANNEL, actor="mod")
    assert (done.refunded, done.viewers, done.lost) == (100, 4, 0)
    assert [await balance(bank, n) for n in range(4)] == [100] * 4
    assert done.giveaway.state == "canceled"
    with pytest.raises(NoGiveaway):
        await giveaways.cancel(CHANNEL, actor="mod")
    assert (await giveaways.open(CHANNEL, "next", PAID, actor="mod")).state == "open"
    assert await bank.audit() == []


async def test_the_state_machine_refuses_out_of_order(bank: Bank, giveaways: Giveaways) -> None:
    """open while open, draw while open, close twice, cancel after a draw: refused."""
    await fund(bank, 3)
    await giveaways.open(CHANNEL, "prize", PAID, actor="mod")
    with pytest.raises(WrongState):
        await giveaways.open(CHANNEL, "another", PAID, actor="mod")
    with pytest.raises(WrongState):
        await giveaways.draw(CHANNEL, 1, present=None, actor="mod")
    await giveaways.close(CHANNEL, actor="mod")
    with pytest.raises(WrongState):
        await giveaways.close(CHANNEL, actor="mod")
    with pytest.raises(NoEntrants):
        await giveaways.draw(CHANNEL, 1, present=None, actor="mod")
    await giveaways.cancel(CHANNEL, actor="mod")
    await giveaways.open(CHANNEL, "again", PAID, actor="mod")
    await giveaways.buy(CHANNEL, viewer(0), 1)
    await giveaways.close(CHANNEL, actor="mod")
    await giveaways.draw(CHANNEL, 1, present=None, actor="mod")
    with pytest.raises(WrongState):
        await giveaways.cancel(CHANNEL, actor="mod")
    with pytest.raises(NoEntrants):
        await giveaways.draw(CHANNEL, 1, present=None, actor="mod")
    assert await bank.audit() == []


async def test_draws_spend_tickets_and_verify(bank: Bank, giveaways: Giveaways) -> None:
    """The first draw spends the tickets; draws continue one order; verify agrees; the
    commitment is the seed's SHA-256; an absent pick is skipped with ``present``."""
    await fund(bank, 12)
    await giveaways.open(CHANNEL, "prize", PAID, actor="mod")
    for n in range(12):
        await giveaways.buy(CHANNEL, viewer(n), 1 + n % 5, subscriber=n % 3 == 0)
    closed = await giveaways.close(CHANNEL, actor="mod")
    assert closed.seed is None and closed.commitment is not None  # the seed stays secret
    first = await giveaways.draw(CHANNEL, 2, present=None, actor="mod")
    assert first.spent and len(first.winners) == 2 and first.giveaway.state == "drawn"
    assert first.giveaway.seed is not None
    assert rules.commitment(first.giveaway.seed) == closed.commitment
    assert first.giveaway.held == 0
    assert sum([await balance(bank, n) for n in range(12)]) == 1200 - 10 * sum(
        1 + n % 5 for n in range(12)
    )
    everyone = {viewer(n).user_id for n in range(12)}
    won = {p.user_id for p in first.winners}
    second = await giveaways.draw(CHANNEL, 3, present=everyone - won, actor="mod")
    assert not second.spent and len(second.winners) == 3
    assert not {p.user_id for p in second.winners} & won
    checked = await giveaways.check(second.giveaway)
    assert checked.result.ok, checked.result
    entries = [(uid, t, luck / 100) for uid, t, luck in
               [(e.user_id, e.tickets, 150 if e.subscriber else 100)
                for e in await giveaways.entries(second.giveaway)]]  # fmt: skip
    whole = rules.draw(first.giveaway.seed, entries, 5)
    assert [p.user_id for p in first.winners + second.winners] == list(whole.winners)
    assert await bank.audit() == []


async def test_skipped_entrants_are_recorded_and_verified(
    bank: Bank, giveaways: Giveaways
) -> None:
    """With present, the absent picks are recorded as skipped, in order, and verify."""
    await fund(bank, 10)
    await giveaways.open(CHANNEL, "prize", PAID, actor="mod")
    for n in range(10):
        await giveaways.buy(CHANNEL, viewer(n), 1)
    await giveaways.close(CHANNEL, actor="mod")
    drawn = await giveaways.draw(CHANNEL, 2, present={viewer(0).user_id, viewer(1).user_id},
                                 actor="mod")  # fmt: skip
    assert {p.user_id for p in drawn.winners} <= {viewer(0).user_id, viewer(1).user_id}
    picks = await giveaways.picks(drawn.giveaway)
    assert [p.pick for p in picks] == list(range(1, len(picks) + 1))
    assert (await giveaways.check(drawn.giveaway)).result.ok


async def test_a_burst_commits_in_few_transactions(bank: Bank, giveaways: Giveaways) -> None:
    """1,000 concurrent purchases: every ticket debited once, in a handful of commits."""
    await fund(bank, 1000)
    await giveaways.open(CHANNEL, "prize", PAID, actor="mod")
    results = await asyncio.gather(
        *(giveaways.buy(CHANNEL, viewer(n % 1000), 1 + n % 2) for n in range(1200)),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(r, TooManyTickets | NoTicketsLeft) for r in refused) or not refused
    running = await giveaways.running(CHANNEL)
    assert running is not None
    bought = sum(r.bought for r in results if not isinstance(r, BaseException))
    assert running.tickets == bought and running.held == 10 * bought
    assert giveaways.stats.groups <= 10, giveaways.stats.groups
    assert giveaways.stats.committed == 1200 - len(refused)
    assert await bank.audit() == []
