"""Twitch chat: parsed messages, commands, replies and the rate-limited outbox.

Everything here is pure or asyncio-only; the twitchio adapter (``chat/irc.py``) only
translates between IRC and these types.
"""

from loyaltybot.chat.commands import (
    Command,
    CommandContext,
    CommandHandler,
    CommandRegistry,
    PresenceSource,
    TitleSource,
)
from loyaltybot.chat.message import ChatMessage, MalformedMessage, Permission, Roles, parse_privmsg
from loyaltybot.chat.outbox import BotRole, Outbox, OutboxCounters, SendLimits, SendSchedule
from loyaltybot.chat.replies import Reply

__all__ = [
    "BotRole",
    "ChatMessage",
    "Command",
    "CommandContext",
    "CommandHandler",
    "CommandRegistry",
    "MalformedMessage",
    "Outbox",
    "OutboxCounters",
    "Permission",
    "PresenceSource",
    "Reply",
    "Roles",
    "SendLimits",
    "SendSchedule",
    "TitleSource",
    "parse_privmsg",
]
