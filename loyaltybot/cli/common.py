"""What every command shares: its errors and exit codes, loading the config, opening the
bank, naming a channel, asking Twitch, and the one place that turns errors into words.

A user mistake is one clear line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from loyaltybot import settings
from loyaltybot.config import Config, ConfigError, find_config, load_config
from loyaltybot.db import Store, open_store
from loyaltybot.points.amounts import format_points
from loyaltybot.points.bank import Bank
from loyaltybot.points.errors import (
    BalanceTooHigh,
    InsufficientPoints,
    LoyaltyError,
    UnknownChannel,
)
from loyaltybot.points.viewers import normalize_login

if TYPE_CHECKING:
    from loyaltybot.twitch.clients import TwitchClients
    from loyaltybot.twitch.helix import Helix

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

Handler = Callable[[argparse.Namespace], Awaitable[int]]


class CliError(Exception):
    """A finished sentence for the operator, and the exit code that goes with it."""

    def __init__(self, message: str, code: int = EXIT_FAIL) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class CliCommand:
    """A sub-command: its name, help, its own arguments, and what runs it.

    The composition root adds the daemon's and the features' commands (``run``, ``demo``,
    ``rewards``, ``giveaway``) to the ones this package defines."""

    name: str
    help: str
    handler: Handler
    arguments: Callable[[argparse.ArgumentParser], None] = field(default=lambda parser: None)
    quiet_logs: bool = True  # a one-shot command: only warnings reach the terminal


def config_of(args: argparse.Namespace) -> Config:
    """The config the command line names (or the default places)."""
    return load_config(find_config(args.config))


@contextlib.asynccontextmanager
async def opened_store(config: Config, *, must_exist: bool = False) -> AsyncIterator[Store]:
    path = config.database.path
    if must_exist and not path.exists():
        raise CliError(
            f"no database at {path} yet: start the daemon or run `loyaltybot migrate` first"
        )
    store = await open_store(
        path,
        synchronous=config.database.synchronous,
        busy_timeout_ms=config.database.busy_timeout_ms,
    )
    try:
        yield store
    finally:
        await store.close()


@dataclass(frozen=True)
class Opened:
    """The database a command works on: the store (settings, tokens, backups) and the bank
    on it (every balance)."""

    store: Store
    bank: Bank


@contextlib.asynccontextmanager
async def opened(config: Config, *, must_exist: bool = False) -> AsyncIterator[Opened]:
    """The configured database, with the configured channels in it."""
    async with opened_store(config, must_exist=must_exist) as store:
        bank = Bank(store)
        await bank.ensure_channels(config.channels)
        yield Opened(store, bank)


@contextlib.asynccontextmanager
async def twitch(config: Config, store: Store) -> AsyncIterator[TwitchClients]:
    """Helix clients for a one-shot command (imported late: aiohttp is slow to import)."""
    import aiohttp

    from loyaltybot.twitch.clients import TwitchClients
    from loyaltybot.twitch.tokens import Tokens

    async with aiohttp.ClientSession() as session:
        yield TwitchClients(config, session, Tokens(config, store, session), attempts=2)


@contextlib.asynccontextmanager
async def lookup(
    config: Config, store: Store, *, unasked: str, failed: str
) -> AsyncIterator[Helix]:
    """A Helix client for asking Twitch who a login is (``TwitchClients.lookup``).

    Without a token: ``CliError(unasked)``. A token Twitch refuses, or a call in the block
    that fails: ``CliError(failed.format(reason=...))``."""
    from loyaltybot.twitch.helix import HelixError
    from loyaltybot.twitch.oauth import TokenError

    async with twitch(config, store) as clients:
        try:
            helix = await clients.lookup()
        except TokenError as exc:
            raise CliError(failed.format(reason=exc)) from None
        if helix is None:
            raise CliError(unasked)
        try:
            yield helix
        except HelixError as exc:
            raise CliError(failed.format(reason=exc)) from None


def channel_of(config: Config, bank: Bank, channel: str) -> str:
    """A channel argument: a configured channel, or one the database still has."""
    login = normalize_login(channel)
    if login is None or login not in config.channels:
        try:
            bank.channel_id(login or channel)
        except UnknownChannel:
            known = ", ".join(sorted(config.channels)) or "none"
            raise CliError(
                f"unknown channel {channel!r}: not in {config.path} (channels there: {known})"
            ) from None
    return login or channel


async def effective_settings(
    config: Config, db: Opened, channel: str
) -> settings.ChannelSettings:
    """The channel's settings as the daemon sees them: stored, with the file's on top."""
    channel_id = db.bank.channel_id(channel)
    stored = await db.store.read(lambda c: settings.load(c, channel_id))
    file_values = config.settings_from_file(channel) if channel in config.channels else {}
    return stored.values.model_copy(update=file_values)


def whoami() -> str:
    """The operator, for the ledger's actor column (``cli:<user>``)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def explain(exc: BaseException) -> tuple[str, int] | None:
    """The operator-facing sentence for an error we expect, or None for a bug."""
    if isinstance(exc, CliError):
        return str(exc), exc.code
    if isinstance(exc, ConfigError):
        return "\n".join(exc.lines()), EXIT_USAGE
    if isinstance(exc, InsufficientPoints):
        return (
            f"not enough points: the balance is {format_points(exc.balance)},"
            f" less than {format_points(exc.requested)}; nothing changed"
        ), EXIT_FAIL
    if isinstance(exc, BalanceTooHigh):
        return (
            f"the balance {format_points(exc.balance)} is already at the maximum; nothing changed"
        ), EXIT_FAIL
    if isinstance(exc, LoyaltyError):  # unknown viewer or channel, already applied, schema
        return str(exc), EXIT_FAIL
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        return (
            "the database is busy (another process held it longer than"
            " database.busy_timeout_ms); nothing changed, try again"
        ), EXIT_FAIL
    if isinstance(exc, sqlite3.OperationalError) and "unable to open" in str(exc):
        return f"cannot open the database: {exc}", EXIT_FAIL
    if isinstance(exc, sqlite3.DatabaseError) and "not a database" in str(exc):
        return "the database file is not a SQLite database", EXIT_FAIL
    if isinstance(exc, sqlite3.OperationalError) and "disk" in str(exc).lower():
        return f"the database could not be written ({exc}); nothing changed", EXIT_FAIL
    return None
