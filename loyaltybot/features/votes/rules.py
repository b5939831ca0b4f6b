"""How a tally reads in chat, as a pure function."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from loyaltybot.points.amounts import format_points

MAX_CHAT_CHARS = 500


@dataclass(frozen=True, slots=True)
class Poll:
    """One vote reward's tally."""

    title: str
    options: tuple[tuple[str, int], ...]  # (option, votes), most votes first

    @property
    def total(self) -> int:
        return sum(count for _, count in self.options)


def format_tally(found: Sequence[Poll], limit: int = MAX_CHAT_CHARS) -> str:
    """Every poll on one line, most votes first, cut to ``limit``."""
    if not found or all(not poll.options for poll in found):
        return "No votes yet."
    parts = []
    for poll in found:
        options = ", ".join(f"{option} {format_points(count)}" for option, count in poll.options)
        parts.append(f"{poll.title}: {options}")
    text = " | ".join(parts)
    return text if len(text) <= limit else text[: limit - 1].rstrip(" ,|") + "…"
