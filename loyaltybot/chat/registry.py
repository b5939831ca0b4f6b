"""The command registry: parse -> handle -> replies, with no network and no twitchio.

``CommandHandler.handle(message)`` takes a parsed ``ChatMessage`` and returns the
``Reply`` objects to send (the outbox sends them within Twitch's limits). Commands are
registered by the features (``Feature.commands()``); this module knows none of them.

Decisions this module makes (SPEC §5 leaves them open):

- Read commands (``read_cooldown=True``) answer each user once per
  ``command_cooldown_seconds`` per command; extra calls are ignored silently. Moderators
  and the broadcaster are exempt: they are trusted, and they need quick answers while
  moderating.
- Refusals are throttled: a non-trusted user gets at most one refusal per command per
  ``command_cooldown_seconds``; further failures inside that window are ignored, so a
  spammer cannot turn typos into a flood of bot messages.
- Refusals are errors that carry data. ``replies.explain`` words the core's and the chat
  layer's; a feature hands its own renderers (``add_renderer``) for its own errors.
- Built-in names win over currency aliases: a currency called "top" does not hide
  ``!top``.
- Messages from the bot itself, ``/me`` actions, and messages Shared Chat relays from
  another channel are not commands here.
- Replies start with ``@login,`` (the login, not the display name: it always works as a
  mention and matches SPEC's wording).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import structlog

from loyaltybot.chat.cooldowns import Cooldowns
from loyaltybot.chat.message import ChatMessage, Permission, Roles, clean_text
from loyaltybot.chat.replies import (
    APOLOGY,
    ChatError,
    InvalidLogin,
    NotAllowed,
    Reply,
    UsageError,
    cut,
    explain,
    points_text,
)
from loyaltybot.clock import Clock
from loyaltybot.points.bank import Bank
from loyaltybot.points.errors import (
    LoyaltyError,
)
from loyaltybot.points.viewers import Viewer, normalize_login
from loyaltybot.settings import ChannelSettings

log = structlog.get_logger(__name__)


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


SettingsFor = Callable[[str], ChannelSettings]
ErrorRenderer = tuple[type[BaseException], Callable[[Any, ChannelSettings], str]]
"""(error class, words for it): a feature's refusal as one short chat sentence."""


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
        clock: Clock,
        bot_login: str,
        commands: Iterable[Command] = (),
        cooldowns: Cooldowns | None = None,
    ) -> None:
        self._bank = bank
        self._settings_for = settings_for
        self._clock = clock
        self._bot_login = bot_login.lower()
        self._cooldowns = cooldowns or Cooldowns(clock)
        self.registry = CommandRegistry(commands)
        self._renderers: list[ErrorRenderer] = []

    def register(self, command: Command) -> None:
        """Add a command. Raises ValueError on a name clash."""
        self.registry.register(command)

    def add_renderer(self, renderer: ErrorRenderer) -> None:
        """How to word a feature's own refusal (tried before the core's wording)."""
        self._renderers.append(renderer)

    def explain(self, exc: BaseException, settings: ChannelSettings) -> str:
        for kind, words in self._renderers:
            if isinstance(exc, kind):
                return words(exc, settings)
        return explain(exc, settings)

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
            body = self.explain(exc, settings)
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
