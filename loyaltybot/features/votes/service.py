"""The tally's SQL: read every poll of a channel, reset them."""

from __future__ import annotations

import sqlite3

from loyaltybot.db import Store
from loyaltybot.features.votes.rules import Poll
from loyaltybot.points.bank import Bank


def polls(conn: sqlite3.Connection, channel_id: int) -> list[Poll]:
    found: dict[str, tuple[str, list[tuple[str, int]]]] = {}
    for poll, title, option, count in conn.execute(
        "SELECT poll, title, option, count FROM votes WHERE channel_id = ?"
        " ORDER BY poll, count DESC, first_at, option",
        (channel_id,),
    ):
        found.setdefault(poll, (title, []))[1].append((option, count))
    return [Poll(title, tuple(options)) for title, options in found.values()]


class Votes:
    """The channel's tallies."""

    def __init__(self, bank: Bank, store: Store) -> None:
        self._bank = bank
        self._store = store

    async def tally(self, channel: str) -> list[Poll]:
        """Every poll of the channel with its options, most votes first."""
        channel_id = self._bank.channel_id(channel)
        return await self._store.read(lambda c: polls(c, channel_id))

    async def reset(self, channel: str) -> int:
        """Clear the channel's tallies; returns how many options were removed."""
        channel_id = self._bank.channel_id(channel)
        return await self._store.write(
            lambda tx: (
                tx.conn.execute("DELETE FROM votes WHERE channel_id = ?", (channel_id,)).rowcount
            )
        )
