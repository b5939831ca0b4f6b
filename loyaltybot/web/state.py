"""What the web handlers share, as typed application keys (no globals).

``app.make_app`` fills these in; handlers read them with ``request.app[KEY]``. The config
sits in a holder so a SIGHUP reload reaches the running app (aiohttp forbids replacing
application state once it has started).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Stat:
    """One figure on a channel's overview that a feature adds ("Waiting for approval: 3")."""

    label: str
    value: int
    href: str | None = None  # under /dashboard/{channel}/


StatSource = Callable[[str], Awaitable[Sequence[Stat]]]
"""channel -> the figures a feature shows on its overview."""


Health = Callable[[], bool]  # is the chat connection up?

BANK = web.AppKey[Bank]("bank")
STORE = web.AppKey[Store]("store")
CONFIG = web.AppKey[LiveConfig]("config")
METRICS = web.AppKey[Metrics]("metrics")
STATS = web.AppKey[Sequence[StatSource]]("stats")
HEALTH = web.AppKey[Health]("health")
CLOCK = web.AppKey[Clock]("clock")
HTTP = web.AppKey[aiohttp.ClientSession]("http")
