"""The votes feature as the daemon registers it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from loyaltybot.chat.registry import Command
from loyaltybot.db import Store
from loyaltybot.features import Feature, NavLink
from loyaltybot.features.votes import views
from loyaltybot.features.votes.commands import votes_chat_command
from loyaltybot.features.votes.service import Votes
from loyaltybot.points.bank import Bank

TEMPLATES = Path(__file__).parent / "templates"


class VotesFeature(Feature):
    name = "votes"

    def __init__(self, *, bank: Bank, store: Store) -> None:
        self.votes = Votes(bank, store)

    def commands(self) -> Sequence[Command]:
        return (votes_chat_command(self.votes),)

    def routes(self) -> Sequence[web.RouteDef]:
        return views.routes(self.votes)

    def nav(self) -> Sequence[NavLink]:
        return (NavLink("Votes", "votes"),)

    def templates(self) -> Sequence[Path]:
        return (TEMPLATES,)
