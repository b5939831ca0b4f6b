"""The economy page (SPEC §10.7): per day for the last 30 days the points earned (watching,
events), given, spent (shop, tickets), won and lost (games, contests, duels, heists), and
in circulation, as a chart and as a table (the chart's accessible equivalent); each
game's house edge, configured and realised; each reward's redemptions.

The chart is drawn by uPlot (MIT), served from this package (``static/``): the dashboard
works offline and the CSP allows scripts from this site only. The figures reach it as a
JSON data block in the page (data, not script: the CSP has nothing to object to).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from loyaltybot.features.economy.service import DAY_MS, Economy
from loyaltybot.web.access import context, require_access
from loyaltybot.web.access import stored_settings as stored
from loyaltybot.web.pages import render

STATIC = Path(__file__).parent / "static"
ASSETS = {
    "uPlot.iife.min.js": "text/javascript",
    "uPlot.min.css": "text/css",
    "uPlot.LICENSE": "text/plain; charset=utf-8",
    "economy.js": "text/javascript",
    "economy.css": "text/css",
}


class EdgeRow(Protocol):
    """A game's house edge, as the games feature reports it."""

    @property
    def game(self) -> str: ...
    @property
    def enabled(self) -> bool: ...
    @property
    def configured(self) -> float: ...
    @property
    def rounds(self) -> int: ...
    @property
    def bet(self) -> int: ...
    @property
    def returned(self) -> int: ...
    @property
    def realised(self) -> float | None: ...


class RewardRow(Protocol):
    """A reward's redemptions, as the rewards feature reports them."""

    @property
    def title(self) -> str: ...
    @property
    def redemptions(self) -> int: ...
    @property
    def fulfilled(self) -> int: ...
    @property
    def canceled(self) -> int: ...
    @property
    def waiting(self) -> int: ...
    @property
    def points(self) -> int: ...
    @property
    def viewers(self) -> int: ...


Edges = Callable[[str, int], Awaitable[Sequence[EdgeRow]]]
"""(channel, since ms) -> each game's house edge (from the games feature)."""
RewardUses = Callable[[str, int], Awaitable[Sequence[RewardRow]]]
"""(channel, since ms) -> each reward's redemptions (from the rewards feature)."""
Read = Callable[[str], Awaitable[Economy]]


def chart_data(found: Economy) -> dict[str, Any]:
    """What the chart draws: one x per day (seconds at 00:00 UTC) and a series each."""
    days = found.days
    return {
        "x": [d.day * 86_400 for d in days],
        "series": {
            "Earned": [d.earned for d in days],
            "Given": [d.given for d in days],
            "Spent": [d.spent for d in days],
            "Won": [d.won for d in days],
            "Lost": [d.lost for d in days],
            "In circulation": [d.circulation for d in days],
        },
    }


@dataclass(frozen=True)
class EconomyViews:
    read: Read
    edges: Edges
    rewards: RewardUses
    now_ms: Callable[[], int]
    days: int = 30

    async def page(self, request: web.Request) -> web.StreamResponse:
        """GET /dashboard/{channel}/economy."""
        access = await require_access(request)
        found = await self.read(access.channel)
        since = found.days[0].day * DAY_MS
        values = (await stored(request, access.channel_id)).values
        page_context = context(
            access,
            "economy",
            economy=found,
            days=list(reversed(found.days)),  # the table: newest first
            chart=chart_data(found),
            edges=await self.edges(access.channel, since),
            rewards=await self.rewards(access.channel, since),
            kinds=found.by_kind(),
            currency=values.currency_name_plural,
            period=self.days,
        )
        return await render(request, "economy/economy.html", page_context)


async def asset(request: web.Request) -> web.StreamResponse:
    """GET /assets/economy/{name}: the chart library, its licence, and the page's script."""
    name = request.match_info["name"]
    if name not in ASSETS:
        raise web.HTTPNotFound()
    return web.FileResponse(STATIC / name, headers={"Content-Type": ASSETS[name],
                                                    "Cache-Control": "max-age=3600"})  # fmt: skip


def routes(views: EconomyViews) -> list[web.RouteDef]:
    return [
        web.get("/dashboard/{channel}/economy", views.page),
        web.get("/assets/economy/{name}", asset),
    ]


__all__ = ["EconomyViews", "chart_data", "routes"]
