"""The levels feature as the daemon registers it.

What it offers the others goes through the daemon: ``badge`` for ``!points`` (the
wallet's badges) and ``level_name`` for the dashboard's viewers page (the wallet's
columns), so the wallet never imports this feature.
"""

from __future__ import annotations

from collections.abc import Sequence

from loyaltybot.chat.registry import Command
from loyaltybot.config import Config
from loyaltybot.features import Feature
from loyaltybot.features.levels.commands import level_command
from loyaltybot.features.levels.rules import Level, level_for
from loyaltybot.points.bank import Bank
from loyaltybot.points.history import ViewerRow


class LevelsFeature(Feature):
    name = "levels"

    def __init__(self, *, config: Config, bank: Bank) -> None:
        self._bank = bank
        self._levels: dict[str, tuple[Level, ...]] = {}
        self._set(config)

    def commands(self) -> Sequence[Command]:
        return (level_command(self.levels),)

    async def apply(self, config: Config) -> None:
        self._set(config)

    def levels(self, channel: str) -> Sequence[Level]:
        return self._levels.get(channel, ())

    async def badge(self, channel: str, user_id: str) -> str | None:
        """What ``!points`` adds: ``level: Regular`` (nothing below the first level)."""
        if not self.levels(channel):
            return None
        record = await self._bank.viewer_by_id(channel, user_id)
        standing = level_for(record.watch_seconds if record else 0, self.levels(channel))
        return f"level: {standing.current.name}" if standing.current else None

    def level_name(self, channel: str, record: ViewerRow) -> str | None:
        """The viewers page's Level column: the name, "" below the first level, None when
        the channel has no levels (no column)."""
        levels = self.levels(channel)
        if not levels:
            return None
        current = level_for(record.watch_seconds, levels).current
        return current.name if current else ""

    def _set(self, config: Config) -> None:
        self._levels = {
            channel: tuple(Level(lv.name, lv.watch_hours) for lv in cfg.levels)
            for channel, cfg in config.channels.items()
        }
