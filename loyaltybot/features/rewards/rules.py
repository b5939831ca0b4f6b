"""The rules of channel-point rewards (SPEC §6), as pure functions: which configured reward
a redemption is, and how untrusted text becomes one safe chat line.

User input is untrusted: it is cut, stripped of control characters and substituted in one
pass, never interpreted.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Final

from loyaltybot.config import RewardConfig
from loyaltybot.points.amounts import format_points

MAX_INPUT_CHARS: Final = 200  # Twitch's own limit on redemption input
MAX_OPTION_CHARS: Final = 40
MAX_OPTIONS_PER_POLL: Final = 50
MAX_CHAT_CHARS: Final = 500


class Status(enum.StrEnum):
    """Where a redemption stands (the ``redemptions.status`` column)."""

    UNMATCHED = "unmatched"
    QUEUED = "queued"
    PENDING = "pending"
    FULFILLED = "fulfilled"
    CANCELED = "canceled"


def needs_input(reward: RewardConfig) -> bool:
    """Ask the viewer for text when the action uses it."""
    return reward.action == "vote" or bool(reward.prompt) or "{input}" in (reward.message or "")


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


_SPACES = re.compile(r"\s+")
_PLACEHOLDER = re.compile(r"\{(user|input|reward|balance)\}")


def clean_text(text: str, limit: int = MAX_INPUT_CHARS) -> str:
    """Untrusted text made safe to show in one chat line: control and format characters
    become spaces, runs of whitespace collapse, and it is cut to ``limit``."""
    text = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in text[: limit * 4])
    return _SPACES.sub(" ", text).strip()[:limit]


def normalize_option(text: str) -> str | None:
    """A vote option as it is counted: 'Tetris ', 'TETRIS' and 'tetris' are one option."""
    option = clean_text(unicodedata.normalize("NFKC", text), MAX_OPTION_CHARS * 2).casefold()
    option = option[:MAX_OPTION_CHARS].strip()
    return option or None


def render(template: str, values: Mapping[str, str]) -> str:
    """Fill ``{user}``, ``{input}``, ``{reward}``, ``{balance}`` in one pass.

    Substituted values are never read again, so input containing ``{balance}`` stays
    text; any other braces in the template are left as written.
    """
    return chat_line(_PLACEHOLDER.sub(lambda m: values.get(m[1], m[0]), template))


def chat_line(text: str) -> str:
    """One safe chat line: no line breaks, no leading ``/`` or ``.`` (chat commands), at
    most 500 characters."""
    return clean_text(text, MAX_CHAT_CHARS * 2).lstrip("/. ")[:MAX_CHAT_CHARS]


def format_wait(seconds: float) -> str:
    seconds = max(1, int(seconds + 0.999))
    if seconds < 120:
        return f"{seconds} s"
    minutes = (seconds + 59) // 60
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"




def template_values(user: str, user_input: str, reward: str, balance: int) -> dict[str, str]:
    """What ``{user}``, ``{input}``, ``{reward}`` and ``{balance}`` stand for, made safe."""
    return {
        "user": clean_text(user, 50),
        "input": clean_text(user_input),
        "reward": clean_text(reward, 100),
        "balance": format_points(balance),
    }
