"""The rules of levels: which level a watch time reaches, and what is left to the next.

Levels are ``[[channels.<login>.levels]]`` tables, ``name`` and ``watch_hours``, in
ascending order (SPEC §10.5; ``config.LevelConfig`` validates them, with key paths). A
viewer is at the highest level whose watch time they have reached; below the first one
they have no level yet.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction


@dataclass(frozen=True)
class Level:
    name: str
    watch_hours: float

    @property
    def watch_seconds(self) -> int:
        """The threshold in whole seconds: hours as written (1.1 is 3,960 s), rounded up."""
        hours = Fraction(Decimal(str(self.watch_hours)))
        return math.ceil(hours * 3600)


@dataclass(frozen=True)
class Standing:
    """A viewer's ``current`` level (None below the first), the ``next`` one (None at the
    top) and ``seconds_to_next`` (None at the top; always >= 1 otherwise)."""

    current: Level | None
    next: Level | None
    seconds_to_next: int | None


def level_for(watch_seconds: int | float, levels: Sequence[Level]) -> Standing:
    """The level reached with ``watch_seconds`` of watch time.

    ``levels`` should have passed :func:`validate_levels`; they are ordered by threshold
    here anyway (a stable sort), so a list in another order still gives the right answer.
    """
    current: Level | None = None
    for level in sorted(levels, key=lambda lv: lv.watch_seconds):
        if watch_seconds >= level.watch_seconds:
            current = level
        else:
            return Standing(current, level, math.ceil(level.watch_seconds - watch_seconds))
    return Standing(current, None, None)
