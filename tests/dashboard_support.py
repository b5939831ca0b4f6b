"""The features whose pages the dashboard shows, as the daemon builds them, for tests that
serve the web edge without chat or EventSub (nobody present, chat lines never sent)."""

from __future__ import annotations

import aiohttp

from loyaltybot.config import Config
from loyaltybot.db import Store
from loyaltybot.features import Feature
from loyaltybot.features.rewards.feature import RewardsFeature
from loyaltybot.features.votes.feature import VotesFeature
from loyaltybot.features.wallet.feature import Wallet
from loyaltybot.points.bank import Bank


async def nowhere(channel: str, text: str) -> bool:
    """A chat that never takes a line (the jobs stay pending)."""
    return False


def dashboard_features(
    bank: Bank, store: Store, config: Config, session: aiohttp.ClientSession
) -> list[Feature]:
    """Wallet, rewards and votes, in the daemon's order (the rewards feature second)."""
    rewards = RewardsFeature(
        config=config,
        bank=bank,
        store=store,
        session=session,
        chat=nowhere,
        helix_for=lambda channel: None,
    )
    return [Wallet(present=lambda channel: []), rewards, VotesFeature(bank=bank, store=store)]


def rewards_of(features: list[Feature]) -> RewardsFeature:
    return next(f for f in features if isinstance(f, RewardsFeature))
