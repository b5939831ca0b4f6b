"""The contests feature as the daemon registers it (SPEC §10.3).

The daemon hands it the chat ``outbox`` (announcements and summaries leave through it,
within the send limits, and its ``room`` says when a burst's refusals may be answered)
and ``settings_for`` (a channel's settings, for the currency in summary lines). Bets are
escrow stakes in the database, so a restart (or a crash) leaves them held exactly.

The closing timer: a contest opened with ``contest_close_after_seconds`` stops taking
bets at its ``closes_at`` (checked in every bet's transaction), and this feature closes
it for good and says so in chat at that moment, or at start-up for a contest whose time
ran out while the daemon was down. Its bets stay held until a moderator names the winner
or cancels: a contest has no deadline for that.
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
from loyaltybot.config import Config
from loyaltybot.db import Store
from loyaltybot.features import Feature, NavLink
from loyaltybot.features.contests import announce, views
from loyaltybot.features.contests.announce import BetSummary
from loyaltybot.features.contests.commands import ContestCommands
from loyaltybot.features.contests.service import Contests
from loyaltybot.metrics import Metrics
from loyaltybot.points.bank import Bank
from loyaltybot.points.errors import UnknownChannel
from loyaltybot.settings import ChannelSettings
from loyaltybot.web.state import Stat

log = structlog.get_logger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
IDLE_CHECK_SECONDS = 30.0  # the timer looks again at least this often


class ContestsFeature(Feature):
    name = "contests"

    def __init__(
        self,
        *,
        bank: Bank,
        store: Store,
        clock: Clock,
        outbox: Outbox,
        settings_for: Callable[[str], ChannelSettings],
        config: Config,
        metrics: Metrics | None = None,
        summary_every: float = 5.0,
    ) -> None:
        self._bank = bank
        self._clock = clock
        self._settings_for = settings_for
        self._channels = tuple(config.channels)

        async def say(channel: str, text: str) -> bool:
            return outbox.submit(Reply(channel, text, None, clock.monotonic()))

        self._say = say
        self.contests = Contests(bank, store, clock)
        self.summary = BetSummary(say, clock, settings_for, every=summary_every)
        self._commands = ContestCommands(
            self.contests, self.summary, say, outbox.room, opened=self.wake
        )
        self._views = views.ContestViews(self.contests, self.summary, say, self.wake)
        self._timer = Deadlines(self._close_due, self.contests.next_closing,
                                self.contests.now_ms, idle=IDLE_CHECK_SECONDS,
                                name="contest-timer")  # fmt: skip
        if metrics is not None:
            self._count(metrics)

    # ---- what the edges get --------------------------------------------------------------

    def commands(self) -> Sequence[Command]:
        return self._commands.commands()

    def error_renderers(self) -> Sequence[ErrorRenderer]:
        return self._commands.renderers()

    def routes(self) -> Sequence[web.RouteDef]:
        return views.routes(self._views)

    def nav(self) -> Sequence[NavLink]:
        return (NavLink("Contests", "contest"),)

    def templates(self) -> Sequence[Path]:
        return (TEMPLATES,)

    async def stats(self, channel: str) -> Sequence[Stat]:
        """The running contest's pool, on the overview."""
        running = await self.contests.running(channel)
        if running is None:
            return ()
        return (Stat(f"Contest #{running.id} pool ({running.state})", running.pool, "contest"),)

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Close what ran out of time while the daemon was down, then keep the timer."""
        await self._close_due()
        self._timer.start()

    async def close(self) -> None:
        """Commit the bets under way; pending summaries are not said (the bot is leaving)."""
        await self._timer.close()
        await self.contests.close_desk()
        await self.summary.close()

    async def apply(self, config: Config) -> None:
        self._channels = tuple(config.channels)

    def wake(self) -> None:
        """A contest opened: the timer looks at its closing time."""
        self._timer.wake()

    # ---- the closing timer -------------------------------------------------------------------

    async def _close_due(self) -> None:
        for contest in await self.contests.close_due():
            channel = self._channel_of(contest.channel_id)
            if channel is None:
                continue
            log.info("contest_closed_by_timer", channel=channel, contest=contest.id)
            await self.summary.flush(channel)
            await self._say(channel, announce.closed(contest, self._settings_for(channel)))

    def _channel_of(self, channel_id: int) -> str | None:
        for channel in self._channels:
            with contextlib.suppress(UnknownChannel):
                if self._bank.channel_id(channel) == channel_id:
                    return channel
        return None

    # ---- metrics -----------------------------------------------------------------------------

    def _count(self, metrics: Metrics) -> None:
        stats = self.contests.stats
        commands = self._commands
        summary = self.summary
        metrics.add_counter_source(
            "loyaltybot_contest_bets",
            "!bet: committed bets and their points, refusals, refusals left unanswered for"
            " the send budget, transactions, summary lines",
            ("what",),
            lambda: [
                (("bets",), stats.committed),
                (("points",), stats.points),
                (("refused",), stats.refused),
                (("refusals_unanswered",), commands.refusals_unanswered),
                (("transactions",), stats.groups),
                (("summary_lines",), summary.lines),
            ],
        )
        metrics.add_gauge_source(
            "loyaltybot_contest_bet_commit_seconds",
            "Chat line received to its bet committed, over the last 10,000",
            ("quantile",),
            lambda: [((q,), stats.quantile(float(q))) for q in ("0.5", "0.99", "1")],
        )
