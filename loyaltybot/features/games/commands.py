"""Games in chat (SPEC §10.4): ``!gamble <amount|all|half|N%>``, ``!slots <amount>``,
``!duel <user> <amount>`` with ``!accept`` and ``!deny``, and ``!heist <amount>``.

Decisions made here:

- A game the channel has not switched on (``[channels.C.games] enabled``) does not
  answer at all: another bot in the channel may own the command.
- Each game has a cooldown per viewer (``cooldown_seconds``), started when the game was
  played (a refused attempt costs nothing); the reply says how long to wait. A heist
  has the channel's cooldown as well, from the end of the last heist that ran.
- Gamble and slots answer the player with the roll and the new balance. A challenge, its
  answer and a heist are said to the channel. A heist's joins are acknowledged in
  summary lines; a join that is refused is answered while the send budget has room.
- Wagers are amounts (SPEC §5), or ``all``, ``half`` or ``N%`` of the balance (read in the
  transaction that takes them); ``!slots`` and ``!duel`` take the same.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from loyaltybot.chat.outbox import Room
from loyaltybot.chat.registry import Command, CommandContext, ErrorRenderer, parse_login
from loyaltybot.features.games import announce
from loyaltybot.features.games.announce import JoinSummary, Say
from loyaltybot.features.games.rules import Game, GameRefusal, OnCooldown
from loyaltybot.features.games.service import Games
from loyaltybot.points.errors import InvalidAmount
from loyaltybot.settings import ChannelSettings

log = structlog.get_logger(__name__)

RoomFor = Callable[[str], Room]


class GameCommands:
    def __init__(self, games: Games, say: Say, joins: JoinSummary,
                 room: RoomFor | None = None, *,
                 started: Callable[[], None] = lambda: None) -> None:  # fmt: skip
        self._games = games
        self._say = say
        self._joins = joins
        self._room = room
        self._started = started  # wakes the feature's timer (a duel or a heist has a deadline)
        self.refusals_unanswered = 0

    def commands(self) -> list[Command]:
        return [
            Command("gamble", self.gamble, usage="!gamble <amount|all|half|N%>"),
            Command("slots", self.slots, usage="!slots <amount>"),
            Command("duel", self.duel, usage="!duel <user> <amount>"),
            Command("accept", self.accept, usage="!accept"),
            Command("deny", self.deny, usage="!deny"),
            Command("heist", self.heist, usage="!heist <amount>"),
        ]

    def renderers(self) -> list[ErrorRenderer]:
        return [(GameRefusal, render)]

    def _on(self, ctx: CommandContext, game: Game) -> bool:
        return game in self._games.settings(ctx.channel).enabled

    def _cooling(self, ctx: CommandContext, game: Game) -> tuple[object, float]:
        """The cooldown key and its length; refuses while it runs."""
        key = (ctx.channel, ctx.sender.user_id, "game", game)
        left = ctx.cooldowns.remaining(key)
        if left > 0:
            raise OnCooldown(game, left)
        return key, self._games.settings(ctx.channel).cooldown_seconds

    # ---- gamble and slots ---------------------------------------------------------------------

    async def gamble(self, ctx: CommandContext) -> str | None:
        return await self._play(ctx, "gamble")

    async def slots(self, ctx: CommandContext) -> str | None:
        return await self._play(ctx, "slots")

    async def _play(self, ctx: CommandContext, game: Game) -> str | None:
        if not self._on(ctx, game):
            return None
        if len(ctx.args) != 1:
            raise ctx.usage()
        key, seconds = self._cooling(ctx, game)
        result = await self._games.play(ctx.channel, ctx.sender, game, ctx.args[0])  # type: ignore[arg-type]
        ctx.cooldowns.start(key, seconds)
        log.info("game_played", channel=ctx.channel, game=game, user=ctx.sender.login,
                 bet=result.bet, roll=result.roll, delta=result.delta)  # fmt: skip
        return announce.played(result, self._games.settings(ctx.channel), ctx.settings)

    # ---- duels --------------------------------------------------------------------------------

    async def duel(self, ctx: CommandContext) -> str | None:
        if not self._on(ctx, "duel"):
            return None
        if len(ctx.args) != 2:
            raise ctx.usage()
        target = parse_login(ctx.args[0])
        key, seconds = self._cooling(ctx, "duel")
        made = await self._games.challenge(ctx.channel, ctx.sender, target, ctx.args[1])
        ctx.cooldowns.start(key, seconds)
        self._started()
        await self._say(ctx.channel, announce.challenged(made, ctx.settings,
                                                         self._games.now_ms()))  # fmt: skip
        return None

    async def accept(self, ctx: CommandContext) -> str | None:
        if not self._on(ctx, "duel"):
            return None
        result = await self._games.accept(ctx.channel, ctx.sender)
        log.info("duel_played", channel=ctx.channel, winner=result.winner, loser=result.loser,
                 stake=result.stake, flip=result.flip)  # fmt: skip
        await self._say(ctx.channel, announce.dueled(result, ctx.settings))
        return None

    async def deny(self, ctx: CommandContext) -> str | None:
        if not self._on(ctx, "duel"):
            return None
        ended = await self._games.deny(ctx.channel, ctx.sender)
        await self._say(ctx.channel, announce.duel_ended(ended, ctx.settings))
        return None

    # ---- heists -------------------------------------------------------------------------------

    async def heist(self, ctx: CommandContext) -> str | None:
        if not self._on(ctx, "heist"):
            return None
        if len(ctx.args) != 1:
            raise ctx.usage()
        try:
            key, seconds = self._cooling(ctx, "heist")
            joined = await self._games.heist(ctx.channel, ctx.sender, ctx.args[0])
        except (GameRefusal, InvalidAmount):
            if not self._may_answer(ctx.channel):
                self.refusals_unanswered += 1
                return None
            raise
        ctx.cooldowns.start(key, seconds)
        if joined.opened:
            self._started()
            games = self._games.settings(ctx.channel)
            await self._say(ctx.channel, announce.heist_opened(joined, games, ctx.settings,
                                                               self._games.now_ms()))  # fmt: skip
        else:
            await self._joins.add(ctx.channel, joined)
        return None

    def _may_answer(self, channel: str) -> bool:
        if self._room is None:
            return True
        return self._room(channel).to_spare


def render(exc: GameRefusal, settings: ChannelSettings) -> str:
    return announce.explain(exc, settings)
