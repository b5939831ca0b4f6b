"""Features: each one package that plugs into the core and the edges (DESIGN.md, "The house").

A feature keeps its decisions as pure functions in ``rules.py`` (no I/O, testable alone),
its transactions in ``service.py`` (its SQL lives there and nowhere else), its chat
commands in ``commands.py``, its pages in ``views.py`` (templates beside them) and the one
object the daemon registers in ``feature.py``: a subclass of :class:`Feature` offering
what the edges need. A feature may use the core (points, db, twitch, config) and the edges
(chat, eventsub, web); it never imports another feature. What two features share moves
down into the core, or is handed over by the daemon as a plain function.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web

    from loyaltybot.chat.registry import Command, ErrorRenderer
    from loyaltybot.config import Config
    from loyaltybot.db.jobs import WorkKind
    from loyaltybot.eventsub.dispatch import Handler, Missed
    from loyaltybot.web.state import Stat


@dataclass(frozen=True)
class NavLink:
    """A dashboard page a feature adds to a channel's navigation."""

    label: str
    path: str  # under /dashboard/{channel}/, e.g. "queue"


class Feature:
    """What a feature offers; every part is optional (the defaults offer nothing).

    The daemon collects ``commands`` for chat, ``routes``, ``nav`` and ``stats`` for the web,
    ``eventsub`` handlers by event class (with ``eventsub_wanted`` and ``eventsub_missed``
    for the WebSocket transport), ``jobs`` (kinds of slow work run after a commit), and
    calls ``start``/``close`` around the run and ``apply`` on each reload."""

    name: str = "feature"

    def commands(self) -> Sequence[Command]:
        return ()

    def error_renderers(self) -> Sequence[ErrorRenderer]:
        """How chat words this feature's refusals (errors that carry data)."""
        return ()

    def routes(self) -> Sequence[web.RouteDef]:
        return ()

    def nav(self) -> Sequence[NavLink]:
        return ()

    async def stats(self, channel: str) -> Sequence[Stat]:
        """Figures for the channel's overview page."""
        return ()

    def templates(self) -> Sequence[Path]:
        """Folders of Jinja templates for ``routes`` (looked up after the web edge's)."""
        return ()

    def eventsub(self) -> Mapping[type, Handler]:
        return {}

    async def eventsub_wanted(self, channel: str) -> Collection[type]:
        """Which of the event classes of ``eventsub()`` the channel needs now. Over
        WebSocket only these are subscribed to (a bonus that is off needs none); the
        webhook subscribes to every class handled."""
        return tuple(self.eventsub())

    async def eventsub_missed(self, channel: str, broadcaster_id: str) -> Sequence[Missed]:
        """After the WebSocket was down (Twitch replays nothing): events Twitch can still
        tell, to be handled once like any other (SPEC §6.1)."""
        return ()

    def jobs(self) -> Mapping[str, WorkKind]:
        return {}

    async def start(self) -> None:
        """Background timers; resume what a previous run left (settled at start-up)."""

    async def close(self) -> None:
        """Stop timers and write what is kept in memory."""

    async def apply(self, config: Config) -> None:
        """A reloaded config (SIGHUP), already validated."""

    async def broadcasters_known(self, ids: Mapping[str, str]) -> None:
        """Twitch told the daemon each channel's user id (channel login -> id)."""
