"""The rules of levels: which level a watch time reaches, and what is left to the next.

Levels are ``[[channels.<login>.levels]]`` tables, ``name`` and ``watch_hours``, in
ascending order (SPEC §10.5). A viewer is at the highest level whose watch time they
have reached; below the first one they have no level yet.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

NAME_MAX_CHARS = 50
MAX_WATCH_HOURS = 1_000_000  # about 114 years: anything above is a typo


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


def levels_from(tables: Sequence[Mapping[str, Any]]) -> list[Level]:
    """Levels from validated tables.

    Raises:
        ValueError: the tables have problems (report them with :func:`validate_levels`).
    """
    problems = validate_levels(tables)
    if problems:
        raise ValueError("; ".join(f"{key}: {problem}" for key, problem in problems))
    return [Level(t["name"].strip(), t["watch_hours"]) for t in tables]


def validate_levels(tables: Any) -> list[tuple[str, str]]:
    """Every problem of a levels list, as ``(key, problem)``; empty when valid.

    Keys are relative to the list: ``[2].watch_hours``. Names: non-empty text of at most
    50 characters, unique case-insensitively. ``watch_hours``: a number from 0 (a level
    everybody has) up; each level's strictly above the one before (an equal threshold
    would make a level nobody can hold).
    """
    problems: list[tuple[str, str]] = []
    if not isinstance(tables, list | tuple):
        return [("", "must be a list of tables")]
    names: dict[str, int] = {}
    previous: Fraction | None = None
    for i, table in enumerate(tables):
        where = f"[{i}]"
        if not isinstance(table, Mapping):
            problems.append((where, "must be a table"))
            continue
        for key in table:
            if key not in ("name", "watch_hours"):
                problems.append((f"{where}.{key}", "unknown key"))
        name = table.get("name")
        if not isinstance(name, str) or not name.strip():
            problems.append((f"{where}.name", "must be a non-empty string"))
        elif len(name.strip()) > NAME_MAX_CHARS:
            problems.append((f"{where}.name", f"must be at most {NAME_MAX_CHARS} characters"))
        elif name.strip().casefold() in names:
            first = names[name.strip().casefold()]
            problems.append((f"{where}.name", f"is the same as the name of level [{first}]"))
        else:
            names[name.strip().casefold()] = i
        hours = _hours(table.get("watch_hours"))
        if hours is None:
            problems.append((f"{where}.watch_hours",
                             f"must be a number from 0 to {MAX_WATCH_HOURS:,}"))
            continue
        if previous is not None and hours <= previous:
            problems.append((f"{where}.watch_hours",
                             "must be more than the watch_hours of the level before"))
        previous = hours
    return problems


def _hours(value: Any) -> Fraction | None:
    if type(value) not in (int, float) or not math.isfinite(value):
        return None
    try:
        hours = Fraction(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return None
    return hours if 0 <= hours <= MAX_WATCH_HOURS else None
