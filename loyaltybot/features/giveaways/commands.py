"""Giveaways in chat (SPEC §10.2): ``!giveaway`` (status, a read command), the moderators'
``!giveaway open <prize>``, ``close``, ``draw [n] [present]`` and ``cancel``, and the
viewers' ``!ticket [n|max]`` (aliases ``!tickets``, ``!join``).

Decisions made here:

- A moderator's action is announced to the whole channel, naming the giveaway's number,
  not answered to the moderator: the same lines the dashboard's buttons produce.
- An accepted ticket gets no reply of its own: ``TicketSummary`` acknowledges tickets in
  summary lines (SPEC §10.6). A refused ticket is answered only while the send budget
  has a quarter of its window to spare (``Outbox.room``): in a burst, announcements and
  summaries keep their room and the bot stays under Twitch's limits; refusals beyond it
  are counted, not sent. The chat layer's own throttle (one refusal per viewer and
  command per command cooldown) applies as well.
- ``!ticket`` takes ``max`` (and ``all``) for every ticket still allowed; extra words are
  ignored. ``!giveaway draw`` takes ``n`` (1 to 25) and ``present`` in either order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import structlog

from loyaltybot.chat.message import Permission
from loyaltybot.chat.outbox import Room
from loyaltybot.chat.registry import Command, CommandContext, ErrorRenderer
from loyaltybot.features.giveaways import announce, rules
from loyaltybot.features.giveaways.announce import Say, TicketSummary
from loyaltybot.features.giveaways.rules import GiveawayRefusal
from loyaltybot.features.giveaways.service import Giveaways, terms_of
from loyaltybot.points.errors import InvalidAmount
from loyaltybot.points.viewers import Viewer
from loyaltybot.settings import ChannelSettings

log = structlog.get_logger(__name__)

Present = Callable[[str], Sequence[Viewer]]
"""Who is in a channel now (earning keeps it)."""
RoomFor = Callable[[str], Room]
"""The chat send budget left for a channel now."""
PageUrl = Callable[[str, int], str | None]
"""(channel, giveaway id) -> its public page, when the bot has a public address."""

USAGE = "!giveaway, or (moderators) !giveaway open <prize> | close | draw [n] [present] | cancel"


class GiveawayCommands:
    def __init__(
        self,
        giveaways: Giveaways,
        summary: TicketSummary,
        say: Say,
        present: Present,
        room: RoomFor | None = None,
        page_url: PageUrl = lambda channel, giveaway_id: None,
    ) -> None:
        self._giveaways = giveaways
        self._summary = summary
        self._say = say
        self._present = present
        self._room = room
        self._page_url = page_url
        self.refusals_unanswered = 0  # refusals left unsaid: the send budget had no room

    def commands(self) -> list[Command]:
        return [
            Command("giveaway", self.giveaway, read_cooldown=True, usage=USAGE),
            Command(
                "ticket", self.ticket, aliases=("tickets", "join"), usage="!ticket [n|max]"
            ),
        ]

    def renderers(self) -> list[ErrorRenderer]:
        return [(GiveawayRefusal, render)]

    # ---- !giveaway ----------------------------------------------------------------------

    async def giveaway(self, ctx: CommandContext) -> str | None:
        if not ctx.args:
            found, held = await self._giveaways.status(ctx.channel, ctx.sender.user_id)
            return announce.status(found, held, ctx.settings)
        action, rest = ctx.args[0].lower(), ctx.args[1:]
        if action not in ("open", "close", "draw", "cancel"):
            raise ctx.usage()
        ctx.require(Permission.MODERATOR)
        actor = ctx.sender.login
        channel = ctx.channel
        if action == "open":
            if not rest:
                raise ctx.usage()
            try:
                opened = await self._giveaways.open(
                    channel, " ".join(rest), terms_of(ctx.settings), actor=actor
                )
            except ValueError:  # nothing printable in the prize
                raise ctx.usage() from None
            await self._say(channel, announce.opened(opened, ctx.settings))
        elif action == "close":
            await self._summary.flush(channel)
            closed = await self._giveaways.close(channel, actor=actor)
            await self._say(channel, announce.closed(closed))
        elif action == "draw":
            try:
                n, present_only = rules.parse_draw(rest)
            except ValueError as exc:
                if isinstance(exc, InvalidAmount):
                    raise
                raise ctx.usage() from None
            here = {v.user_id for v in self._present(channel)} if present_only else None
            drawn = await self._giveaways.draw(channel, n, present=here, actor=actor)
            for line in announce.drawn(drawn, self._page_url(channel, drawn.giveaway.id)):
                await self._say(channel, line)
        else:
            await self._summary.flush(channel)
            done = await self._giveaways.cancel(channel, actor=actor)
            await self._say(channel, announce.canceled(done, ctx.settings))
        log.info("giveaway_action", channel=channel, action=action, by=actor)
        return None

    # ---- !ticket ------------------------------------------------------------------------

    async def ticket(self, ctx: CommandContext) -> str | None:
        try:
            requested = rules.parse_ticket_request(ctx.args)
            purchase = await self._giveaways.buy(
                ctx.channel,
                ctx.sender,
                requested,
                subscriber=ctx.roles.subscriber,
                received_at=ctx.message.received_at,
            )
        except (GiveawayRefusal, InvalidAmount):
            if not self._may_answer(ctx.channel):
                self.refusals_unanswered += 1
                return None
            raise
        await self._summary.add(ctx.channel, purchase)
        return None

    def _may_answer(self, channel: str) -> bool:
        if self._room is None:
            return True
        return self._room(channel).to_spare


def render(exc: GiveawayRefusal, settings: ChannelSettings) -> str:
    return announce.explain(exc, settings)
