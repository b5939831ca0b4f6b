"""``ledger.credit_many`` (what settles a round) does what ``credit`` does one by one: the
same balances, the same ledger rows with their ids, clamping at the maximum, and nothing
at all when a viewer has no row."""

from __future__ import annotations

import pytest

from loyaltybot.db import Store
from loyaltybot.points import ledger
from loyaltybot.points.amounts import MAX_POINTS
from loyaltybot.points.bank import Bank
from loyaltybot.points.errors import InvalidAmount, UnknownViewer
from loyaltybot.points.ledger import EntryType
from tests.conftest import CHANNEL, viewer


async def test_many_credits_equal_one_by_one(bank: Bank, store: Store) -> None:
    """Balances, rows (amount, requested, balance after, type, round) and ids agree with
    what single credits write; a viewer named twice is credited twice in order; the clamp
    and a balance at the maximum report what was not credited."""
    await bank.credit(CHANNEL, viewer(0), 10, kind=EntryType.ADD)
    await bank.credit(CHANNEL, viewer(1), MAX_POINTS - 5, kind=EntryType.ADD)
    await bank.credit(CHANNEL, viewer(2), MAX_POINTS, kind=EntryType.ADD)
    channel_id = bank.channel_id(CHANNEL)
    credits = [("1000", 7), ("1001", 9), ("1002", 3), ("1000", 1)]
    changes, lost = await store.write(lambda tx: ledger.credit_many(
        tx, channel_id, credits, kind=EntryType.CONTEST_PAYOUT, reason="r", actor="a"))  # fmt: skip
    assert lost == [("1001", 4), ("1002", 3)]
    assert [(c.user_id, c.requested, c.applied, c.balance) for c in changes] == [
        ("1000", 7, 7, 17), ("1001", 9, 5, MAX_POINTS), ("1000", 1, 1, 18)]
    rows = await store.read(lambda c: c.execute(
        "SELECT id, user_id, amount, requested, balance_after, type, reason, actor FROM ledger"
        " WHERE type = 'contest_payout' ORDER BY id").fetchall())  # fmt: skip
    assert rows == [
        (changes[0].entry_id, "1000", 7, None, 17, "contest_payout", "r", "a"),
        (changes[1].entry_id, "1001", 5, 9, MAX_POINTS, "contest_payout", "r", "a"),
        (changes[2].entry_id, "1000", 1, None, 18, "contest_payout", "r", "a"),
    ]
    assert await bank.audit() == []


async def test_nothing_is_written_for_a_stranger_or_a_bad_amount(bank: Bank, store: Store
                                                                 ) -> None:  # fmt: skip
    """A user id without a row, or an amount of 0, and no credit happens at all."""
    await bank.credit(CHANNEL, viewer(0), 10, kind=EntryType.ADD)
    channel_id = bank.channel_id(CHANNEL)
    with pytest.raises(UnknownViewer):
        await store.write(lambda tx: ledger.credit_many(
            tx, channel_id, [("1000", 5), ("9999", 5)], kind=EntryType.ADD))  # fmt: skip
    with pytest.raises(InvalidAmount):
        await store.write(lambda tx: ledger.credit_many(
            tx, channel_id, [("1000", 5), ("1000", 0)], kind=EntryType.ADD))  # fmt: skip
    record = await bank.viewer(CHANNEL, "user0")
    assert record is not None and record.points == 10
    assert await bank.audit() == []
