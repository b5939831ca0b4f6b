"""Contests in chat (SPEC §10.3): ``!contest`` (status, a read command), the moderators'
``!contest open <question> | <option 1> | <option 2> [| …]``, ``close``, ``winner <n>`` and
``cancel``, and the viewers' ``!bet <option> <amount>``.

Decisions made here:

- A moderator's action is announced to the whole channel, naming the contest's number,
  not answered to the moderator: the same lines the dashboard's buttons produce.
- An accepted bet gets no reply of its own: ``BetSummary`` acknowledges bets in summary
  lines (SPEC §10.6). A refused bet is answered only while the send budget has a quarter
  of its window to spare (``Outbox.room``): in a burst, announcements and summaries keep
  their room and the bot stays under Twitch's limits; refusals beyond it are counted,
  not sent. The chat layer's own throttle (one refusal per viewer and command per
  command cooldown) applies as well.
- ``!bet`` takes the option's number then the amount (SPEC §5 amounts); ``#2`` is read as
  2. Anything else is answered with the usage.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from loyaltybot.chat.message import Permission, clean_text
from loyaltybot.chat.outbox import Room
from loyaltybot.chat.registry import Command, CommandContext, ErrorRenderer
from loyaltybot.features.contests import announce, rules
from loyaltybot.features.contests.announce import BetSummary, Say
from loyaltybot.features.contests.rules import ContestRefusal
from loyaltybot.features.contests.service import Contests, terms_of
from loyaltybot.points.amounts import parse_amount
from loyaltybot.points.errors import InvalidAmount
from loyaltybot.settings import ChannelSettings

log = structlog.get_logger(__name__)

RoomFor = Callable[[str], Room]
"""The chat send budget left for a channel now."""

USAGE = "!contest, or (moderators) !contest open <question> | <option 1> | <option 2> [| …]" \
        " | close | winner <n> | cancel"  # fmt: skip
BET_USAGE = "!bet <option> <amount>, e.g. !bet 1 100"


def option_number(text: str) -> int | None:
    """``2`` or ``#2`` -> 2; None for anything else (a usage answer, not a crash)."""
    raw = text.removeprefix("#")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 3:
        return None
    return int(raw)


class ContestCommands:
    def __init__(
        self,
        contests: Contests,
        summary: BetSummary,
        say: Say,
        room: RoomFor | None = None,
        *,
        opened: Callable[[], None] = lambda: None,
    ) -> None:
        self._contests = contests
        self._opened = opened
        self._summary = summary
        self._say = say
        self._room = room
        self.refusals_unanswered = 0  # refusals left unsaid: the send budget had no room

    def commands(self) -> list[Command]:
        return [
            Command("contest", self.contest, read_cooldown=True, usage=USAGE),
            Command("bet", self.bet, usage=BET_USAGE),
        ]

    def renderers(self) -> list[ErrorRenderer]:
        return [(ContestRefusal, render)]

    # ---- !contest -----------------------------------------------------------------------------

    async def contest(self, ctx: CommandContext) -> str | None:
        contests = self._contests
        if not ctx.args:
            found, mine = await contests.status(ctx.channel, ctx.sender.user_id)
            return announce.status(found, mine, ctx.settings, contests.now_ms())
        action, rest = ctx.args[0].lower(), ctx.args[1:]
        if action not in ("open", "close", "winner", "cancel"):
            raise ctx.usage()
        ctx.require(Permission.MODERATOR)
        actor = ctx.sender.login
        channel = ctx.channel
        if action == "open":
            if not rest:
                raise ctx.usage()
            # the command's text after "open", as typed (the arguments are cut at 16 words)
            words = clean_text(ctx.message.text).split(None, 2)
            text = words[2] if len(words) == 3 else ""
            spec = rules.parse_contest(text)
            opened = await contests.open(channel, spec, terms_of(ctx.settings), actor=actor)
            self._opened()
            await self._say(channel, announce.opened(opened, ctx.settings, contests.now_ms()))
        elif action == "close":
            await self._summary.flush(channel)
            closed = await contests.close(channel, actor=actor)
            await self._say(channel, announce.closed(closed, ctx.settings))
        elif action == "winner":
            if len(rest) != 1:
                raise ctx.usage()
            number = option_number(rest[0])
            if number is None:
                raise ctx.usage()
            running = await contests.running(channel)
            if running is not None:
                running.option(number)  # NoSuchOption before anything is said
            await self._summary.flush(channel)
            done = await contests.settle(channel, number, actor=actor)
            await self._say(channel, announce.ended(done, ctx.settings))
        else:
            await self._summary.flush(channel)
            done = await contests.cancel(channel, actor=actor)
            await self._say(channel, announce.ended(done, ctx.settings))
        log.info("contest_action", channel=channel, action=action, by=actor)
        return None

    # ---- !bet ---------------------------------------------------------------------------------

    async def bet(self, ctx: CommandContext) -> str | None:
        if len(ctx.args) < 2:
            raise ctx.usage()
        option = option_number(ctx.args[0])
        if option is None:
            raise ctx.usage()
        try:
            amount = parse_amount(ctx.args[1])
            placed = await self._contests.bet(
                ctx.channel, ctx.sender, option, amount, received_at=ctx.message.received_at
            )
        except (ContestRefusal, InvalidAmount):
            if not self._may_answer(ctx.channel):
                self.refusals_unanswered += 1
                return None
            raise
        await self._summary.add(ctx.channel, placed)
        return None

    def _may_answer(self, channel: str) -> bool:
        if self._room is None:
            return True
        return self._room(channel).to_spare


def render(exc: ContestRefusal, settings: ChannelSettings) -> str:
    return announce.explain(exc, settings)
