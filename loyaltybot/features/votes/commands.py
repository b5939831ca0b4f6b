"""``!votes`` shows the tally; ``!votes reset`` (moderators and the broadcaster) clears it."""

from __future__ import annotations

from loyaltybot.chat.message import Permission
from loyaltybot.chat.registry import Command, CommandContext
from loyaltybot.features.votes.rules import format_tally
from loyaltybot.features.votes.service import Votes


async def votes_command(votes: Votes, channel: str, args: str, *, is_moderator: bool) -> str:
    """The reply to ``!votes <args>``."""
    words = args.split()
    if not words:
        return format_tally(await votes.tally(channel))
    if words[0].lower() == "reset" and len(words) == 1:
        if not is_moderator:
            return "Only moderators can reset the votes."
        removed = await votes.reset(channel)
        return "Votes reset." if removed else "There were no votes to reset."
    return "Usage: !votes, or !votes reset (moderators)."


def votes_chat_command(votes: Votes) -> Command:
    async def run(ctx: CommandContext) -> str:
        if ctx.args and ctx.args[0].lower() == "reset":
            ctx.require(Permission.MODERATOR)
        return await votes_command(
            votes, ctx.channel, " ".join(ctx.args), is_moderator=ctx.roles.trusted
        )

    return Command("votes", run, read_cooldown=True, usage="!votes, or !votes reset (moderators)")
