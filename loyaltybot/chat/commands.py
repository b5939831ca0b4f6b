"""Chat commands: parse -> handle -> replies, with no network and no twitchio.

``CommandHandler.handle(message)`` takes a parsed ``ChatMessage`` and returns the
``Reply`` objects to send (the outbox sends them within Twitch's limits). Commands live in
a ``CommandRegistry``; other modules add theirs with ``handler.register(Command(...))``
(the rewards module adds ``!votes``).

Decisions this module makes (SPEC §5 leaves them open):

- Read commands (``read_cooldown=True``) answer each user once per
  ``command_cooldown_seconds`` per command; extra calls are ignored silently. Moderators
  and the broadcaster are exempt: they are trusted, and they need quick answers while
  moderating.
- ``!give`` has a ``give_cooldown_seconds`` cooldown per sender and channel, for everyone
  (moderators too: it is a rule about points, not about spam), started only by a transfer
  that happened: a typo or a refused transfer does not lock the sender out. While it
  runs, the reply says how long to wait.
- Refusals are throttled instead: a non-trusted user gets at most one refusal per command
  per ``command_cooldown_seconds``; further failures inside that window are ignored, so a
  spammer cannot turn typos into a flood of bot messages.
- Built-in names win over currency aliases: a currency called "top" does not hide
  ``!top``. ``!addpoints all`` means everyone present; ``!addpoints @all`` means the user
  whose login is "all".
- ``!addpoints all`` leaves out the bot, the broadcaster and the channel's excluded users
  (``Bank.excluded``: ignored users such as nightbot); viewers already at the maximum
  are skipped and counted.
- Write commands take exactly their arguments (``!give bob 1 000`` is refused, not read as
  1); read commands ignore extra words.
- Messages from the bot itself, ``/me`` actions, and messages Shared Chat relays from
  another channel are not commands here.
- Replies start with ``@login,`` (the login, not the display name: it always works as a
  mention and matches SPEC's wording).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar, cast

import structlog

from loyaltybot.chat.cooldowns import Cooldowns
from loyaltybot.chat.message import ChatMessage, Permission, Roles, clean_text
from loyaltybot.chat.replies import (
    APOLOGY,
    ChatError,
    GiveTooLarge,
    InvalidLogin,
    NotAllowed,
    OnCooldown,
    Reply,
    TargetAtMaximum,
    TargetLacksPoints,
    UsageError,
    cut,
    explain,
    format_duration,
    points_text,
)
from loyaltybot.clock import Clock
from loyaltybot.db import Tx
from loyaltybot.points import ledger
from loyaltybot.points.amounts import parse_amount
from loyaltybot.points.bank import Bank
from loyaltybot.points.errors import (
    BalanceTooHigh,
    InsufficientPoints,
    InvalidAmount,
    LoyaltyError,
    SelfTransfer,
    UnknownViewer,
)
from loyaltybot.points.ledger import EntryType
from loyaltybot.points.viewers import Viewer, normalize_login
from loyaltybot.settings import ChannelSettings

log = structlog.get_logger(__name__)

T = TypeVar("T")

PREFIX = "!"
MAX_ARGS = 16
LEADERBOARD_SIZE = 5
_NAME = re.compile(r"\w{1,32}")


# ---- parsing ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Invocation:
    """``!Give @Bob 5`` -> name 'give', args ('@Bob', '5')."""

    name: str
    args: tuple[str, ...]


def parse_invocation(text: str) -> Invocation | None:
    """The command a chat line asks for, or None if it is not a command."""
    text = clean_text(text)
    if not text.startswith(PREFIX):
        return None
    body = text[len(PREFIX) :]
    if not body or body[0].isspace():
        return None
    name, *args = body.split()
    name = name.lower()
    if not _NAME.fullmatch(name):
        return None
    return Invocation(name, tuple(args[:MAX_ARGS]))


def parse_login(text: str) -> str:
    """A user argument: exact login, any case, optional ``@`` (and the ``,`` or ``:`` that
    tab completion leaves after it).

    Raises:
        InvalidLogin: the text cannot be a Twitch login.
    """
    login = normalize_login(text.rstrip(",:"))
    if login is None:
        raise InvalidLogin(text)
    return login


# ---- what commands run against ----------------------------------------------------------


class PresenceSource(Protocol):
    """Who is in a channel right now (earning keeps this)."""

    def present(self, channel: str) -> Sequence[Viewer] | Awaitable[Sequence[Viewer]]: ...


class TitleSource(Protocol):
    """A viewer's unlocked title, shown by ``!points`` (the rewards module keeps these)."""

    def title_of(self, channel: str, user_id: str) -> str | Awaitable[str | None] | None: ...


SettingsFor = Callable[[str], ChannelSettings]


async def _resolved(value: T | Awaitable[T]) -> T:
    if inspect.isawaitable(value):
        return cast(T, await value)
    return value


@dataclass(frozen=True)
class CommandContext:
    """What a command sees: the message, its arguments, the channel's settings, the bank."""

    message: ChatMessage
    command: Command
    args: tuple[str, ...]
    settings: ChannelSettings
    bank: Bank
    cooldowns: Cooldowns
    clock: Clock
    bot_login: str

    @property
    def channel(self) -> str:
        return self.message.channel

    @property
    def sender(self) -> Viewer:
        return self.message.sender

    @property
    def roles(self) -> Roles:
        return self.message.roles

    def require(self, permission: Permission) -> None:
        """Raises NotAllowed unless the sender has ``permission`` (for sub-commands such as
        ``!votes reset``)."""
        if not self.roles.allows(permission):
            raise NotAllowed(self.command.name, permission)

    def usage(self) -> UsageError:
        return UsageError(self.command.usage or f"{PREFIX}{self.command.name}")

    def points(self, amount: int) -> str:
        return points_text(amount, self.settings)


CommandFn = Callable[[CommandContext], Awaitable[str | None]]


@dataclass(frozen=True)
class Command:
    """A chat command. ``run`` returns the reply text (without the @mention) or None for
    no reply, and raises a domain or chat error to refuse."""

    name: str
    run: CommandFn
    aliases: tuple[str, ...] = ()
    permission: Permission = Permission.EVERYONE
    read_cooldown: bool = False  # answer each user once per command_cooldown_seconds
    usage: str = ""
    mention: bool = True  # start the reply with "@sender, "

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


class CommandRegistry:
    """Commands by name and alias, case-insensitive."""

    def __init__(self, commands: Iterable[Command] = ()) -> None:
        self._by_name: dict[str, Command] = {}
        for command in commands:
            self.register(command)

    def register(self, command: Command) -> None:
        """Raises ValueError if a name or alias is taken or malformed."""
        names = [n.lower() for n in command.names]
        for name in names:
            if not _NAME.fullmatch(name):
                raise ValueError(f"command name {name!r} must be 1-32 letters, digits or _")
            if name in self._by_name:
                raise ValueError(f"command !{name} is already registered")
        if len(set(names)) != len(names):
            raise ValueError(f"command !{command.name} lists a name twice")
        for name in names:
            self._by_name[name] = command

    def resolve(self, name: str, settings: ChannelSettings) -> Command | None:
        """The command ``!name`` runs in a channel with these settings; the currency names
        (singular and plural) are aliases of ``!points``."""
        name = name.lower()
        command = self._by_name.get(name)
        if command is None and name in (
            settings.currency_name.lower(),
            settings.currency_name_plural.lower(),
        ):
            command = self._by_name.get("points")
        return command

    def __iter__(self) -> Iterator[Command]:
        seen: dict[str, Command] = {}
        for command in self._by_name.values():
            seen.setdefault(command.name, command)
        return iter(seen.values())


# ---- the handler ------------------------------------------------------------------------


class CommandHandler:
    """Turns chat messages into balance changes and replies."""

    def __init__(
        self,
        bank: Bank,
        *,
        settings_for: SettingsFor,
        presence: PresenceSource,
        clock: Clock,
        bot_login: str,
        titles: TitleSource | None = None,
        cooldowns: Cooldowns | None = None,
    ) -> None:
        self._bank = bank
        self._settings_for = settings_for
        self._clock = clock
        self._bot_login = bot_login.lower()
        self._cooldowns = cooldowns or Cooldowns(clock)
        self.registry = CommandRegistry(_Builtins(presence, titles).commands())

    def register(self, command: Command) -> None:
        """Add a command (e.g. the rewards module's ``!votes``). Raises ValueError on a
        name clash."""
        self.registry.register(command)

    async def handle(self, message: ChatMessage) -> list[Reply]:
        """Run the command in ``message``, if any; return what to say (maybe nothing)."""
        if (
            message.action
            or message.shared_from is not None
            or message.sender.login == self._bot_login
        ):
            return []
        invocation = parse_invocation(message.text)
        if invocation is None:
            return []
        try:
            settings = self._settings_for(message.channel)
        except LookupError:
            log.warning("chat_channel_unknown", channel=message.channel)
            return []
        command = self.registry.resolve(invocation.name, settings)
        if command is None:
            return []

        sender = message.sender
        trusted = message.roles.trusted
        if command.read_cooldown and not trusted:
            key = (message.channel, sender.user_id, command.name)
            if self._cooldowns.try_start(key, settings.command_cooldown_seconds) > 0:
                return []

        ctx = CommandContext(
            message=message,
            command=command,
            args=invocation.args,
            settings=settings,
            bank=self._bank,
            cooldowns=self._cooldowns,
            clock=self._clock,
            bot_login=self._bot_login,
        )
        try:
            if not message.roles.allows(command.permission):
                raise NotAllowed(command.name, command.permission)
            body = await command.run(ctx)
        except (LoyaltyError, ChatError) as exc:
            log.info(
                "chat_command_refused",
                channel=message.channel,
                user=sender.login,
                command=command.name,
                error=type(exc).__name__,
            )
            body = explain(exc, settings)
            if not self._may_refuse(message, command, settings):
                return []
        except Exception:
            log.exception(
                "chat_command_failed",
                channel=message.channel,
                user=sender.login,
                command=command.name,
            )
            body = APOLOGY
            if not self._may_refuse(message, command, settings):
                return []
        if body is None:
            return []
        text = f"@{sender.login}, {body}" if command.mention else body
        return [Reply(message.channel, cut(text), message.message_id, message.received_at)]

    def _may_refuse(
        self, message: ChatMessage, command: Command, settings: ChannelSettings
    ) -> bool:
        """At most one refusal per user and command per command cooldown (trusted: always)."""
        if message.roles.trusted:
            return True
        key = (message.channel, message.sender.user_id, command.name, "refused")
        return self._cooldowns.try_start(key, settings.command_cooldown_seconds) <= 0


# ---- the built-in commands --------------------------------------------------------------


class _Builtins:
    def __init__(self, presence: PresenceSource, titles: TitleSource | None) -> None:
        self._presence = presence
        self._titles = titles

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
        if self._titles is not None:
            title = await _resolved(self._titles.title_of(ctx.channel, user_id))
            if title:
                text += f" · title: {title}"
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
        present = await _resolved(self._presence.present(ctx.channel))
        skip = {*ctx.bank.excluded(ctx.channel), ctx.bot_login, ctx.channel}
        viewers = list({v.user_id: v for v in present if v.login not in skip}.values())
        plural = ctx.settings.currency_name_plural
        if not viewers:
            return f"nobody is here to receive {plural} right now."
        channel_id = ctx.bank.channel_id(ctx.channel)
        actor = ctx.sender.login

        def run(tx: Tx) -> tuple[int, int]:
            credited = full = 0
            for viewer in viewers:
                try:
                    ledger.credit(
                        tx,
                        channel_id,
                        viewer,
                        amount,
                        kind=EntryType.ADD,
                        reason="!addpoints all",
                        actor=actor,
                    )
                except BalanceTooHigh:
                    full += 1
                else:
                    credited += 1
            return credited, full

        credited, full = await ctx.bank.store.write(run)
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
