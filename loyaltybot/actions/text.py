"""Templates and chat lines for actions, as pure functions.

User input is untrusted: it is cut, stripped of control characters and substituted in one
pass, never interpreted.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Final

from loyaltybot.points.amounts import format_points

MAX_INPUT_CHARS: Final = 200  # Twitch's own limit on redemption input
MAX_CHAT_CHARS: Final = 500
MAX_DISCORD_CHARS: Final = 2000  # Discord's limit on a message's content

_SPACES = re.compile(r"\s+")
_PLACEHOLDER = re.compile(r"\{(user|input|reward|balance)\}")


def clean_text(text: str, limit: int = MAX_INPUT_CHARS) -> str:
    """Untrusted text made safe to show in one chat line: control and format characters
    become spaces, runs of whitespace collapse, and it is cut to ``limit``."""
    text = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in text[: limit * 4])
    return _SPACES.sub(" ", text).strip()[:limit]


def fill(template: str, values: Mapping[str, str]) -> str:
    """``{user}``, ``{input}``, ``{reward}``, ``{balance}`` filled in one pass.

    Substituted values are never read again, so input containing ``{balance}`` stays
    text; any other braces in the template are left as written."""
    return _PLACEHOLDER.sub(lambda m: values.get(m[1], m[0]), template)


def render(template: str, values: Mapping[str, str]) -> str:
    """A template filled (see :func:`fill`) as one safe chat line."""
    return chat_line(fill(template, values))


def chat_line(text: str) -> str:
    """One safe chat line: no line breaks, no leading ``/`` or ``.`` (chat commands), at
    most 500 characters."""
    return clean_text(text, MAX_CHAT_CHARS * 2).lstrip("/. ")[:MAX_CHAT_CHARS]


def discord_text(template: str, values: Mapping[str, str]) -> str:
    """A template filled as one Discord message: one line, at most 2,000 characters.
    (Mentions in it never ping anyone: the delivery turns them off.)"""
    return clean_text(fill(template, values), MAX_DISCORD_CHARS)


def uses_input(template: str | None) -> bool:
    """Whether a template shows what the viewer typed (so the viewer must type something)."""
    return template is not None and "{input}" in template


def format_wait(seconds: float) -> str:
    """A wait as people read it, rounded up: '45 s', '3 min', '2 h 5 min'."""
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
