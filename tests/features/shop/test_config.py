"""Shop items and levels in config.toml: every problem names its key (SPEC §10.1, §10.5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from loyaltybot.config import ConfigError, parse_config

ITEM = {"name": "hydrate", "cost": 500, "message": "{user} drinks"}


def problems(channel: dict[str, Any]) -> list[str]:
    data = {"twitch": {"client_id": "x", "bot_login": "bot"}, "channels": {"alice": channel}}
    try:
        parse_config(data, Path("config.toml"))
    except ConfigError as exc:
        return [line.removeprefix("config.toml: ") for line in exc.lines()]
    return []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, []),
        ({"name": "Hy-drate_2"}, []),
        (
            {"name": "two words"},
            ["channels.alice.shop[0].name: must be 1 to 32 letters, digits, _ or - (no spaces)"],
        ),
        (
            {"name": "x" * 33},
            ["channels.alice.shop[0].name: must be 1 to 32 letters, digits, _ or - (no spaces)"],
        ),
        ({"cost": 0}, ["channels.alice.shop[0].cost: must be >= 1"]),
        ({"cost": -5}, ["channels.alice.shop[0].cost: must be >= 1"]),
        ({"cost": 1.5}, ["channels.alice.shop[0].cost: must be a whole number"]),
        ({"cost": "1e5"}, ["channels.alice.shop[0].cost: must be a whole number"]),
        ({"cost": 2**53}, ["channels.alice.shop[0].cost: must be <= 9,007,199,254,740,991"]),
        ({"stock": 0}, ["channels.alice.shop[0].stock: must be >= 1"]),
        ({"per_viewer": -1}, ["channels.alice.shop[0].per_viewer: must be >= 1"]),
        ({"cooldown_seconds": -1}, ["channels.alice.shop[0].cooldown_seconds: must be >= 0"]),
        (
            {"action": "sing"},
            [
                "channels.alice.shop[0].action: must be one of "
                "'chat', 'title', 'queue', 'forward' or 'discord'"
            ],
        ),
        ({"action": "title"}, ["channels.alice.shop[0].unlocks: is required for action 'title'"]),
        ({"action": "forward"}, ["channels.alice.shop[0].url: is required for action 'forward'"]),
        (
            {"action": "discord"},
            ["channels.alice.shop[0].webhook_url: is required for action 'discord'"],
        ),
        (
            {"action": "discord", "webhook_url": "http://discord.example/api/webhooks/1/tok"},
            [
                "channels.alice.shop[0].webhook_url: must be an https URL (the webhook URL Discord "
                "gives)"
            ],
        ),
        ({"action": "queue", "message": None}, []),
        ({"colour": "red"}, ["channels.alice.shop[0].colour: unknown key"]),
    ],
)
def test_item_problems_name_their_key(changes: dict[str, Any], expected: list[str]) -> None:
    """Each problem of an item names its key path, in check-config's words."""
    item = {k: v for k, v in {**ITEM, **changes}.items() if v is not None}
    assert problems({"shop": [item]}) == expected


def test_item_names_are_unique_case_insensitively() -> None:
    """A second Hydrate beside hydrate is refused at its own key."""
    assert problems({"shop": [ITEM, {**ITEM, "name": "HYDRATE"}]}) == [
        "channels.alice.shop[1].name: is the name of item [0] too"
    ]


def test_a_webhook_url_is_a_secret_never_repeated(monkeypatch: pytest.MonkeyPatch) -> None:
    """env: resolves; a bad URL's problem never shows the URL itself."""
    monkeypatch.setenv("HOOK", "ftp://discord.example/api/webhooks/1/very-secret-token")
    item = {**ITEM, "action": "discord", "webhook_url": "env:HOOK"}
    found = problems({"shop": [item]})
    assert found and all("very-secret-token" not in line for line in found)
    monkeypatch.setenv("HOOK", "https://discord.example/api/webhooks/1/very-secret-token")
    assert problems({"shop": [item]}) == []
    assert problems({"shop": [{**item, "webhook_url": "env:NOPE"}]}) == [
        "channels.alice.shop[0].webhook_url: environment variable NOPE is not set"
    ]


def test_rewards_take_the_discord_action() -> None:
    """A reward's discord action needs a message and a webhook, named where missing."""
    assert problems({"rewards": [{"title": "Ping", "action": "discord"}]}) == [
        "channels.alice.rewards[0].message: is required for action 'discord'",
        "channels.alice.rewards[0].webhook_url: is required for action 'discord'",
    ]


@pytest.mark.parametrize(
    ("levels", "expected"),
    [
        ([{"name": "A", "watch_hours": 0}, {"name": "B", "watch_hours": 1.5}], []),
        ([{"name": " ", "watch_hours": 1}], ["channels.alice.levels[0].name: must not be empty"]),
        ([{"watch_hours": 1}], ["channels.alice.levels[0].name: is required"]),
        (
            [{"name": "A" * 51, "watch_hours": 1}],
            ["channels.alice.levels[0].name: must be at most 50 characters"],
        ),
        (
            [{"name": "A", "watch_hours": -1}],
            ["channels.alice.levels[0].watch_hours: must be >= 0"],
        ),
        (
            [{"name": "A", "watch_hours": "10"}],
            ["channels.alice.levels[0].watch_hours: must be a number"],
        ),
        (
            [{"name": "A", "watch_hours": True}],
            ["channels.alice.levels[0].watch_hours: must be a number"],
        ),
        (
            [{"name": "A", "watch_hours": 1, "colour": "red"}],
            ["channels.alice.levels[0].colour: unknown key"],
        ),
        (
            [{"name": "A", "watch_hours": 1}, {"name": "a ", "watch_hours": 2}],
            ["channels.alice.levels[1].name: is the name of level [0] too"],
        ),
        (
            [{"name": "A", "watch_hours": 5}, {"name": "B", "watch_hours": 5}],
            [
                "channels.alice.levels[1].watch_hours: must be more than the watch_hours of"
                " the level before"
            ],
        ),
        (
            [
                {"name": "A", "watch_hours": 5},
                {"name": "B", "watch_hours": 2},
                {"name": "a", "watch_hours": 9},
            ],
            [
                "channels.alice.levels[1].watch_hours: must be more than the watch_hours of"
                " the level before",
                "channels.alice.levels[2].name: is the name of level [0] too",
            ],
        ),
    ],
)
def test_levels_problems_name_their_key(levels: list[Any], expected: list[str]) -> None:
    """Names unique and non-empty, hours >= 0 and ascending; each problem names its key."""
    assert problems({"levels": levels}) == expected
