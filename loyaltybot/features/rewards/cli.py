"""``loyaltybot rewards sync``: create the configured rewards on Twitch so the bot owns them.

Twitch lets a client mark redemptions FULFILLED or CANCELED only for rewards that same
client created. This command creates each configured reward the channel does not have
yet (as the broadcaster, with the broadcaster's token), and records every reward our
client manages in ``owned_rewards`` so the daemon knows which redemptions it may settle.
A reward made by hand in the Twitch dashboard under the same title cannot be taken
over: the command says so, and the daemon still acts on its redemptions without
settling them.
"""

from __future__ import annotations

import argparse

from loyaltybot.cli.common import (
    EXIT_FAIL,
    EXIT_OK,
    CliCommand,
    CliError,
    channel_of,
    config_of,
    opened,
    twitch,
)
from loyaltybot.config import RewardConfig
from loyaltybot.features.rewards import channel_points
from loyaltybot.features.rewards.channel_points import TwitchReward
from loyaltybot.features.rewards.rules import match, needs_input
from loyaltybot.features.rewards.service import Rewards
from loyaltybot.twitch.clients import TwitchClients
from loyaltybot.twitch.helix import HelixError
from loyaltybot.twitch.oauth import TokenError


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("sync",), help="sync: create the configured rewards")
    p.add_argument("--channel", help="only this channel")


async def cmd_rewards(args: argparse.Namespace) -> int:
    config = config_of(args)
    failures = 0
    async with opened(config) as db, twitch(config, db.store) as clients:
        rewards = Rewards(
            db.bank, db.store, {c: cfg.rewards for c, cfg in config.channels.items()}
        )
        if args.channel:
            channels = [channel_of(config, db.bank, args.channel)]
        else:
            channels = [c for c, cfg in config.channels.items() if cfg.rewards]
            if not channels:
                raise CliError(f"no channel in {config.path} has [[channels.<login>.rewards]]")
        for channel in channels:
            failures += await _sync_channel(clients, rewards, channel)
    return EXIT_FAIL if failures else EXIT_OK


async def _sync_channel(clients: TwitchClients, rewards: Rewards, channel: str) -> int:
    """Sync one channel; prints a line per reward and returns the number of failures."""
    wanted = rewards.configured(channel)
    if not wanted:
        print(f"#{channel}: no rewards configured")
        return 0
    try:
        helix = await clients.account(channel)
    except TokenError as exc:
        raise CliError(str(exc)) from None
    if helix is None:
        print(
            f"#{channel}: no broadcaster token: set channels.{channel}.broadcaster_token"
            f" or run `loyaltybot auth --channel {channel}`"
        )
        return 1
    try:
        owner = await channel_points.token_user(helix)
        if owner.login != channel:
            print(f"#{channel}: the broadcaster token belongs to {owner.login}, not {channel}")
            return 1
        have = await channel_points.manageable_rewards(helix, owner.id)
    except HelixError as exc:
        print(f"#{channel}: cannot read the channel's rewards: {exc}")
        return 1
    failures = 0
    for reward in wanted:
        found = _find(have, reward)
        if found is not None:
            print(f"#{channel}: {reward.title!r} is already ours (id {found.id})")
            continue
        if reward.id is not None:
            print(
                f"#{channel}: {reward.title!r} names id {reward.id}, which this app did not"
                " create: its redemptions are acted on but never marked fulfilled or canceled"
            )
            continue
        try:
            made = await channel_points.create_reward(
                helix,
                owner.id,
                title=reward.title,
                cost=reward.twitch_cost,
                prompt=reward.prompt,
                input_required=needs_input(reward),
            )
        except HelixError as exc:
            failures += 1
            hint = (
                " (a reward with this title exists, made in the Twitch dashboard: delete it"
                " there and run this again to let the bot own it)"
                if exc.status == 400
                else ""
            )
            print(f"#{channel}: could not create {reward.title!r}: {exc.message}{hint}")
            continue
        have.append(made)
        print(f"#{channel}: created {reward.title!r} (id {made.id})")
    await rewards.set_owned(channel, [(r.id, r.title) for r in have], replace=True)
    return failures


def _find(have: list[TwitchReward], reward: RewardConfig) -> TwitchReward | None:
    """The reward on Twitch that this configured reward means (as redemptions match it)."""
    return next((r for r in have if match([reward], r.id, r.title) is not None), None)


COMMAND = CliCommand("rewards", "channel-point rewards on Twitch", cmd_rewards, arguments)
