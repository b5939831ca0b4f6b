"""Twitch user tokens: device code flow, storage, validation, refresh (loyaltybot/twitch/tokens.py).

Twitch is the simulator (``loyaltybot.simulator``) on loopback, sharing the test's
FakeClock so token lifetimes pass without sleeping. Its OAuth face does not send
``slow_down``; that one case uses a two-route stand-in (``SlowDownTwitch``).
"""

from __future__ import annotations

import asyncio
import io
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from loyaltybot import logs
from loyaltybot.cli import CliError
from loyaltybot.cli.auth import authorize
from loyaltybot.clock import FakeClock, to_ms
from loyaltybot.config import Config, load_config
from loyaltybot.db import Store, open_store
from loyaltybot.simulator import Simulator
from loyaltybot.twitch.helix import Helix
from loyaltybot.twitch.oauth import (
    DeviceCode,
    DeviceFlowDenied,
    DeviceFlowExpired,
    OAuthClient,
    RefreshRefused,
    TokenError,
    device_flow,
)
from loyaltybot.twitch.token_store import StoredToken, load_token, save_token
from loyaltybot.twitch.tokens import (
    BOT_SCOPES,
    BROADCASTER_SCOPES,
    MissingScopes,
    Tokens,
    UserToken,
    WrongAccount,
    scopes_for,
)

LIFETIME = 14_400


@pytest.fixture
async def sim(clock: FakeClock) -> AsyncIterator[Simulator]:
    twitch = Simulator(clock=clock)
    await twitch.start()
    for login in ("mybot", "alice", "bob_tv", "someoneelse"):
        twitch.add_user(login)
    twitch.oauth.device_interval = 1  # Twitch says 5; keep the real-time tests short
    yield twitch
    await twitch.close()


def write_config(tmp_path: Path, sim: Simulator, extra_twitch: str = "", alice: str = "") -> Config:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[database]
path = "loyaltybot.db"

[twitch]
client_id = "{sim.client_id}"
bot_login = "mybot"
auth_url = "{sim.auth_url}"
api_url = "{sim.api_url}"
{extra_twitch}

[channels.alice]
{alice}

[channels.mybot]
""",
        "utf-8",
    )
    return load_config(path)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def oauth_for(sim: Simulator, session: aiohttp.ClientSession) -> OAuthClient:
    return OAuthClient(session, sim.auth_url, sim.client_id)


def stored(sim: Simulator, clock: FakeClock, login: str, scopes: tuple[str, ...]) -> StoredToken:
    """A token as `loyaltybot auth` would have stored it (issued by the device flow)."""
    issued = sim.world.issue_token(
        login, scopes, client_id=sim.client_id, expires_in=LIFETIME, via_device=True
    )
    now = to_ms(clock.now())
    return StoredToken(
        login=login,
        user_id=sim.user(login).id,
        client_id=sim.client_id,
        access_token=issued.value,
        refresh_token=issued.refresh_token,
        scopes=frozenset(scopes),
        expires_at=now + LIFETIME * 1000,
        obtained_at=now,
        refreshed_at=now,
        validated_at=now,
    )


def issued_for(sim: Simulator, login: str) -> int:
    """How many tokens Twitch issued for this account (1 + refreshes)."""
    return sum(1 for t in sim.world.tokens.values() if t.user is not None and t.user.login == login)


async def put(store: Store, token: StoredToken) -> None:
    await store.write(lambda tx: save_token(tx, token))


async def row(store: Store, login: str) -> StoredToken | None:
    return await store.read(lambda c: load_token(c, login))


def fast_sleep(clock: FakeClock, slept: list[float]) -> Callable[[float], Awaitable[None]]:
    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)
        await asyncio.sleep(0)

    return sleep


# ---- device code flow ------------------------------------------------------------------------


async def wait_for_code(out: io.StringIO) -> str:
    for _ in range(500):
        for line in out.getvalue().splitlines():
            if "enter the code" in line:
                return line.rsplit(" ", 1)[1]
        await asyncio.sleep(0.01)
    raise AssertionError(f"no code shown: {out.getvalue()!r}")


async def test_auth_stores_the_bot_token_after_approval(
    tmp_path: Path, sim: Simulator, clock: FakeClock
) -> None:
    """`auth` shows URL and code, polls until approved, validates and stores token and scopes."""
    config = write_config(tmp_path, sim)
    out = io.StringIO()
    task = asyncio.create_task(authorize(config, None, out=out, clock=clock))
    code = await wait_for_code(out)
    assert f"open {sim.base_url}/activate?public=true&device-code={code}" in out.getvalue()
    assert "log in to Twitch as mybot" in out.getvalue()
    sim.oauth.approve_device(code, "mybot")
    token = await asyncio.wait_for(task, 10)

    # mybot is also a configured channel: one token with both roles' scopes
    assert set(scopes_for(config, "mybot")) == {*BOT_SCOPES, *BROADCASTER_SCOPES}
    assert token.scopes == frozenset(scopes_for(config, "mybot"))
    store = await open_store(config.database.path, clock=clock)
    try:
        saved = await row(store, "mybot")
    finally:
        await store.close()
    assert saved == token
    assert saved.user_id == sim.user("mybot").id
    assert saved.refresh_token in sim.world.refresh_tokens
    assert saved.expires_at == to_ms(clock.now()) + LIFETIME * 1000
    assert token.access_token not in repr(saved)
    assert "Stored a token for mybot" in out.getvalue()


async def test_auth_for_a_channel_asks_broadcaster_scopes(
    tmp_path: Path, sim: Simulator, clock: FakeClock
) -> None:
    """`auth --channel alice` asks the broadcaster's scopes, and notes a config token that wins."""
    config = write_config(tmp_path, sim, alice='broadcaster_token = "configured-token-1"')
    out = io.StringIO()
    task = asyncio.create_task(authorize(config, "Alice", out=out, clock=clock))
    code = await wait_for_code(out)
    grant = sim.oauth.approve_device(code, "alice")
    assert grant.scopes == BROADCASTER_SCOPES
    token = await asyncio.wait_for(task, 10)
    assert token.login == "alice"
    assert "channels.alice.broadcaster_token is set" in out.getvalue()


@pytest.mark.parametrize(
    ("approver", "granted", "error"),
    [
        ("someoneelse", None, "approved by someoneelse, not mybot: log in to Twitch as mybot"),
        ("mybot", ("chat:read",), "without chat:edit, moderator:read:chatters"),
    ],
)
async def test_auth_refuses_the_wrong_account_or_missing_scopes(
    tmp_path: Path,
    sim: Simulator,
    clock: FakeClock,
    approver: str,
    granted: tuple[str, ...] | None,
    error: str,
) -> None:
    """A code approved by another account, or with fewer scopes, stores nothing and says why."""
    config = write_config(tmp_path, sim)
    only_alice = {"alice": config.channels["alice"]}
    config = Config(config.path, config.database, config.log, config.twitch, config.web, only_alice)
    out = io.StringIO()
    task = asyncio.create_task(authorize(config, None, out=out, clock=clock))
    grant = sim.oauth.approve_device(await wait_for_code(out), approver)
    if granted is not None:
        grant.scopes = granted
    with pytest.raises(CliError, match=error) as caught:
        await asyncio.wait_for(task, 10)
    assert "nothing was stored" in str(caught.value)
    assert not config.database.path.exists()


async def test_auth_unknown_channel_is_a_usage_error(tmp_path: Path, sim: Simulator) -> None:
    """--channel naming a channel not in the config fails before talking to Twitch."""
    config = write_config(tmp_path, sim)
    with pytest.raises(CliError, match=r"unknown channel 'carol'.*alice, mybot"):
        await authorize(config, "carol", out=io.StringIO())
    assert sim.oauth.devices == {}


async def test_device_flow_polls_at_the_interval_until_the_code_expires(
    sim: Simulator, clock: FakeClock, session: aiohttp.ClientSession
) -> None:
    """authorization_pending keeps polling at Twitch's interval; the code's expiry stops it."""
    sim.oauth.device_interval = 5
    sim.oauth.device_expires_in = 30
    slept: list[float] = []
    codes: list[DeviceCode] = []
    with pytest.raises(DeviceFlowExpired):
        await device_flow(
            oauth_for(sim, session),
            ["chat:read"],
            on_code=codes.append,
            clock=clock,
            sleep=fast_sleep(clock, slept),
        )
    assert codes[0].interval == 5
    assert slept == [5, 5, 5, 5, 5, 5]  # the sixth wait reaches the expiry: no more polls


async def test_device_flow_returns_the_grant_and_reports_denial(
    sim: Simulator, clock: FakeClock, session: aiohttp.ClientSession
) -> None:
    """An approved code yields the token; a declined one raises DeviceFlowDenied."""
    oauth = oauth_for(sim, session)
    slept: list[float] = []

    def approve(device: DeviceCode) -> None:
        sim.oauth.approve_device(device.user_code, "mybot")

    grant = await device_flow(
        oauth, ["chat:read"], on_code=approve, clock=clock, sleep=fast_sleep(clock, slept)
    )
    info = sim.token_info(grant.access_token)
    assert info is not None
    assert info.user is not None
    assert info.user.login == "mybot"
    assert grant.scopes == {"chat:read"}

    def deny(device: DeviceCode) -> None:
        sim.oauth.deny_device(device.user_code)

    with pytest.raises(DeviceFlowDenied):
        await device_flow(
            oauth, ["chat:read"], on_code=deny, clock=clock, sleep=fast_sleep(clock, slept)
        )


class SlowDownTwitch:
    """Just enough of /oauth2 to answer slow_down, which the simulator never sends."""

    def __init__(self) -> None:
        self.answers = ["slow_down", "authorization_pending", "authorization_pending"]

    async def device(self, request: web.Request) -> web.Response:
        body = {"device_code": "dc", "user_code": "UC", "verification_uri": "https://x/activate",
                "expires_in": 1800, "interval": 5}  # fmt: skip
        return web.json_response(body)

    async def token(self, request: web.Request) -> web.Response:
        if self.answers:
            return web.json_response({"status": 400, "message": self.answers.pop(0)}, status=400)
        body = {"access_token": "a" * 30, "refresh_token": "r" * 50, "expires_in": 100,
                "scope": ["chat:read"], "token_type": "bearer"}  # fmt: skip
        return web.json_response(body)


async def test_device_flow_slows_down_when_asked(
    clock: FakeClock, session: aiohttp.ClientSession
) -> None:
    """slow_down adds 5 s to the polling interval from then on."""
    fake = SlowDownTwitch()
    app = web.Application()
    app.router.add_post("/oauth2/device", fake.device)
    app.router.add_post("/oauth2/token", fake.token)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/oauth2"
        slept: list[float] = []
        grant = await device_flow(
            OAuthClient(session, url, "c"),
            ["chat:read"],
            on_code=lambda device: None,
            clock=clock,
            sleep=fast_sleep(clock, slept),
        )
    finally:
        await runner.cleanup()
    assert slept == [5, 10, 10, 10]
    assert grant.expires_in == 100


async def test_cli_auth_end_to_end(tmp_path: Path, sim: Simulator) -> None:
    """`loyaltybot auth -c F` as a process: prints the code, stores the token once approved."""
    config = write_config(tmp_path, sim)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "loyaltybot", "auth", "-c", str(config.path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert proc.stdout is not None
    code = None
    while code is None:
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        assert line, "auth exited before showing a code"
        if "enter the code" in line:
            code = line.split()[-1]
    sim.oauth.approve_device(code, "mybot")
    rest, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err.decode()
    assert "Stored a token for mybot" in rest.decode()
    store = await open_store(config.database.path)
    try:
        saved = await row(store, "mybot")
    finally:
        await store.close()
    assert saved is not None
    assert sim.world.valid_token(saved.access_token) is not None


# ---- the token source ------------------------------------------------------------------------


async def test_refreshes_before_expiry_and_persists_the_new_refresh_token(
    store: Store, sim: Simulator, clock: FakeClock, session: aiohttp.ClientSession
) -> None:
    """Near expiry token() refreshes, stores the rotated refresh token and tells listeners."""
    first = stored(sim, clock, "mybot", BOT_SCOPES)
    await put(store, first)
    source = UserToken(
        oauth_for(sim, session), first, name="the bot token",
        fix="run `loyaltybot auth` again", store=store, clock=clock,
    )  # fmt: skip
    seen: list[str] = []
    source.on_change(seen.append)
    assert await source.token() == first.access_token
    clock.advance(LIFETIME - 301)
    assert await source.token() == first.access_token
    assert issued_for(sim, "mybot") == 1
    clock.advance(2)
    fresh = await source.token()
    assert fresh != first.access_token
    assert issued_for(sim, "mybot") == 2
    saved = await row(store, "mybot")
    assert saved is not None
    assert saved.access_token == fresh
    assert saved.refresh_token in sim.world.refresh_tokens
    assert first.refresh_token not in sim.world.refresh_tokens  # rotated: the old one is gone
    assert saved.expires_at == to_ms(clock.now()) + LIFETIME * 1000
    assert seen == [fresh]
    assert logs.redact(f"token {fresh}") == "token ***"


async def test_a_401_from_helix_refreshes_once_and_retries(
    store: Store, sim: Simulator, clock: FakeClock, session: aiohttp.ClientSession
) -> None:
    """Helix's 401 calls invalidate(); the next token() refreshes and the request succeeds."""
    first = stored(sim, clock, "mybot", BOT_SCOPES)
    await put(store, first)
    source = UserToken(
        oauth_for(sim, session), first, name="the bot token", fix="x", store=store, clock=clock
    )
    helix = Helix(session, sim.api_url, sim.client_id, source)
    sim.world.tokens[first.access_token].revoked = True  # Twitch stopped accepting it
    users = await helix.get_users(logins=["alice"])
    assert [u.login for u in users] == ["alice"]
    assert issued_for(sim, "mybot") == 2
    saved = await row(store, "mybot")
    assert saved is not None
    assert sim.world.valid_token(saved.access_token) is not None


async def test_a_revoked_grant_says_to_run_auth_again(
    store: Store, sim: Simulator, clock: FakeClock, session: aiohttp.ClientSession
) -> None:
    """When the refresh token is refused too, the error names the command that fixes it."""
    first = stored(sim, clock, "alice", BROADCASTER_SCOPES)
    await put(store, first)
    sim.revoke_token(first.access_token)  # also forgets its refresh token
    source = UserToken(
        oauth_for(sim, session), first, name="the token of alice",
        fix="run `loyaltybot auth --channel alice` again", store=store, clock=clock,
    )  # fmt: skip
    source.invalidate()
    with pytest.raises(RefreshRefused) as caught:
        await source.token()
    message = str(caught.value)
    assert message == (
        "the token of alice can no longer be refreshed (revoked on Twitch, or the password"
        " changed): run `loyaltybot auth --channel alice` again"
    )
    assert first.access_token not in message
    assert first.refresh_token is not None
    assert first.refresh_token not in message


async def test_adopts_a_token_another_process_refreshed(
    store: Store, sim: Simulator, clock: FakeClock, session: aiohttp.ClientSession
) -> None:
    """Two processes share a grant: the second adopts the stored fresh token, no refresh."""
    first = stored(sim, clock, "mybot", BOT_SCOPES)
    await put(store, first)
    oauth = oauth_for(sim, session)
    daemon = UserToken(oauth, first, name="the bot token", fix="x", store=store, clock=clock)
    cli = UserToken(oauth, first, name="the bot token", fix="x", store=store, clock=clock)
    clock.advance(LIFETIME - 10)
    fresh = await cli.token()
    assert await daemon.token() == fresh
    assert issued_for(sim, "mybot") == 2  # the rotated refresh token was never used twice


async def test_start_validates_and_refreshes_an_invalid_stored_token(
    tmp_path: Path,
    store: Store,
    sim: Simulator,
    clock: FakeClock,
    session: aiohttp.ClientSession,
) -> None:
    """Tokens.start() validates the bot's stored token, refreshing it when Twitch refuses it."""
    config = write_config(tmp_path, sim)
    bot = stored(sim, clock, "mybot", (*BOT_SCOPES, *BROADCASTER_SCOPES))
    await put(store, bot)
    sim.world.tokens[bot.access_token].revoked = True
    tokens = Tokens(config, store, session, clock=clock)
    await tokens.start()
    assert issued_for(sim, "mybot") == 2
    assert tokens.bot().user_id == sim.user("mybot").id
    assert tokens.broadcaster("mybot") is tokens.bot()  # one account, one token
    assert tokens.broadcaster("alice") is None
    assert "run `loyaltybot auth --channel alice`" in tokens.problems["alice"]


async def test_missing_scope_is_named_with_the_fix(
    tmp_path: Path,
    store: Store,
    sim: Simulator,
    clock: FakeClock,
    session: aiohttp.ClientSession,
) -> None:
    """A bot token without moderator:read:chatters starts, and require() says what to run."""
    config = write_config(tmp_path, sim)
    await put(store, stored(sim, clock, "mybot", ("chat:read", "chat:edit")))
    await put(store, stored(sim, clock, "alice", BROADCASTER_SCOPES))
    tokens = Tokens(config, store, session, clock=clock)
    await tokens.start()
    bot = tokens.bot()
    assert bot.missing(BOT_SCOPES) == ["moderator:read:chatters"]
    with pytest.raises(MissingScopes) as caught:
        bot.require("moderator:read:chatters")
    assert str(caught.value) == (
        "the bot token lacks moderator:read:chatters: run `loyaltybot auth` again"
    )
    alice = tokens.broadcaster("alice")
    assert alice is not None
    with pytest.raises(MissingScopes) as caught:
        alice.require("bits:write")
    assert str(caught.value) == (
        "the token of alice lacks bits:write: run `loyaltybot auth --channel alice` again"
    )


async def test_bot_without_chat_scopes_does_not_start(
    tmp_path: Path,
    store: Store,
    sim: Simulator,
    clock: FakeClock,
    session: aiohttp.ClientSession,
) -> None:
    """chat:read and chat:edit are required: start() refuses a token without them."""
    config = write_config(tmp_path, sim)
    await put(store, stored(sim, clock, "mybot", ("chat:read",)))
    with pytest.raises(MissingScopes, match="lacks chat:edit"):
        await Tokens(config, store, session, clock=clock).start()


async def test_config_token_takes_precedence_and_is_checked(
    tmp_path: Path,
    store: Store,
    sim: Simulator,
    clock: FakeClock,
    session: aiohttp.ClientSession,
) -> None:
    """twitch.bot_token wins over a stored token; one for another account is refused by name."""
    configured = sim.issue_token("mybot", BOT_SCOPES)
    config = write_config(tmp_path, sim, extra_twitch=f'bot_token = "oauth:{configured}"')
    await put(store, stored(sim, clock, "mybot", BOT_SCOPES))
    tokens = Tokens(config, store, session, clock=clock)
    await tokens.start()
    assert tokens.bot().from_config
    assert await tokens.bot().token() == configured

    other = sim.issue_token("someoneelse", BOT_SCOPES)
    config = write_config(tmp_path, sim, extra_twitch=f'bot_token = "{other}"')
    with pytest.raises(WrongAccount) as caught:
        await Tokens(config, store, session, clock=clock).start()
    assert str(caught.value).startswith("twitch.bot_token belongs to someoneelse, not mybot")
    assert other not in str(caught.value)


async def test_an_expired_config_token_cannot_be_refreshed(
    tmp_path: Path,
    store: Store,
    sim: Simulator,
    clock: FakeClock,
    session: aiohttp.ClientSession,
) -> None:
    """A config token Twitch refuses raises a TokenError naming the key to replace."""
    configured = sim.issue_token("mybot", BOT_SCOPES, expires_in=100)
    config = write_config(tmp_path, sim, extra_twitch=f'bot_token = "{configured}"')
    tokens = Tokens(config, store, session, clock=clock)
    await tokens.start()
    clock.advance(200)
    tokens.bot().invalidate()
    with pytest.raises(TokenError) as caught:
        await tokens.bot().token()
    assert str(caught.value).startswith(
        "Twitch refused twitch.bot_token (expired or revoked): replace twitch.bot_token in"
    )


async def test_no_bot_token_anywhere_says_to_run_auth(
    tmp_path: Path,
    store: Store,
    sim: Simulator,
    clock: FakeClock,
    session: aiohttp.ClientSession,
) -> None:
    """Without a config or stored token the daemon cannot start, and is told how to fix it."""
    config = write_config(tmp_path, sim)
    with pytest.raises(TokenError) as caught:
        await Tokens(config, store, session, clock=clock).start()
    assert str(caught.value) == (
        "no Twitch token for the bot account mybot: run `loyaltybot auth` (or set twitch.bot_token)"
    )


async def test_hourly_validation_and_reload_pick_up_changes(
    tmp_path: Path,
    store: Store,
    sim: Simulator,
    clock: FakeClock,
    session: aiohttp.ClientSession,
) -> None:
    """The hourly validation notices a revoked token and refreshes; reload() adopts a newer one."""
    config = write_config(tmp_path, sim)
    first = stored(sim, clock, "mybot", BOT_SCOPES)
    await put(store, first)
    tokens = Tokens(config, store, session, clock=clock)
    await tokens.start()
    sim.world.tokens[first.access_token].revoked = True
    clock.advance(1800)
    assert await tokens.bot().token() == first.access_token  # not validated again yet
    clock.advance(1801)
    refreshed = await tokens.bot().token()
    assert refreshed != first.access_token
    assert sim.world.valid_token(refreshed) is not None

    newer = stored(sim, clock, "mybot", (*BOT_SCOPES, *BROADCASTER_SCOPES))
    await put(store, newer)  # `loyaltybot auth` ran meanwhile
    await tokens.apply(config)
    assert await tokens.bot().token() == newer.access_token
    assert tokens.bot().missing(BROADCASTER_SCOPES) == []


async def test_reload_switches_between_config_and_stored_tokens_in_place(
    tmp_path: Path,
    store: Store,
    sim: Simulator,
    clock: FakeClock,
    session: aiohttp.ClientSession,
) -> None:
    """SIGHUP with a new twitch.bot_token swaps the token inside the same object, and back."""
    config = write_config(tmp_path, sim)
    first = stored(sim, clock, "mybot", BOT_SCOPES)
    await put(store, first)
    tokens = Tokens(config, store, session, clock=clock)
    await tokens.start()
    bot = tokens.bot()

    configured = sim.issue_token("mybot", BOT_SCOPES)
    await tokens.apply(write_config(tmp_path, sim, extra_twitch=f'bot_token = "{configured}"'))
    assert tokens.bot() is bot
    assert bot.from_config
    assert await bot.token() == configured

    await tokens.apply(write_config(tmp_path, sim))
    assert tokens.bot() is bot
    assert not bot.from_config
    assert await bot.token() == first.access_token

    wrong = sim.issue_token("someoneelse", BOT_SCOPES)
    await tokens.apply(write_config(tmp_path, sim, extra_twitch=f'bot_token = "{wrong}"'))
    assert tokens.bot() is bot  # refused and logged: the working token stays
    assert not bot.from_config
    assert await bot.token() == first.access_token


async def test_hourly_validation_tolerates_an_oauth_outage(
    tmp_path: Path,
    store: Store,
    sim: Simulator,
    clock: FakeClock,
    session: aiohttp.ClientSession,
) -> None:
    """A 503 from /oauth2/validate during the hourly check keeps the current token."""
    config = write_config(tmp_path, sim)
    first = stored(sim, clock, "mybot", BOT_SCOPES)
    await put(store, first)
    tokens = Tokens(config, store, session, clock=clock)
    await tokens.start()
    fault = sim.faults.add("/oauth2/validate", status=503, count=1)
    clock.advance(3601)
    assert await tokens.bot().token() == first.access_token
    assert fault.hits == 1
