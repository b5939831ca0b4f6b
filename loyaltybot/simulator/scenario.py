"""A ready-made world for ``loyaltybot demo`` and ``python -m loyaltybot.simulator``.

Channels with the bot as moderator, a broadcaster token per channel (the scopes the
daemon needs for rewards, subscriptions and chatters), a bot token, live streams and a
crowd per channel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from loyaltybot.simulator.crowd import Crowd
from loyaltybot.simulator.server import BOT_SCOPES, BROADCASTER_SCOPES, Simulator


@dataclass(slots=True)
class DemoWorld:
    bot_login: str
    bot_token: str
    broadcaster_tokens: dict[str, str] = field(default_factory=dict)
    crowds: list[Crowd] = field(default_factory=list)


async def populate_demo(
    sim: Simulator,
    channels: Sequence[str] = ("alice",),
    *,
    bot_login: str = "mybot",
    bot_role: Literal["none", "vip", "moderator"] = "moderator",
    viewers: int = 200,
    rate: float = 2.0,
    seed: int = 0,
    live: bool = True,
    start_crowds: bool = True,
) -> DemoWorld:
    """Fill ``sim`` (already started) and start a crowd per channel (stopped by ``sim.close``)."""
    sim.add_user(bot_login)
    world = DemoWorld(bot_login, sim.issue_token(bot_login, BOT_SCOPES, expires_in=30 * 86400))
    for n, name in enumerate(channels):
        sim.add_channel(name, bot_login=bot_login, bot_role=bot_role)
        world.broadcaster_tokens[name] = sim.issue_token(
            name, BROADCASTER_SCOPES, expires_in=30 * 86400
        )
        if live:
            sim.set_live(name, True)
        crowd = Crowd(sim, name, viewers=viewers, rate=rate, seed=seed + n)
        crowd.populate()
        world.crowds.append(crowd)
        if start_crowds:
            await crowd.start()
    return world
