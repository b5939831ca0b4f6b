"""The levels feature's badge for !points and its column for the viewers page."""

from __future__ import annotations

from pathlib import Path

from loyaltybot.config import parse_config
from loyaltybot.features.levels.feature import LevelsFeature
from loyaltybot.points.bank import Bank
from loyaltybot.points.history import ViewerRow
from loyaltybot.points.ledger import EarningRates, Presence, TickPlan
from tests.conftest import CHANNEL


def config(levels: list[dict[str, object]]) -> object:
    channels = {CHANNEL: {"levels": levels}, "bob_tv": {}}
    return parse_config(
        {"twitch": {"client_id": "x", "bot_login": "bot"}, "channels": channels},
        Path("config.toml"),
    )


def row(watch_seconds: int) -> ViewerRow:
    return ViewerRow("1", "bob", "Bob", 0, watch_seconds, 0, 0, True)


LEVELS = [{"name": "Newcomer", "watch_hours": 1}, {"name": "Regular", "watch_hours": 10}]


async def test_badge_names_the_level_reached(bank: Bank) -> None:
    """!points adds "level: Newcomer" after an hour's watch time; nothing before it or
    in a channel without levels."""
    feature = LevelsFeature(config=config(LEVELS), bank=bank)  # type: ignore[arg-type]
    bob = Presence("1001", "bob", "Bob", subscriber=False, messages=0)
    for seq, seconds in enumerate((1800, 1800), start=1):
        assert await feature.badge(CHANNEL, "1001") is None
        await bank.credit_tick(
            TickPlan(
                bank.channel_id(CHANNEL),
                seq,
                0,
                seconds,
                EarningRates(1, 1, 0, 0),
                [bob],
                bank.known_logins(CHANNEL),
            )
        )
        await bank.load_known_logins(CHANNEL)
    assert await feature.badge(CHANNEL, "1001") == "level: Newcomer"
    assert await feature.badge("bob_tv", "1001") is None


def test_viewers_page_column(bank: Bank) -> None:
    """The column: the level's name, "" below the first level, None without levels."""
    feature = LevelsFeature(config=config(LEVELS), bank=bank)  # type: ignore[arg-type]
    assert feature.level_name(CHANNEL, row(36_000)) == "Regular"
    assert feature.level_name(CHANNEL, row(3599)) == ""
    assert feature.level_name("bob_tv", row(36_000)) is None
