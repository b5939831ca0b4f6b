"""The rules of channel-point rewards (SPEC §6), as pure functions: which configured reward
a redemption is, and what a vote counts. Templates and safe chat lines are the core's
(``loyaltybot.actions.text``): the shop's items use them too.
"""

from __future__ import annotations

import enum
import unicodedata
from collections.abc import Iterable
from typing import Final

from loyaltybot.actions.text import clean_text, uses_input
from loyaltybot.config import RewardConfig

MAX_OPTION_CHARS: Final = 40
MAX_OPTIONS_PER_POLL: Final = 50


class Status(enum.StrEnum):
    """Where a redemption stands (the ``redemptions.status`` column)."""

    UNMATCHED = "unmatched"
    QUEUED = "queued"
    PENDING = "pending"
    FULFILLED = "fulfilled"
    CANCELED = "canceled"


def needs_input(reward: RewardConfig) -> bool:
    """Ask the viewer for text when the action uses it."""
    return reward.action == "vote" or bool(reward.prompt) or uses_input(reward.message)


def reward_key(reward: RewardConfig) -> str:
    """The stable name of a configured reward (cooldowns, polls)."""
    return reward.title.casefold()


def match(rewards: Iterable[RewardConfig], reward_id: str, title: str) -> RewardConfig | None:
    """The configured reward: by ``id`` when the config gives one, else by exact title
    (case-insensitive)."""
    folded = title.casefold()
    for candidate in rewards:
        if candidate.id is not None:
            if candidate.id == reward_id:
                return candidate
        elif candidate.title.casefold() == folded:
            return candidate
    return None


def normalize_option(text: str) -> str | None:
    """A vote option as it is counted: 'Tetris ', 'TETRIS' and 'tetris' are one option."""
    option = clean_text(unicodedata.normalize("NFKC", text), MAX_OPTION_CHARS * 2).casefold()
    option = option[:MAX_OPTION_CHARS].strip()
    return option or None
