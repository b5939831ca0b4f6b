"""The economy page as the daemon registers it (SPEC §10.7).

It reads the core's books (``service.py``); what only other features know is handed over
by the daemon as plain functions: each game's house edge (games) and each reward's
redemptions (rewards). Without them the page shows its daily figures alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from loyaltybot.clock import Clock, to_ms
from loyaltybot.db import Store
from loyaltybot.features import Feature, NavLink
from loyaltybot.features.economy import service, views
from loyaltybot.features.economy.service import Economy
from loyaltybot.features.economy.views import EdgeRow, Edges, RewardRow, RewardUses
from loyaltybot.points.bank import Bank

TEMPLATES = Path(__file__).parent / "templates"
DAYS = 30


async def _no_edges(channel: str, since_ms: int) -> Sequence[EdgeRow]:
    return ()


async def _no_rewards(channel: str, since_ms: int) -> Sequence[RewardRow]:
    return ()


class EconomyFeature(Feature):
    name = "economy"

    def __init__(self, *, bank: Bank, store: Store, clock: Clock, edges: Edges = _no_edges,
                 rewards: RewardUses = _no_rewards) -> None:  # fmt: skip
        self._bank = bank
        self._store = store
        self._clock = clock
        self._views = views.EconomyViews(self.read, edges, rewards, self.now_ms, DAYS)

    def now_ms(self) -> int:
        return to_ms(self._clock.now())

    async def read(self, channel: str) -> Economy:
        """The channel's last 30 days (one read snapshot)."""
        channel_id = self._bank.channel_id(channel)
        now = self.now_ms()
        return await self._store.read(lambda c: service.economy(c, channel_id, now, DAYS))

    def routes(self) -> Sequence[web.RouteDef]:
        return views.routes(self._views)

    def nav(self) -> Sequence[NavLink]:
        return (NavLink("Economy", "economy"),)

    def templates(self) -> Sequence[Path]:
        return (TEMPLATES,)
