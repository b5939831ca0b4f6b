"""What the web handlers share, as typed application keys (no globals).

``app.make_app`` fills these in; handlers read them with ``request.app[KEY]``. The config
sits in a holder so a SIGHUP reload reaches the running app (aiohttp forbids replacing
application state once it has started).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import aiohttp
from aiohttp import web

from loyaltybot.clock import Clock
from loyaltybot.config import Config
from loyaltybot.db import Store
from loyaltybot.metrics import Metrics
from loyaltybot.points.bank import Bank


class LiveConfig:
    """The config in force; ``replace`` swaps it on reload."""

    def __init__(self, config: Config) -> None:
        self.current = config

    def replace(self, config: Config) -> None:
        self.current = config


class QueueItem(Protocol):
    """A redemption waiting for a moderator (what the queue page shows)."""

    @property
    def redemption_id(self) -> str: ...
    @property
    def reward_title(self) -> str: ...
    @property
    def user_login(self) -> str: ...
    @property
    def user_name(self) -> str: ...
    @property
    def user_input(self) -> str: ...
    @property
    def created_at(self) -> int:
        """When we received it, ms since the epoch."""


class Poll(Protocol):
    """One vote reward's tally."""

    @property
    def title(self) -> str: ...
    @property
    def options(self) -> Sequence[tuple[str, int]]:
        """(option, votes), most votes first."""


class RewardHooks(Protocol):
    """The redemption queue and votes, as the channel-points part (``rewards.Rewards``)
    provides them. ``approve``/``reject`` raise a ``LoyaltyError`` (its text is safe to
    show) when the redemption is unknown or no longer waiting."""

    async def list_queue(self, channel: str) -> Sequence[QueueItem]: ...
    async def approve(self, channel: str, redemption_id: str, actor: str) -> object: ...
    async def reject(self, channel: str, redemption_id: str, actor: str) -> object: ...
    async def tally(self, channel: str) -> Sequence[Poll]: ...
    async def reset_votes(self, channel: str) -> int: ...


Health = Callable[[], bool]  # is the chat connection up?

BANK = web.AppKey[Bank]("bank")
STORE = web.AppKey[Store]("store")
CONFIG = web.AppKey[LiveConfig]("config")
METRICS = web.AppKey[Metrics]("metrics")
HOOKS = web.AppKey[RewardHooks | None]("hooks")
HEALTH = web.AppKey[Health]("health")
CLOCK = web.AppKey[Clock]("clock")
HTTP = web.AppKey[aiohttp.ClientSession]("http")
