"""The viewer's wallet in chat (SPEC §5): ``!points``, ``!watchtime``, ``!leaderboard``,
``!give``, and the moderators' ``!addpoints``, ``!removepoints`` and ``!setpoints``.

Decisions made here (SPEC §5 leaves them open):

- ``!give`` has a ``give_cooldown_seconds`` cooldown per sender and channel, for everyone
  (moderators too: it is a rule about points, not about spam), started only by a transfer
  that happened: a typo or a refused transfer does not lock the sender out. While it
  runs, the reply says how long to wait.
- ``!addpoints all`` means everyone present; ``!addpoints @all`` means the user whose
  login is "all". It leaves out the bot, the broadcaster and the channel's excluded users
  (``Bank.excluded``: ignored users such as nightbot); viewers already at the maximum
  are skipped and counted.
- Write commands take exactly their arguments (``!give bob 1 000`` is refused, not read as
  1); read commands ignore extra words.
- Every viewer is found by exact login through the bank, which knows everyone first
  sight has seen (SPEC §4): one path, no lookup of its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import structlog

from loyaltybot.chat.message import Permission
from loyaltybot.chat.registry import Command, CommandContext, parse_login
from loyaltybot.chat.replies import (
    GiveTooLarge,
    OnCooldown,
    TargetAtMaximum,
    TargetLacksPoints,
    format_duration,
)
from loyaltybot.points.amounts import parse_amount
from loyaltybot.points.errors import (
    BalanceTooHigh,
    InsufficientPoints,
    InvalidAmount,
    SelfTransfer,
    UnknownViewer,
)
from loyaltybot.points.ledger import EntryType
from loyaltybot.points.viewers import Viewer, normalize_login

log = structlog.get_logger(__name__)

LEADERBOARD_SIZE = 5

Present = Callable[[str], Sequence[Viewer]]
"""Who is in a channel right now."""
Badge = Callable[[str, str], Awaitable[str | None]]
"""(channel, user id) -> what ``!points`` adds about them ("title: Hero"), or None."""


class WalletCommands:
    """The points commands; ``present`` says who is here (earning keeps it), ``badges``
    add to ``!points`` what other features know of a viewer (a title, a level)."""

    def __init__(self, present: Present, badges: Sequence[Badge] = ()) -> None:
        self._present = present
        self._badges = tuple(badges)

    def commands(self) -> list[Command]:
        return [
            Command("points", self.points, read_cooldown=True, usage="!points [user]"),
            Command("watchtime", self.watchtime, read_cooldown=True, usage="!watchtime [user]"),
            Command(
                "leaderboard",
                self.leaderboard,
                aliases=("top",),
                read_cooldown=True,
                usage="!leaderboard",
            ),
            Command("give", self.give, usage="!give <user> <amount>"),
            Command(
                "addpoints",
                self.addpoints,
                permission=Permission.MODERATOR,
                usage="!addpoints <user|all> <amount>",
            ),
            Command(
                "removepoints",
                self.removepoints,
                permission=Permission.MODERATOR,
                usage="!removepoints <user> <amount>",
            ),
            Command(
                "setpoints",
                self.setpoints,
                permission=Permission.BROADCASTER,
                usage="!setpoints <user> <amount>",
            ),
        ]

    # -- read commands

    async def points(self, ctx: CommandContext) -> str:
        """``!points [user]``: balance, rank and title."""
        login = parse_login(ctx.args[0]) if ctx.args else ctx.sender.login
        if login == ctx.sender.login:
            record = await ctx.bank.viewer_by_id(ctx.channel, ctx.sender.user_id)
            user_id, whose = ctx.sender.user_id, "you have"
        else:
            record = await ctx.bank.viewer(ctx.channel, login)
            if record is None:
                raise UnknownViewer(login, ctx.channel)
            user_id, whose = record.user_id, f"{record.login} has"
        balance = record.points if record is not None else 0
        text = f"{whose} {ctx.points(balance)}"
        rank = await ctx.bank.rank(ctx.channel, user_id) if balance > 0 else None
        if rank is not None:
            text += f" (rank #{rank:,})"
        for badge in self._badges:
            shown = await badge(ctx.channel, user_id)
            if shown:
                text += f" · {shown}"
        return text

    async def watchtime(self, ctx: CommandContext) -> str:
        """``!watchtime [user]``: accumulated watch time."""
        login = parse_login(ctx.args[0]) if ctx.args else ctx.sender.login
        if login == ctx.sender.login:
            record = await ctx.bank.viewer_by_id(ctx.channel, ctx.sender.user_id)
            whose = "you have"
        else:
            record = await ctx.bank.viewer(ctx.channel, login)
            if record is None:
                raise UnknownViewer(login, ctx.channel)
            whose = f"{record.login} has"
        seconds = record.watch_seconds if record is not None else 0
        return f"{whose} watched for {format_duration(seconds)}."

    async def leaderboard(self, ctx: CommandContext) -> str:
        """``!leaderboard`` / ``!top``: the top 5."""
        top = await ctx.bank.top(ctx.channel, LEADERBOARD_SIZE)
        plural = ctx.settings.currency_name_plural
        if not top:
            return f"nobody has any {plural} yet."
        entries = ", ".join(f"#{s.rank} {s.login} ({s.points:,})" for s in top)
        return f"top {plural}: {entries}"

    # -- give

    async def give(self, ctx: CommandContext) -> str:
        """``!give <user> <amount>``: a transfer, refused to self and to unknown viewers."""
        cooldown_key = (ctx.channel, ctx.sender.user_id, "give")
        wait = ctx.cooldowns.remaining(cooldown_key)
        if wait > 0:
            raise OnCooldown("give", wait)
        if len(ctx.args) != 2:
            raise ctx.usage()
        target = parse_login(ctx.args[0])
        amount = _amount(ctx, ctx.args[1])
        if amount > ctx.settings.give_max:
            raise GiveTooLarge(amount, ctx.settings.give_max)
        if target == ctx.sender.login:
            raise SelfTransfer(ctx.sender.login)
        try:
            transfer = await ctx.bank.give(ctx.channel, ctx.sender, target, amount)
        except BalanceTooHigh as exc:
            raise TargetAtMaximum(target, exc.balance) from None
        ctx.cooldowns.start(cooldown_key, ctx.settings.give_cooldown_seconds)
        log.info(
            "chat_points_given",
            channel=ctx.channel,
            sender=ctx.sender.login,
            receiver=transfer.receiver.login,
            amount=transfer.amount,
        )
        moved = ctx.points(transfer.amount)
        text = f"you gave {moved} to {transfer.receiver.login}"
        if transfer.amount != amount:
            text += f" (only {moved} fit under the maximum)"
        return text + f"; you have {ctx.points(transfer.sender.balance)} left."

    # -- moderator commands

    async def addpoints(self, ctx: CommandContext) -> str:
        """``!addpoints <user|all> <amount>``."""
        if len(ctx.args) != 2:
            raise ctx.usage()
        if ctx.args[0].lower() == "all":
            return await self._add_to_everyone(ctx, _amount(ctx, ctx.args[1]))
        target = parse_login(ctx.args[0])
        amount = _amount(ctx, ctx.args[1])
        who = await _known(ctx, target)
        try:
            change = await ctx.bank.credit(
                ctx.channel,
                who,
                amount,
                kind=EntryType.ADD,
                reason="!addpoints",
                actor=ctx.sender.login,
            )
        except BalanceTooHigh as exc:
            raise TargetAtMaximum(who.login, exc.balance) from None
        log.info(
            "chat_points_added",
            channel=ctx.channel,
            actor=ctx.sender.login,
            user=who.login,
            amount=change.applied,
        )
        text = f"gave {who.login} {ctx.points(change.applied)}"
        if change.clamped:
            text += " (all that fit under the maximum)"
        return text + f"; they now have {ctx.points(change.balance)}."

    async def _add_to_everyone(self, ctx: CommandContext, amount: int) -> str:
        """Credit every viewer present now, in one transaction."""
        present = self._present(ctx.channel)
        skip = {*ctx.bank.excluded(ctx.channel), ctx.bot_login, ctx.channel}
        viewers = list({v.user_id: v for v in present if v.login not in skip}.values())
        plural = ctx.settings.currency_name_plural
        if not viewers:
            return f"nobody is here to receive {plural} right now."
        actor = ctx.sender.login
        credited, full = await ctx.bank.credit_each(
            ctx.channel, viewers, amount, kind=EntryType.ADD, reason="!addpoints all", actor=actor
        )
        log.info(
            "chat_points_added_to_all",
            channel=ctx.channel,
            actor=actor,
            viewers=credited,
            at_maximum=full,
            amount=amount,
        )
        noun = "viewer" if credited == 1 else "viewers"
        text = f"gave {ctx.points(amount)} to each of {credited:,} {noun} here"
        if full:
            text += f" ({full:,} already had the maximum)"
        return text + "."

    async def removepoints(self, ctx: CommandContext) -> str:
        """``!removepoints <user> <amount>``: refused, with the balance, if it is less."""
        if len(ctx.args) != 2:
            raise ctx.usage()
        target = parse_login(ctx.args[0])
        amount = _amount(ctx, ctx.args[1])
        who = await _known(ctx, target)
        try:
            change = await ctx.bank.debit(
                ctx.channel,
                who,
                amount,
                kind=EntryType.REMOVE,
                reason="!removepoints",
                actor=ctx.sender.login,
            )
        except InsufficientPoints as exc:
            raise TargetLacksPoints(who.login, exc.balance, amount) from None
        log.info(
            "chat_points_removed",
            channel=ctx.channel,
            actor=ctx.sender.login,
            user=who.login,
            amount=amount,
        )
        return (
            f"took {ctx.points(amount)} from {who.login}; "
            f"they now have {ctx.points(change.balance)}."
        )

    async def setpoints(self, ctx: CommandContext) -> str:
        """``!setpoints <user> <amount>`` (0 allowed)."""
        if len(ctx.args) != 2:
            raise ctx.usage()
        target = parse_login(ctx.args[0])
        value = _amount(ctx, ctx.args[1], allow_zero=True)
        who = await _known(ctx, target)
        change = await ctx.bank.set_balance(
            ctx.channel, who, value, reason="!setpoints", actor=ctx.sender.login
        )
        log.info(
            "chat_points_set",
            channel=ctx.channel,
            actor=ctx.sender.login,
            user=who.login,
            balance=change.balance,
        )
        return f"{who.login} now has {ctx.points(change.balance)}."


def _amount(ctx: CommandContext, text: str, *, allow_zero: bool = False) -> int:
    """Parse an amount argument; ``!give 5 bob`` (swapped) gets the usage, not a puzzle.

    Raises:
        InvalidAmount, UsageError.
    """
    try:
        return parse_amount(text, allow_zero=allow_zero)
    except InvalidAmount:
        swapped = len(ctx.args) == 2 and ctx.args[1] == text
        if swapped and normalize_login(text) is not None and _is_amount(ctx.args[0]):
            raise ctx.usage() from None
        raise


def _is_amount(text: str) -> bool:
    try:
        parse_amount(text, allow_zero=True)
    except InvalidAmount:
        return False
    return True


async def _known(ctx: CommandContext, login: str) -> Viewer:
    """The viewer a login names in this channel, by exact login.

    Raises:
        UnknownViewer: never seen here.
    """
    record = await ctx.bank.viewer(ctx.channel, login)
    if record is None:
        raise UnknownViewer(login, ctx.channel)
    return record.identity
