"""The wallet feature as the daemon registers it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from loyaltybot.chat.registry import Command
from loyaltybot.features import Feature, NavLink
from loyaltybot.features.wallet import views
from loyaltybot.features.wallet.commands import Badge, Present, WalletCommands
from loyaltybot.features.wallet.views import Column

TEMPLATES = Path(__file__).parent / "templates"


class Wallet(Feature):
    """``present`` says who is in a channel now (earning keeps it); ``badges`` are what
    other features add to ``!points`` (a title, a level) and ``columns`` what they add to
    the viewers page (the level), all handed over by the daemon."""

    name = "wallet"

    def __init__(
        self, *, present: Present, badges: Sequence[Badge] = (), columns: Sequence[Column] = ()
    ) -> None:
        self._commands = WalletCommands(present, badges)
        self._columns = tuple(columns)

    def commands(self) -> Sequence[Command]:
        return self._commands.commands()

    def routes(self) -> Sequence[web.RouteDef]:
        return views.routes(self._columns)

    def nav(self) -> Sequence[NavLink]:
        return (
            NavLink("Viewers", "viewers"),
            NavLink("Leaderboard", "leaderboard"),
            NavLink("Transactions", "transactions"),
        )

    def templates(self) -> Sequence[Path]:
        return (TEMPLATES,)
