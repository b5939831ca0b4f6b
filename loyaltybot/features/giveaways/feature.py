"""The giveaways feature as the daemon registers it.

The daemon hands it the chat ``outbox`` (announcements and summaries leave through it,
within the send limits, and its ``room`` says when a burst's refusals may be answered
without crowding them out) and ``present`` (who is in a channel now, for ``draw
present``). Its tickets are
escrow stakes in the database, so a restart (or a crash) leaves them held exactly; there
is nothing to resume at start-up: a giveaway has no deadline, a moderator ends it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from loyaltybot.chat.outbox import Outbox
from loyaltybot.chat.registry import Command, ErrorRenderer
from loyaltybot.chat.replies import Reply
from loyaltybot.clock import Clock
from loyaltybot.config import Config
from loyaltybot.db import Store
from loyaltybot.features import Feature, NavLink
from loyaltybot.features.giveaways import views
from loyaltybot.features.giveaways.announce import TicketSummary
from loyaltybot.features.giveaways.commands import GiveawayCommands, Present
from loyaltybot.features.giveaways.service import Giveaways
from loyaltybot.metrics import Metrics
from loyaltybot.points.bank import Bank
from loyaltybot.web.state import Stat

TEMPLATES = Path(__file__).parent / "templates"


class GiveawaysFeature(Feature):
    name = "giveaways"

    def __init__(
        self,
        *,
        bank: Bank,
        store: Store,
        clock: Clock,
        outbox: Outbox,
        present: Present,
        config: Config | None = None,
        metrics: Metrics | None = None,
        summary_every: float = 5.0,
    ) -> None:
        self._public_url = None if config is None else config.web.public_url

        async def say(channel: str, text: str) -> bool:
            return outbox.submit(Reply(channel, text, None, clock.monotonic()))

        self.giveaways = Giveaways(bank, store, clock)
        self.summary = TicketSummary(say, clock, every=summary_every)
        self._commands = GiveawayCommands(
            self.giveaways, self.summary, say, present, outbox.room, self.page_url
        )
        self._views = views.GiveawayViews(self.giveaways, self.summary, say, present)
        if metrics is not None:
            self._count(metrics)

    def page_url(self, channel: str, giveaway_id: int) -> str | None:
        """Where a viewer checks a draw (only when the bot has a public address)."""
        if not self._public_url:
            return None
        return f"{self._public_url.rstrip('/')}/c/{channel}/giveaway?id={giveaway_id}"

    # ---- what the edges get ------------------------------------------------------------

    def commands(self) -> Sequence[Command]:
        return self._commands.commands()

    def error_renderers(self) -> Sequence[ErrorRenderer]:
        return self._commands.renderers()

    def routes(self) -> Sequence[web.RouteDef]:
        return views.routes(self._views)

    def nav(self) -> Sequence[NavLink]:
        return (NavLink("Giveaways", "giveaway"),)

    def templates(self) -> Sequence[Path]:
        return (TEMPLATES,)

    async def stats(self, channel: str) -> Sequence[Stat]:
        """The running giveaway's tickets, on the overview."""
        running = await self.giveaways.running(channel)
        if running is None or running.state == "drawn":
            return ()
        return (Stat(f"Giveaway #{running.id} tickets ({running.state})", running.tickets,
                     "giveaway"),)  # fmt: skip

    # ---- lifecycle ---------------------------------------------------------------------

    async def close(self) -> None:
        """Commit the tickets under way; pending summaries are not said (the bot is
        leaving chat)."""
        await self.giveaways.close_desk()
        await self.summary.close()

    async def apply(self, config: Config) -> None:
        self._public_url = config.web.public_url

    # ---- metrics -----------------------------------------------------------------------

    def _count(self, metrics: Metrics) -> None:
        stats = self.giveaways.stats
        commands = self._commands
        summary = self.summary
        metrics.add_counter_source(
            "loyaltybot_giveaway_tickets",
            "!ticket purchases: committed purchases and their tickets, refusals, refusals"
            " left unanswered for the send budget, transactions, summary lines",
            ("what",),
            lambda: [
                (("purchases",), stats.committed),
                (("tickets",), stats.tickets),
                (("refused",), stats.refused),
                (("refusals_unanswered",), commands.refusals_unanswered),
                (("transactions",), stats.groups),
                (("summary_lines",), summary.lines),
            ],
        )
        metrics.add_gauge_source(
            "loyaltybot_giveaway_ticket_commit_seconds",
            "Chat line received to its ticket purchase committed, over the last 10,000",
            ("quantile",),
            lambda: [((q,), stats.quantile(float(q))) for q in ("0.5", "0.99", "1")],
        )
