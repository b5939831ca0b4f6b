"""First sight on a real SQLite file: one write per new viewer, batched, settled on demand."""

from __future__ import annotations

import asyncio
import time

from loyaltybot.points.bank import Bank
from loyaltybot.points.viewers import Viewer

CHANNEL = "alice"


def viewer(n: int) -> Viewer:
    return Viewer(str(5000 + n), f"viewer{n}", f"Viewer{n}")


async def test_viewers_seen_together_are_written_in_one_transaction(bank: Bank) -> None:
    """100 new viewers seen at once: one write, and every one of them found by login."""
    await bank.ensure_channels([CHANNEL])
    await bank.load_known_logins(CHANNEL)
    for n in range(100):
        bank.first_sight.see(CHANNEL, viewer(n))
    record = await bank.viewer(CHANNEL, "viewer99")  # settles the batch first
    assert record is not None and record.points == 0
    assert (bank.first_sight.stats.writes, bank.first_sight.stats.viewers) == (1, 100)


async def test_a_viewer_seen_again_while_their_write_is_under_way_is_not_written_twice(
    bank: Bank,
) -> None:
    """Lines that arrive while the first write is still in flight cost no second write."""
    await bank.ensure_channels([CHANNEL])
    await bank.load_known_logins(CHANNEL)
    blocker = asyncio.create_task(bank.store.write(lambda tx: time.sleep(0.3)))
    await asyncio.sleep(0.05)  # the writer thread is busy now
    for n in range(20):
        bank.first_sight.see(CHANNEL, viewer(n))
    flushing = asyncio.create_task(bank.first_sight.settle())
    await asyncio.sleep(0.05)  # the flush has taken them and waits for the writer
    for _ in range(3):
        for n in range(20):
            bank.first_sight.see(CHANNEL, viewer(n))
        await asyncio.sleep(0)
    await blocker
    await flushing
    await bank.first_sight.settle()
    assert bank.first_sight.stats.viewers == 20
    assert bank.first_sight.stats.writes == 1


async def test_known_viewers_cost_nothing_and_renames_are_followed(bank: Bank) -> None:
    """A viewer the channel knows is not written again; a new login for the same id is."""
    await bank.ensure_channels([CHANNEL])
    await bank.load_known_logins(CHANNEL)
    bank.first_sight.see(CHANNEL, viewer(1))
    await bank.first_sight.settle()
    bank.first_sight.see(CHANNEL, viewer(1))
    assert not bank.first_sight.busy
    renamed = Viewer(viewer(1).user_id, "newname", "NewName")
    bank.first_sight.see(CHANNEL, renamed)
    record = await bank.viewer(CHANNEL, "newname")
    assert record is not None and record.user_id == viewer(1).user_id
    assert await bank.viewer(CHANNEL, "viewer1") is None
    assert bank.first_sight.stats.writes == 2


async def test_the_channels_excluded_logins_are_not_viewers(bank: Bank) -> None:
    """The bot, the broadcaster and ignored users are never written by first sight."""
    await bank.ensure_channels([CHANNEL])
    await bank.load_known_logins(CHANNEL)
    bank.set_excluded(CHANNEL, {"nightbot", CHANNEL})
    bank.first_sight.see(CHANNEL, Viewer("9", "nightbot", "Nightbot"))
    bank.first_sight.see_login(CHANNEL, "nightbot")
    assert not bank.first_sight.busy
    assert await bank.viewer(CHANNEL, "nightbot") is None
