"""Chat, the edge: Twitch IRC in, rate-limited replies out.

What lives here: parsing messages (``message``), the command registry and its handler
(``registry``), the reply renderer (``replies``), cooldowns, the outbox that keeps
Twitch's send limits (``outbox``), a burst said in one line (``summaries``), and the
twitchio adapter (``client``), which only
translates between IRC and these types. What may not: any feature. The commands
themselves are the features'; they register them here.
"""

from loyaltybot.chat.message import ChatMessage, MalformedMessage, Permission, Roles, parse_privmsg
from loyaltybot.chat.outbox import BotRole, Outbox, OutboxCounters, SendLimits, SendSchedule
from loyaltybot.chat.registry import (
    Command,
    CommandContext,
    CommandHandler,
    CommandRegistry,
)
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
    "Reply",
    "Roles",
    "SendLimits",
    "SendSchedule",
    "parse_privmsg",
]
