"""The games feature as the daemon registers it (SPEC §10.4).

The daemon hands it the chat ``outbox`` (duels and heists are said to the channel, within
the send limits) and ``settings_for`` (a channel's settings, for the currency). Its timer
refunds a duel nobody answered and runs a heist whose joining time is over; at start-up
it does the same for what ran out while the daemon was down, so no stake stays held
past its round's deadline (SPEC §10.6). ``house_edges`` is what it offers the economy
page, handed over by the daemon.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path

import structlog
from aiohttp import web

from loyaltybot.chat.outbox import Outbox
from loyaltybot.chat.registry import Command, ErrorRenderer
from loyaltybot.chat.replies import Reply
from loyaltybot.clock import Clock, Deadlines
from loyaltybot.config import Config, GamesConfig
from loyaltybot.db import Store
from loyaltybot.features import Feature, NavLink
from loyaltybot.features.games import announce, views
from loyaltybot.features.games.announce import JoinSummary
from loyaltybot.features.games.commands import GameCommands
from loyaltybot.features.games.service import DuelEnded, Edge, Games, HeistResult
from loyaltybot.points.bank import Bank
from loyaltybot.points.errors import UnknownChannel
from loyaltybot.settings import ChannelSettings

log = structlog.get_logger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
IDLE_CHECK_SECONDS = 30.0


class GamesFeature(Feature):
    name = "games"

    def __init__(
        self,
        *,
        bank: Bank,
        store: Store,
        clock: Clock,
        outbox: Outbox,
        settings_for: Callable[[str], ChannelSettings],
        config: Config,
        summary_every: float = 5.0,
    ) -> None:
        self._bank = bank
        self._config = config
        self._settings_for = settings_for

        async def say(channel: str, text: str) -> bool:
            return outbox.submit(Reply(channel, text, None, clock.monotonic()))

        self._say = say
        self.games = Games(bank, store, clock)
        self.joins = JoinSummary(say, clock, settings_for, self.games.now_ms, every=summary_every)
        self._commands = GameCommands(self.games, say, self.joins, outbox.room,
                                      started=self.wake)  # fmt: skip
        self._timer = Deadlines(self._end_due, self.games.next_deadline, self.games.now_ms,
                                idle=IDLE_CHECK_SECONDS, name="games-timer")  # fmt: skip

    # ---- what the edges get --------------------------------------------------------------

    def commands(self) -> Sequence[Command]:
        return self._commands.commands()

    def error_renderers(self) -> Sequence[ErrorRenderer]:
        return self._commands.renderers()

    def routes(self) -> Sequence[web.RouteDef]:
        return views.routes(self.games)

    def nav(self) -> Sequence[NavLink]:
        return (NavLink("Games", "games"),)

    def templates(self) -> Sequence[Path]:
        return (TEMPLATES,)

    async def house_edges(self, channel: str, since_ms: int = 0) -> Sequence[Edge]:
        """Each game's house edge, configured and realised (for the economy page)."""
        return await self.games.edges(channel, since_ms)

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        await self.games.load_settings(_tables(self._config))
        await self._end_due()
        self._timer.start()

    async def close(self) -> None:
        await self._timer.close()
        await self.joins.close()

    async def apply(self, config: Config) -> None:
        self._config = config
        await self.games.load_settings(_tables(config))

    def wake(self) -> None:
        """A duel or a heist began: the timer looks at its deadline."""
        self._timer.wake()

    # ---- the timer ---------------------------------------------------------------------------

    async def _end_due(self) -> None:
        channels = self._channel_ids()
        for done in await self.games.end_due():
            channel = channels.get(done.channel_id)
            if channel is None:
                continue
            settings = self._settings_for(channel)
            if isinstance(done, DuelEnded):
                log.info("duel_expired", channel=channel, duel=done.round_id)
                await self._say(channel, announce.duel_ended(done, settings))
            elif isinstance(done, HeistResult):
                log.info("heist_ended", channel=channel, heist=done.round_id, ran=done.ran,
                         players=done.players, paid=done.paid)  # fmt: skip
                self.joins.drop(channel)
                for line in announce.heist_result(done, settings):
                    await self._say(channel, line)

    def _channel_ids(self) -> dict[int, str]:
        found = {}
        for channel in self._config.channels:
            with contextlib.suppress(UnknownChannel):
                found[self._bank.channel_id(channel)] = channel
        return found


def _tables(config: Config) -> dict[str, GamesConfig | None]:
    return {channel: cfg.games for channel, cfg in config.channels.items()}
