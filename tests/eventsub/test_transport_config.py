"""Choosing the EventSub transport in config.toml, and what check-config says about it
(SPEC §6.1): defaults, validation with key paths, the warning for a WebSocket channel
without a broadcaster token."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from loyaltybot.cli.warnings import config_warnings
from loyaltybot.clock import SystemClock
from loyaltybot.config import ConfigError, load_config
from loyaltybot.db import open_store
from loyaltybot.twitch.token_store import StoredToken, save_token
from loyaltybot.twitch.tokens import BROADCASTER_SCOPES

ROOT = Path(__file__).resolve().parents[2]
BASE = '[twitch]\nclient_id = "x"\nbot_login = "mybot"\n'
PUBLIC = '[web]\npublic_url = "https://bot.example.org"\neventsub_secret = "0123456789abc"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\npath = "{tmp_path / "bot.db"}"\n' + text)
    return path


def check_config(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loyaltybot", "check-config", "-c", str(path)],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip


def test_websocket_is_the_default_without_a_public_url(tmp_path: Path) -> None:
    """At home (no public URL) EventSub comes over WebSocket, to Twitch's address."""
    config = load_config(write(tmp_path, BASE + "[channels.alice]\n"))
    assert config.eventsub_transport == "websocket"
    assert config.twitch.eventsub_ws_url == "wss://eventsub.wss.twitch.tv/ws"


def test_webhook_is_the_default_with_a_public_url_and_either_may_be_chosen(
    tmp_path: Path,
) -> None:
    """A public URL keeps the webhook, as before; [eventsub] transport overrides."""
    public = load_config(write(tmp_path, BASE + PUBLIC + "[channels.alice]\n"))
    assert public.eventsub_transport == "webhook"
    chosen = BASE + PUBLIC + '[eventsub]\ntransport = "websocket"\n[channels.alice]\n'
    assert load_config(write(tmp_path, chosen)).eventsub_transport == "websocket"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (
            '[eventsub]\ntransport = "webhook"\n',
            'eventsub.transport: "webhook" needs web.public_url',
        ),
        ('[eventsub]\ntransport = "pigeon"\n', "eventsub.transport: must be one of"),
        ('[eventsub]\nwebsocket = true\n', "eventsub.websocket: unknown key"),
    ],
)
def test_transport_mistakes_name_their_key(tmp_path: Path, text: str, line: str) -> None:
    """Each mistake is one line naming eventsub.<key>."""
    with pytest.raises(ConfigError) as refused:
        load_config(write(tmp_path, BASE + text + "[channels.alice]\n"))
    assert any(line in problem for problem in refused.value.lines()), refused.value.lines()


def test_the_websocket_url_must_be_ws_or_wss(tmp_path: Path) -> None:
    """twitch.eventsub_ws_url is checked like irc_url."""
    text = BASE + 'eventsub_ws_url = "https://eventsub.example"\n[channels.alice]\n'
    with pytest.raises(ConfigError) as refused:
        load_config(write(tmp_path, text))
    assert refused.value.lines() == [
        f"{tmp_path / 'config.toml'}: twitch.eventsub_ws_url: must be a ws or wss URL,"
        " got 'https://eventsub.example'"
    ]


def test_check_config_warns_for_a_websocket_channel_without_a_token(tmp_path: Path) -> None:
    """Exit 0, and one line naming the channel and the auth command (a channel with a token
    in the file gets none)."""
    path = write(
        tmp_path,
        BASE + '[channels.alice]\n[channels.bob]\nbroadcaster_token = "secret-token"\n',
    )
    result = check_config(path)
    assert result.returncode == 0, result.stderr
    assert "ok (2 channel(s)" in result.stdout
    warnings = result.stderr.strip().splitlines()
    assert len(warnings) == 1, warnings
    assert f"{path}: channels.alice: warning: #alice has no broadcaster token" in warnings[0]
    assert "`loyaltybot auth --channel alice`" in warnings[0]
    assert "secret-token" not in result.stdout + result.stderr
    assert not (tmp_path / "bot.db").exists()  # checking creates nothing


def test_check_config_is_quiet_about_tokens_for_the_webhook(tmp_path: Path) -> None:
    """With the webhook (app token) no broadcaster token is needed for EventSub."""
    result = check_config(write(tmp_path, BASE + PUBLIC + "[channels.alice]\n"))
    assert (result.returncode, result.stderr) == (0, "")


async def test_a_stored_token_counts_and_its_missing_scopes_are_named(tmp_path: Path) -> None:
    """A token stored by `auth --channel` satisfies the check; one without every scope
    the features need is named with the scopes and the command."""
    path = write(tmp_path, BASE + "[channels.alice]\n[channels.bob]\n")
    store = await open_store(tmp_path / "bot.db", clock=SystemClock())
    try:
        for login, scopes in (("alice", BROADCASTER_SCOPES), ("bob", ("bits:read",))):
            token = StoredToken(login, "1", "x", "access", "refresh", frozenset(scopes), None, 0, 0)
            await store.write(lambda tx, token=token: save_token(tx, token))
    finally:
        await store.close()
    lines = config_warnings(load_config(path))
    assert len(lines) == 1, lines
    assert "channels.bob: warning: the stored token of #bob lacks channel:manage:redemptions" in (
        lines[0]
    )
    assert lines[0].endswith("run `loyaltybot auth --channel bob` again")
