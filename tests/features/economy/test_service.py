"""The economy's figures on a real SQLite file: each day's earned, given, spent, won, lost
and circulation, checked against a day of activity worked out by hand; the roll-ups the
triggers keep agree with the books they summarise."""

from __future__ import annotations

import pytest

from loyaltybot.clock import FakeClock, to_ms
from loyaltybot.config import GamesConfig
from loyaltybot.db import Store
from loyaltybot.features.contests.rules import parse_contest
from loyaltybot.features.contests.service import Contests, Terms
from loyaltybot.features.economy import service
from loyaltybot.features.economy.service import DAY_MS
from loyaltybot.features.games import rules
from loyaltybot.features.games.service import Games
from loyaltybot.points.bank import Bank
from loyaltybot.points.ledger import EarningRates, EntryType, Presence, TickPlan
from tests.conftest import CHANNEL, viewer

START = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


async def economy(store: Store, bank: Bank, clock: FakeClock) -> service.Economy:
    channel_id = bank.channel_id(CHANNEL)
    return await store.read(lambda c: service.economy(c, channel_id, to_ms(clock.now())))


async def test_a_day_by_hand(bank: Bank, store: Store, clock: FakeClock,
                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """Day 1: a tick pays 3 viewers 10 each (30), a follow bonus 50, a gift of 5, a shop
    purchase of 20 refunded 8, 2 tickets of 3. Day 2: a gamble won (+7) and lost (-4), a
    contest where 10 and 12 on the winner share the 4 lost (10 + 2, 12 + 2): won 4, lost
    4. Circulation is every balance, day by day."""
    channel_id = bank.channel_id(CHANNEL)
    people = [Presence(str(1000 + n), f"user{n}", f"User{n}") for n in range(3)]
    await bank.credit_tick(TickPlan(channel_id, 1, 0, 60, EarningRates(10, 10, 0, 0), people,
                                    bank.known_logins(CHANNEL)))  # fmt: skip
    await bank.credit(CHANNEL, viewer(0), 50, kind=EntryType.BONUS)
    await bank.transfer(CHANNEL, viewer(0), viewer(1), 5)
    await bank.debit(CHANNEL, viewer(0), 20, kind=EntryType.SHOP_PURCHASE)
    await bank.credit(CHANNEL, viewer(0), 8, kind=EntryType.SHOP_REFUND)
    giveaway = await bank.open_round(CHANNEL, "giveaway")
    await bank.stake(giveaway.id, viewer(2), 6, kind=EntryType.GIVEAWAY_TICKET, units=2)
    await bank.settle_round(giveaway.id, kind=EntryType.GIVEAWAY_TICKET)
    day1 = await economy(store, bank, clock)
    first = day1.days[-1]
    assert (first.watching, first.events, first.given, first.spent_shop, first.spent_tickets,
            first.won, first.lost) == (30, 50, 5, 12, 6, 0, 0)  # fmt: skip
    assert first.circulation == day1.circulation == 30 + 50 - 12 - 6 == 62

    clock.advance(86_400)
    games = Games(bank, store, clock)
    await games.load_settings({CHANNEL: GamesConfig(enabled=("gamble",), min_bet=1)})
    queue = [60, 10]
    monkeypatch.setattr(rules, "roll_d100", lambda: queue.pop(0))
    await games.play(CHANNEL, viewer(0), "gamble", "7")
    await games.play(CHANNEL, viewer(0), "gamble", "4")
    contests = Contests(bank, store, clock)
    await contests.open(CHANNEL, parse_contest("Q | a | b"), Terms(1, 100, 0), actor="mod")
    await contests.bet(CHANNEL, viewer(0), 1, 10)
    await contests.bet(CHANNEL, viewer(1), 1, 12)
    await contests.bet(CHANNEL, viewer(2), 2, 4)
    await contests.settle(CHANNEL, 1, actor="mod")
    found = await economy(store, bank, clock)
    yesterday, today = found.days[-2], found.days[-1]
    assert yesterday == first
    assert (today.won, today.lost) == (7 + 4, 4 + 4)
    assert (today.won_by, today.lost_by) == ({"games": 7, "contests": 4},
                                             {"games": 4, "contests": 4})  # fmt: skip
    assert today.circulation == 62 + 7 - 4 == found.circulation
    assert found.by_kind() == [("contests", 4, 4), ("games", 7, 4)]
    assert len(found.days) == 30 and found.days[0].day == to_ms(clock.now()) // DAY_MS - 29
    assert found.days[0].circulation == 0
    assert await store.read(lambda c: service.check(c, channel_id)) == []
    assert await bank.audit() == []


async def test_open_rounds_are_held_not_lost(bank: Bank, store: Store, clock: FakeClock) -> None:
    """A stake in a round still open has left the balances (circulation) and is held; it
    is neither won nor lost until the round ends."""
    await bank.credit(CHANNEL, viewer(0), 100, kind=EntryType.ADD)
    duel = await bank.open_round(CHANNEL, "duel")
    await bank.stake(duel.id, viewer(0), 40, kind=EntryType.DUEL_STAKE)
    found = await economy(store, bank, clock)
    assert (found.circulation, found.held, found.open_rounds) == (60, 40, 1)
    assert (found.days[-1].won, found.days[-1].lost) == (0, 0)
    await bank.refund_round(duel.id, kind=EntryType.DUEL_REFUND)
    found = await economy(store, bank, clock)
    assert (found.circulation, found.held, found.days[-1].lost) == (100, 0, 0)
