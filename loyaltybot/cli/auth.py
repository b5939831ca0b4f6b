"""``loyaltybot auth [--channel C]``: authorise the bot or a broadcaster (device code flow).

The operator opens a Twitch page on any device, logs in as the account named, and types
the code shown here. The token is validated (it must belong to that account, for this
app, with every scope asked for) and stored in the database; the daemon refreshes it
from then on.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, TextIO

from loyaltybot.cli.common import EXIT_OK, EXIT_USAGE, CliError, config_of, opened_store
from loyaltybot.clock import Clock, SystemClock, to_ms
from loyaltybot.config import Config
from loyaltybot.points.viewers import normalize_login

if TYPE_CHECKING:
    from loyaltybot.twitch.oauth import DeviceCode
    from loyaltybot.twitch.token_store import StoredToken


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--channel", help="authorise this channel's broadcaster instead of the bot")


async def cmd_auth(args: argparse.Namespace) -> int:
    await authorize(config_of(args), args.channel)
    return EXIT_OK


def account_for(config: Config, channel: str | None) -> str:
    """The login to authorise: the bot's, or a configured channel's."""
    if channel is None:
        return config.twitch.bot_login
    login = normalize_login(channel)
    if login is None or login not in config.channels:
        known = ", ".join(sorted(config.channels)) or "none"
        raise CliError(
            f"unknown channel {channel!r}: not in {config.path} (channels there: {known})",
            EXIT_USAGE,
        )
    return login


async def authorize(
    config: Config,
    channel: str | None,
    *,
    out: TextIO | None = None,
    clock: Clock | None = None,
) -> StoredToken:
    """Run the device code flow for the account, check the token, store it; return it."""
    # Imported here: the parser imports this module for every command, and aiohttp is slow
    # to import.
    import aiohttp

    from loyaltybot.twitch.oauth import (
        DeviceFlowDenied,
        DeviceFlowExpired,
        OAuthClient,
        OAuthError,
        device_flow,
    )
    from loyaltybot.twitch.token_store import StoredToken, save_token
    from loyaltybot.twitch.tokens import scopes_for

    out = out or sys.stdout
    clock = clock or SystemClock()
    login = account_for(config, channel)
    scopes = scopes_for(config, login)
    role = "the bot account" if login == config.twitch.bot_login else "the broadcaster"
    if login == config.twitch.bot_login and login in config.channels:
        role = "the bot account (also the broadcaster of its channel)"

    def show(device: DeviceCode) -> None:
        minutes = max(1, device.expires_in // 60)
        print(
            f"To authorise loyaltybot for {role} {login}:\n"
            f"  1. open {device.verification_uri}\n"
            f"  2. log in to Twitch as {login} (a private window helps if you are logged in"
            " as someone else)\n"
            f"  3. enter the code {device.user_code}\n"
            f"Permissions asked for: {' '.join(scopes)}\n"
            f"Waiting for approval (the code expires in {minutes} minutes; Ctrl-C cancels)...",
            file=out,
            flush=True,
        )

    async with aiohttp.ClientSession() as session:
        oauth = OAuthClient(
            session, config.twitch.auth_url, config.twitch.client_id, config.twitch.client_secret
        )
        try:
            grant = await device_flow(oauth, scopes, on_code=show, clock=clock)
            found = await oauth.validate(grant.access_token)
        except DeviceFlowExpired:
            raise CliError(
                "the code expired before it was approved: run the command again"
            ) from None
        except DeviceFlowDenied:
            raise CliError("the request was declined on Twitch; nothing was stored") from None
        except OAuthError as exc:
            raise CliError(f"{exc}; nothing was stored") from None
    if found is None:
        raise CliError("Twitch does not accept the token it just issued; try again")
    again = "run the command again"
    if found.login != login:
        raise CliError(
            f"the code was approved by {found.login}, not {login}: log in to Twitch as {login}"
            f" and {again}; nothing was stored"
        )
    if found.client_id and found.client_id != config.twitch.client_id:
        raise CliError(
            f"the token was issued to another app ({found.client_id}); nothing was stored"
        )
    missing = [s for s in scopes if s not in found.scopes]
    if missing:
        raise CliError(
            f"Twitch granted the token without {', '.join(missing)}: {again} and allow every"
            " permission; nothing was stored"
        )
    now = to_ms(clock.now())
    token = StoredToken(
        login=login,
        user_id=found.user_id,
        client_id=config.twitch.client_id,
        access_token=grant.access_token,
        refresh_token=grant.refresh_token,
        scopes=found.scopes,
        expires_at=now + found.expires_in * 1000 if found.expires_in else None,
        obtained_at=now,
        refreshed_at=now,
        validated_at=now,
    )
    async with opened_store(config) as store:
        await store.write(lambda tx: save_token(tx, token))
    print(
        f"Stored a token for {login} (user id {found.user_id}) in {config.database.path};"
        " loyaltybot refreshes it automatically.",
        file=out,
    )
    configured = (
        ("twitch.bot_token", config.twitch.bot_token)
        if login == config.twitch.bot_login
        else (f"channels.{login}.broadcaster_token", config.channels[login].broadcaster_token)
    )
    if configured[1] is not None:
        print(
            f"note: {configured[0]} is set in {config.path} and takes precedence;"
            " remove it to use the stored token.",
            file=out,
        )
    print(
        "A running daemon uses it after `systemctl reload loyaltybot` (SIGHUP) or a restart.",
        file=out,
    )
    return token
