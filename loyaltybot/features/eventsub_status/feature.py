"""The EventSub page as the daemon registers it: a dashboard tab, and a figure on the
overview when events may have been missed."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

from aiohttp import web

from loyaltybot.eventsub.status import EventSubStatus
from loyaltybot.features import Feature, NavLink
from loyaltybot.features.eventsub_status import views
from loyaltybot.web.state import Stat

TEMPLATES = Path(__file__).parent / "templates"


class EventSubPage(Feature):
    name = "eventsub_status"

    def __init__(self, status: EventSubStatus) -> None:
        self._status = status

    def routes(self) -> Sequence[web.RouteDef]:
        page = partial(views.eventsub_page, status=self._status)
        return (web.get("/dashboard/{channel}/eventsub", page),)

    def nav(self) -> Sequence[NavLink]:
        return (NavLink("EventSub", "eventsub"),)

    def templates(self) -> Sequence[Path]:
        return (TEMPLATES,)

    async def stats(self, channel: str) -> Sequence[Stat]:
        """The overview says so when the connection was lost (events may be missing)."""
        state = self._status.get(channel)
        if state is None or not state.gaps:
            return ()
        return (Stat("EventSub connections lost", len(state.gaps), "eventsub"),)
