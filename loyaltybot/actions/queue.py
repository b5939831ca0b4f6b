"""The moderators' approval queue, whatever waits in it (SPEC §6 ``queue``, §10.1).

Channel-point redemptions and shop purchases both wait for a moderator's approve or
reject. Each feature keeps its own waiting rows and offers them as a :class:`QueueSource`;
the page that lists them (the rewards feature's) is handed every source by the daemon and
never imports the feature behind one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from loyaltybot.points.errors import LoyaltyError


@dataclass(frozen=True, slots=True)
class Waiting:
    """One entry waiting for a decision."""

    source: str  # which QueueSource: its name, also in the decision's URL
    id: str  # the entry's id within its source
    kind: str  # what it is, for people: "Channel points", "Shop"
    title: str  # the reward's title or the item's name
    user_login: str
    user_name: str
    text: str  # what the viewer typed (untrusted: escaped when shown)
    cost: int  # loyalty points taken, given back on reject
    created_at: int  # ms


@dataclass(frozen=True, slots=True)
class Decided:
    """What a decision did: ``refunded`` loyalty points went back to the viewer."""

    id: str
    approved: bool
    refunded: int


class NotWaiting(LoyaltyError):
    """Approve or reject of an entry that is not waiting (any more)."""

    def __init__(self, entry_id: str, status: str) -> None:
        super().__init__(f"{entry_id!r} is {status}, not waiting")
        self.entry_id = entry_id
        self.status = status


class UnknownEntry(LoyaltyError, LookupError):
    def __init__(self, channel: str, entry_id: str) -> None:
        super().__init__(f"nothing called {entry_id!r} waits in #{channel}")
        self.channel = channel
        self.entry_id = entry_id


class QueueSource(Protocol):
    """A feature's waiting entries, and its decisions on them."""

    name: str

    def holds(self, channel: str) -> bool:
        """Whether something of this channel is set up to wait here."""
        ...

    async def waiting(self, channel: str, limit: int) -> Sequence[Waiting]:
        """Entries waiting, oldest first."""
        ...

    async def decide(self, channel: str, entry_id: str, *, approve: bool, actor: str) -> Decided:
        """Raises UnknownEntry, NotWaiting."""
        ...
