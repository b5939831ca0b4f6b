"""``!level [user]``: a viewer's level and the watch time to the next (a read command)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from loyaltybot.chat.registry import Command, CommandContext, parse_login
from loyaltybot.chat.replies import format_duration
from loyaltybot.features.levels.rules import Level, level_for
from loyaltybot.points.errors import UnknownViewer

LevelsOf = Callable[[str], Sequence[Level]]
"""channel -> its levels, lowest first (empty: the channel has none)."""


def level_command(levels_of: LevelsOf) -> Command:
    async def run(ctx: CommandContext) -> str:
        levels = levels_of(ctx.channel)
        if not levels:
            return "this channel has no levels."
        login = parse_login(ctx.args[0]) if ctx.args else ctx.sender.login
        if login == ctx.sender.login:
            record = await ctx.bank.viewer_by_id(ctx.channel, ctx.sender.user_id)
            who, be, have = "you", "are", "you have"
        else:
            record = await ctx.bank.viewer(ctx.channel, login)
            if record is None:
                raise UnknownViewer(login, ctx.channel)
            who, be, have = record.login, "is", f"{record.login} has"
        watched = record.watch_seconds if record is not None else 0
        standing = level_for(watched, levels)
        text = f"{who} {be} {standing.current.name}" if standing.current else f"{have} no level yet"
        text += f" ({format_duration(watched)} watched)"
        if standing.next is None or standing.seconds_to_next is None:
            return text + ", the highest level."
        return text + f"; {format_duration(standing.seconds_to_next)} more to {standing.next.name}."

    return Command("level", run, read_cooldown=True, usage="!level [user]")
