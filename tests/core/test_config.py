"""config.toml validation: every problem named by its key, secrets resolved, never printed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from loyaltybot.config import ConfigError, Secret, load_config

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = """
[twitch]
client_id = "abc"
bot_login = "mybot"
[channels.alice]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    return caught.value.lines()


def test_repository_config_is_valid() -> None:
    """The commented config.toml shipped in the repository passes its own check."""
    config = load_config(ROOT / "config.toml")
    assert "alice" in config.channels
    assert config.channels["alice"].file_settings["currency_name"] == "cookie"


def test_minimal_config_defaults(tmp_path: Path) -> None:
    """Only client id, bot login and one channel are required; the rest has defaults."""
    config = load_config(write(tmp_path, MINIMAL))
    assert config.twitch.irc_url == "wss://irc-ws.chat.twitch.tv:443"
    assert config.database.path == tmp_path / "loyaltybot.db"
    assert config.channels["alice"].file_settings == {}
    assert config.web.port == 8080


def test_three_mistakes_are_all_named(tmp_path: Path) -> None:
    """A file with three mistakes reports all three, each by its key path."""
    lines = problems(tmp_path, MINIMAL + 'interval_minutes = 0\ncolour = "red"\n[channels.Bob]\n')
    assert len(lines) == 3
    text = "\n".join(lines)
    assert "channels.alice.interval_minutes: must be > 0" in text
    assert "channels.alice.colour: unknown key" in text
    assert "channels.Bob:" in text
    assert all(line.startswith(str(tmp_path / "config.toml") + ": ") for line in lines)


@pytest.mark.parametrize(
    ("extra", "key", "words"),
    [
        ('points_per_interval = "10"', "channels.alice.points_per_interval", "whole number"),
        ("points_per_interval = -1", "channels.alice.points_per_interval", ">= 0"),
        ("subscriber_multiplier = true", "channels.alice.subscriber_multiplier", "number"),
        ('currency_name = "two words"', "channels.alice.currency_name", "one word"),
        ('ignored_users = ["ok", "not a login"]', "channels.alice.ignored_users[1]", "login"),
        ("enable_offline = 1", "channels.alice.enable_offline", "true or false"),
        (
            '[[channels.alice.rewards]]\ntitle = "x"\naction = "grant_points"',
            "channels.alice.rewards[0].amount",
            "is required for action 'grant_points'",
        ),
        (
            '[[channels.alice.rewards]]\ntitle = "x"\naction = "explode"',
            "channels.alice.rewards[0].action",
            "must be one of",
        ),
    ],
)
def test_channel_values_are_checked(tmp_path: Path, extra: str, key: str, words: str) -> None:
    """Types, ranges, logins and reward actions are validated with the key's path."""
    lines = problems(tmp_path, MINIMAL + extra + "\n")
    assert any(f": {key}: " in line and words in line for line in lines), lines


def test_sections_are_checked(tmp_path: Path) -> None:
    """Listen address, URLs, log level, webhook secret rules and missing keys are reported."""
    text = """
[log]
level = "loud"
[twitch]
bot_login = "mybot"
irc_url = "http://nope"
[web]
listen = "8080"
public_url = "https://bot.example.org"
[channels.alice]
"""
    joined = "\n".join(problems(tmp_path, text))
    assert "log.level: must be one of" in joined
    assert "twitch.client_id: is required" in joined
    assert "twitch.irc_url: must be a ws or wss URL" in joined
    assert "web.listen: must be host:port" in joined
    assert "web.eventsub_secret: is required when web.public_url is set" in joined


def test_no_channels(tmp_path: Path) -> None:
    """A config without a channel says how to add one."""
    lines = problems(tmp_path, '[twitch]\nclient_id = "a"\nbot_login = "b"\n[channels]\n')
    assert any("add at least one [channels.<login>] table" in line for line in lines)


def test_toml_syntax_error(tmp_path: Path) -> None:
    """Broken TOML is one line with the position, not a traceback."""
    lines = problems(tmp_path, "[twitch\nclient_id = 1")
    assert len(lines) == 1 and "invalid TOML" in lines[0] and "line 1" in lines[0]


def test_secrets_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """env: and file: secrets are resolved, and never shown by repr or str."""
    monkeypatch.setenv("LB_TOKEN", "supersecrettoken")
    (tmp_path / "secret.txt").write_text("client-secret-value\n")
    config = load_config(
        write(
            tmp_path,
            MINIMAL.replace(
                'bot_login = "mybot"',
                f'bot_login = "mybot"\nbot_token = "env:LB_TOKEN"\n'
                f'client_secret = "file:{tmp_path / "secret.txt"}"',
            ),
        )
    )
    assert isinstance(config.twitch.bot_token, Secret)
    assert config.twitch.bot_token.reveal() == "supersecrettoken"
    assert config.twitch.client_secret is not None
    assert config.twitch.client_secret.reveal() == "client-secret-value"
    assert "supersecret" not in repr(config) and "client-secret-value" not in str(config)


def test_missing_secret_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing environment variable or file names the key and the source, not a value."""
    monkeypatch.delenv("LB_NOPE", raising=False)
    text = MINIMAL.replace(
        'bot_login = "mybot"',
        'bot_login = "mybot"\nbot_token = "env:LB_NOPE"\nclient_secret = "file:/nonexistent/x"',
    )
    joined = "\n".join(problems(tmp_path, text))
    assert "twitch.bot_token: environment variable LB_NOPE is not set" in joined
    assert "twitch.client_secret: cannot read /nonexistent/x" in joined


def test_config_is_immutable(tmp_path: Path) -> None:
    """Config objects cannot be changed after loading (reload builds a new one)."""
    config = load_config(write(tmp_path, MINIMAL))
    with pytest.raises(Exception, match="frozen"):
        config.twitch.bot_login = "other"  # type: ignore[misc]


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loyaltybot", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def test_check_config_command(tmp_path: Path) -> None:
    """check-config exits 0 on a good file and 2 with one line per problem on a bad one."""
    good = run_cli("check-config", "-c", str(ROOT / "config.toml"))
    assert good.returncode == 0, good.stderr
    bad = write(tmp_path, MINIMAL + "interval_minutes = 0\ncolour = 1\n[channels.Bob]\n")
    result = run_cli("-c", str(bad), "check-config")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 3 and "Traceback" not in result.stderr


def test_missing_config_file(tmp_path: Path) -> None:
    """A missing config file is one clear line."""
    result = run_cli("check-config", "-c", str(tmp_path / "nope.toml"))
    assert result.returncode == 2
    assert "nope.toml: no such file" in result.stderr
