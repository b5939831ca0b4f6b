"""Per-channel loyalty settings, and who owns each one.

A setting written in config.toml is owned by the file: it is applied on every start and
reload and shown read-only on the dashboard. A setting not in the file is owned by the
dashboard. One model validates both, so the file and the form accept the same values.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from loyaltybot.db import Store, Tx
from loyaltybot.points.amounts import MAX_POINTS
from loyaltybot.points.errors import UnknownChannel

if TYPE_CHECKING:  # config.py builds on this module
    from loyaltybot.config import Config

Owner = Literal["file", "dashboard"]

_WORD = r"^\w{1,25}$"  # a currency name is also a chat command: !cookie


class ChannelSettings(BaseModel):
    """The loyalty settings of one channel, with the defaults a new channel starts from."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    currency_name: str = Field("point", pattern=_WORD)
    currency_name_plural: str = Field("points", pattern=_WORD)
    points_per_interval: int = Field(10, ge=0, le=1_000_000)
    interval_minutes: float = Field(5.0, gt=0, le=1440)
    subscriber_multiplier: float = Field(1.5, ge=0, le=100)
    active_bonus: int = Field(0, ge=0, le=1_000_000)
    enable_offline: bool = False
    min_watchtime_minutes: float = Field(0.0, ge=0, le=525_600)
    give_max: int = Field(1_000_000, ge=1, le=MAX_POINTS)
    give_cooldown_seconds: float = Field(30.0, ge=0, le=86_400)
    command_cooldown_seconds: float = Field(5.0, ge=0, le=3_600)
    follow_bonus: int = Field(0, ge=0, le=MAX_POINTS)
    sub_bonus_tier1: int = Field(0, ge=0, le=MAX_POINTS)
    sub_bonus_tier2: int = Field(0, ge=0, le=MAX_POINTS)
    sub_bonus_tier3: int = Field(0, ge=0, le=MAX_POINTS)
    gift_bonus: int = Field(0, ge=0, le=MAX_POINTS)
    cheer_bonus_per_100: int = Field(0, ge=0, le=MAX_POINTS)
    raid_bonus: int = Field(0, ge=0, le=MAX_POINTS)
    giveaway_ticket_cost: int = Field(0, ge=0, le=MAX_POINTS)  # 0 = free entry, one ticket
    giveaway_max_tickets: int = Field(1, ge=1, le=1_000_000)  # per viewer
    giveaway_subscriber_luck: float = Field(1.0, ge=1, le=10)  # a subscriber's ticket weighs this
    contest_min_bet: int = Field(1, ge=1, le=MAX_POINTS)
    contest_max_bet: int = Field(1_000_000, ge=1, le=MAX_POINTS)  # per viewer, per contest
    contest_close_after_seconds: float = Field(0.0, ge=0, le=86_400)  # 0 = until a mod closes

    @property
    def subscriber_points(self) -> int:
        """floor(points_per_interval * subscriber_multiplier), exactly as SPEC §4 says."""
        return int(self.points_per_interval * self.subscriber_multiplier)

    def currency(self, amount: int) -> str:
        return self.currency_name if amount == 1 else self.currency_name_plural


SETTING_KEYS: tuple[str, ...] = tuple(ChannelSettings.model_fields)


@dataclass(frozen=True)
class StoredSettings:
    values: ChannelSettings
    owners: Mapping[str, Owner]  # only keys that have a stored value

    def owner(self, key: str) -> Owner:
        return self.owners.get(key, "dashboard")


def load(conn: sqlite3.Connection, channel_id: int) -> StoredSettings:
    """Defaults overlaid with what is stored; a stored value that no longer validates
    (an older version's) falls back to the default rather than stopping the bot."""
    rows = conn.execute(
        "SELECT key, value, owner FROM channel_settings WHERE channel_id = ?", (channel_id,)
    ).fetchall()
    values: dict[str, Any] = {}
    owners: dict[str, Owner] = {}
    for key, raw, owner in rows:
        if key in ChannelSettings.model_fields:
            values[key] = json.loads(raw)
            owners[key] = owner
    try:
        model = ChannelSettings.model_validate(values)
    except ValueError:
        model = ChannelSettings.model_validate(
            {k: v for k, v in values.items() if _valid_alone(k, v)}
        )
    return StoredSettings(model, owners)


def _valid_alone(key: str, value: Any) -> bool:
    try:
        ChannelSettings.model_validate({key: value})
    except ValueError:
        return False
    return True


def apply_file(tx: Tx, *, channel_id: int, from_file: Mapping[str, Any]) -> None:
    """Make the file's values stored and file-owned; hand keys the file no longer sets
    back to the dashboard, keeping their last value."""
    conn = tx.conn
    for key, value in from_file.items():
        conn.execute(
            "INSERT INTO channel_settings (channel_id, key, value, owner, updated_at, updated_by)"
            " VALUES (?, ?, ?, 'file', ?, 'config')"
            " ON CONFLICT (channel_id, key) DO UPDATE SET value = excluded.value,"
            "  owner = 'file', updated_at = excluded.updated_at, updated_by = 'config'"
            " WHERE value <> excluded.value OR owner <> 'file'",
            (channel_id, key, json.dumps(value), tx.now_ms),
        )
    placeholders = ",".join("?" * len(from_file))
    conn.execute(
        "UPDATE channel_settings SET owner = 'dashboard' WHERE channel_id = ? AND owner = 'file'"
        + (f" AND key NOT IN ({placeholders})" if from_file else ""),
        (channel_id, *from_file),
    )


class FileOwned(Exception):
    def __init__(self, keys: list[str]) -> None:
        super().__init__(f"set in config.toml: {', '.join(keys)}")
        self.keys = keys


def apply_dashboard(tx: Tx, channel_id: int, changes: Mapping[str, Any], actor: str) -> None:
    """Store dashboard edits (already validated with ChannelSettings).

    Raises:
        FileOwned: some keys belong to the config file; nothing is stored.
    """
    conn = tx.conn
    owned = [
        key
        for (key,) in conn.execute(
            "SELECT key FROM channel_settings WHERE channel_id = ? AND owner = 'file'",
            (channel_id,),
        )
        if key in changes
    ]
    if owned:
        raise FileOwned(sorted(owned))
    for key, value in changes.items():
        conn.execute(
            "INSERT INTO channel_settings (channel_id, key, value, owner, updated_at, updated_by)"
            " VALUES (?, ?, ?, 'dashboard', ?, ?)"
            " ON CONFLICT (channel_id, key) DO UPDATE SET value = excluded.value,"
            "  updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            (channel_id, key, json.dumps(value), tx.now_ms, actor),
        )


class LiveSettings:
    """Each channel's current settings: what is stored, with the file's values on top.

    ``read`` asks the database (the earning loop does, about once a second, so a
    dashboard edit applies by the next tick); ``get`` answers from the last read without
    I/O, for chat commands.
    """

    def __init__(
        self,
        store: Store,
        channel_ids: Callable[[str], int],
        file_values: Callable[[str], Mapping[str, Any]],
    ) -> None:
        self._store = store
        self._channel_ids = channel_ids
        self._file_values = file_values
        self._current: dict[str, ChannelSettings] = {}

    async def read(self, channel: str) -> ChannelSettings:
        channel_id = self._channel_ids(channel)
        stored = await self._store.read(lambda c: load(c, channel_id))
        current = stored.values.model_copy(update=dict(self._file_values(channel)))
        self._current[channel] = current
        return current

    async def refresh(self, channels: Iterable[str]) -> None:
        for channel in channels:
            await self.read(channel)

    def get(self, channel: str) -> ChannelSettings:
        try:
            return self._current[channel]
        except KeyError:
            raise UnknownChannel(channel) from None

    def forget(self, channel: str) -> None:
        self._current.pop(channel, None)

    async def apply(self, config: Config) -> None:
        """A reload: channels the file dropped are forgotten, its values taken, and each
        channel's settings read again."""
        for channel in set(self._current) - set(config.channels):
            self.forget(channel)
        self.set_file_values(config.settings_from_file)
        await self.refresh(config.channels)

    def set_file_values(self, file_values: Callable[[str], Mapping[str, Any]]) -> None:
        self._file_values = file_values
