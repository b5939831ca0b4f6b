"""The ``loyaltybot`` command line (SPEC §2).

Each sub-command is a small async function. A user mistake is one clear line on stderr
and a non-zero exit, never a traceback: ``_explain`` is the one place that turns errors
into words.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import getpass
import os
import sqlite3
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from loyaltybot import __version__, exchange, logs, settings
from loyaltybot.amounts import format_points, parse_amount
from loyaltybot.bank import Bank
from loyaltybot.config import Config, ConfigError, find_config, load_config
from loyaltybot.errors import (
    AlreadyApplied,
    BalanceTooHigh,
    InsufficientPoints,
    InvalidAmount,
    LoyaltyError,
    SchemaTooNew,
    UnknownChannel,
    UnknownViewer,
)
from loyaltybot.exchange import ImportFileError
from loyaltybot.ledger import EntryType
from loyaltybot.store import open_store
from loyaltybot.viewers import Viewer, normalize_login

if TYPE_CHECKING:
    import aiohttp

    from loyaltybot.twitch.auth import TokenSource

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """A finished sentence for the operator, and the exit code that goes with it."""

    def __init__(self, message: str, code: int = EXIT_FAIL) -> None:
        super().__init__(message)
        self.code = code


# ---- shared plumbing -------------------------------------------------------------------


def _config(args: argparse.Namespace) -> Config:
    return load_config(find_config(args.config))


@contextlib.asynccontextmanager
async def _opened(config: Config, *, must_exist: bool = False) -> AsyncIterator[Bank]:
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
        bank = Bank(store)
        await bank.ensure_channels(config.channels)
        yield bank
    finally:
        await store.close()


def _channel(config: Config, bank: Bank, channel: str) -> str:
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


async def _effective_settings(config: Config, bank: Bank, channel: str) -> settings.ChannelSettings:
    channel_id = bank.channel_id(channel)
    stored = await bank.store.read(lambda c: settings.load(c, channel_id))
    file_values = config.settings_from_file(channel) if channel in config.channels else {}
    return stored.values.model_copy(update=file_values)


def _token_source(config: Config, session: aiohttp.ClientSession) -> TokenSource | None:
    from loyaltybot.twitch.auth import AppToken, StaticToken

    twitch = config.twitch
    if twitch.bot_token is not None:
        return StaticToken(twitch.bot_token)
    if twitch.client_secret is not None:
        return AppToken(session, twitch.auth_url, twitch.client_id, twitch.client_secret)
    return None


async def _resolve_viewer(
    config: Config, bank: Bank, channel: str, text: str, user_id: str | None = None
) -> Viewer:
    """A login as chat matches it; one the channel never saw is asked of Twitch, unless
    the operator gives its user id (``--user-id``: Twitch not configured or not reachable)."""
    login = normalize_login(text)
    if login is None:
        raise CliError(f"{text!r} is not a Twitch login")
    if user_id is not None and not (user_id.isdigit() and len(user_id) <= 20):
        raise CliError(f"--user-id {user_id!r} is not a Twitch user id (digits only)")
    record = await bank.viewer(channel, login)
    if record is not None:
        if user_id is not None and user_id != record.identity.user_id:
            raise CliError(
                f"{login} is user {record.identity.user_id} in #{channel}, not {user_id}"
            )
        return record.identity
    if user_id is not None:
        return Viewer(user_id, login, login)
    unseen = f"{login} has never been seen in #{channel}"
    import aiohttp  # only this command talks to Twitch; keep the others quick to start

    from loyaltybot.twitch.helix import Helix, HelixError

    async with aiohttp.ClientSession() as session:
        tokens = _token_source(config, session)
        if tokens is None:
            raise CliError(
                f"{unseen}, and Twitch cannot be asked who that is:"
                " set twitch.bot_token or twitch.client_secret, or give --user-id"
            )
        helix = Helix(session, config.twitch.api_url, config.twitch.client_id, tokens, attempts=2)
        try:
            users = await helix.get_users(logins=[login])
        except HelixError as exc:
            raise CliError(f"{unseen}, and Twitch could not tell who that is ({exc})") from None
    if not users:
        raise CliError(f"{unseen}, and Twitch has no user called {login}")
    user = users[0]
    return Viewer(user.id, user.login, user.display_name)


# ---- commands --------------------------------------------------------------------------


async def cmd_check_config(args: argparse.Namespace) -> int:
    config = _config(args)
    print(f"{config.path}: ok ({len(config.channels)} channel(s): {', '.join(config.channels)})")
    return EXIT_OK


async def cmd_migrate(args: argparse.Namespace) -> int:
    config = _config(args)
    from loyaltybot.store import migrations

    before = config.database.path.exists()
    async with _opened(config) as bank:
        version = await bank.store.read(migrations.current_version)
    state = "created and migrated" if not before else "migrated"
    print(f"{config.database.path}: {state}, schema version {version}")
    return EXIT_OK


async def cmd_audit(args: argparse.Namespace) -> int:
    config = _config(args)
    async with _opened(config, must_exist=True) as bank:
        channel = _channel(config, bank, args.channel) if args.channel else None
        problems = await bank.audit(channel)
        counts = await bank.store.read(
            lambda c: c.execute(
                "SELECT count(*), count(DISTINCT channel_id) FROM viewers"
                + (" WHERE channel_id = ?" if channel else ""),
                (bank.channel_id(channel),) if channel else (),
            ).fetchone()
        )
    if problems:
        for problem in problems:
            print(problem)
        print(f"audit FAILED: {len(problems)} discrepancies", file=sys.stderr)
        return EXIT_FAIL
    where = f"#{channel}" if channel else f"{counts[1]} channel(s)"
    print(f"audit ok: {counts[0]:,} viewer balances in {where} equal their history")
    return EXIT_OK


async def cmd_export(args: argparse.Namespace) -> int:
    config = _config(args)
    async with _opened(config, must_exist=True) as bank:
        channel = _channel(config, bank, args.channel)
        channel_id = bank.channel_id(channel)
        rows = await bank.store.read(lambda c: exchange.export_rows(c, channel_id))
    text = exchange.render(rows, args.format)
    if args.output and args.output != "-":
        Path(args.output).write_text(text, "utf-8")
        print(f"exported {len(rows):,} viewers of #{channel} to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


async def cmd_import(args: argparse.Namespace) -> int:
    config = _config(args)
    path = Path(args.file)
    try:
        if path.stat().st_size > exchange.MAX_FILE_BYTES:
            raise CliError(f"{path}: larger than {exchange.MAX_FILE_BYTES // 2**20} MiB")
        text = path.read_text("utf-8-sig")
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise CliError(f"{path}: not UTF-8 text; nothing was imported") from None
    except OSError as exc:
        raise CliError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        rows = exchange.parse(text, args.format)
    except ImportFileError as exc:
        where = f"{path}:{exc.line}" if exc.line else str(path)
        raise CliError(f"{where}: {exc.message}; nothing was imported") from None
    digest = exchange.digest(rows)
    async with _opened(config) as bank:
        channel = _channel(config, bank, args.channel)
        channel_id = bank.channel_id(channel)
        try:
            if args.dry_run:
                report = await bank.store.read(
                    lambda c: exchange.apply(c, channel_id, rows, digest, dry_run=True)
                )
            else:
                report = await bank.store.write(
                    lambda tx: exchange.apply(tx, channel_id, rows, digest, source=args.format)
                )
        except ImportFileError as exc:
            raise CliError(f"{path}:{exc.line}: {exc.message}; nothing was imported") from None
    verb = "would import" if args.dry_run else "imported"
    todo = report.rows - report.already_imported
    print(
        f"{verb} {todo:,} of {report.rows:,} rows into #{channel}:"
        f" {format_points(report.points)} points, {report.new_viewers:,} new viewers"
        + (
            f"; {report.already_imported:,} rows were already imported from this file"
            if report.already_imported
            else ""
        )
    )
    if report.imported_before_from_other_files:
        names = report.imported_before_from_other_files
        shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        print(f"note: these viewers already had points imported from another file: {shown}")
    return EXIT_OK


async def cmd_points(args: argparse.Namespace) -> int:
    config = _config(args)
    try:
        amount = parse_amount(args.amount, allow_zero=args.action == "set")
    except InvalidAmount as exc:
        raise CliError(f"amount {args.amount!r} {exc.reason}", EXIT_USAGE) from None
    async with _opened(config) as bank:
        channel = _channel(config, bank, args.channel)
        viewer = await _resolve_viewer(config, bank, channel, args.user, args.user_id)
        rules = await _effective_settings(config, bank, channel)
        actor = f"cli:{_whoami()}"
        reason = args.reason
        if args.action == "add":
            change = await bank.credit(
                channel, viewer, amount, kind=EntryType.ADD, reason=reason, actor=actor
            )
        elif args.action == "remove":
            change = await bank.debit(
                channel, viewer, amount, kind=EntryType.REMOVE, reason=reason, actor=actor
            )
        else:
            change = await bank.set_balance(channel, viewer, amount, reason=reason, actor=actor)
    before = change.balance - change.applied
    sign = "+" if change.applied >= 0 else "-"
    note = f" (clamped from {format_points(abs(change.requested))})" if change.clamped else ""
    print(
        f"#{channel} {viewer.login}: {format_points(before)} -> {format_points(change.balance)}"
        f" {rules.currency(change.balance)} ({sign}{format_points(abs(change.applied))}){note}"
    )
    return EXIT_OK


async def cmd_backup(args: argparse.Namespace) -> int:
    config = _config(args)
    destination = Path(args.destination)
    if destination.is_dir():
        from datetime import UTC, datetime

        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        destination = destination / f"loyaltybot-{stamp}.db"
    if destination.exists() and not args.force:
        raise CliError(f"{destination} exists: choose another name or pass --force")
    if not destination.parent.is_dir():
        raise CliError(f"{destination.parent} is not a directory")
    async with _opened(config, must_exist=True) as bank:
        await bank.store.backup(destination)
    check = sqlite3.connect(f"file:{destination}?mode=ro", uri=True)
    try:
        (result,) = check.execute("PRAGMA integrity_check").fetchone()
    finally:
        check.close()
    if result != "ok":
        raise CliError(f"{destination}: the copy failed its integrity check ({result})")
    size = destination.stat().st_size
    print(f"backed up {config.database.path} to {destination} ({size / 2**20:.1f} MiB, verified)")
    return EXIT_OK


async def cmd_rewards(args: argparse.Namespace) -> int:
    from loyaltybot import cli_rewards

    return await cli_rewards.cmd_rewards(args)


async def cmd_demo(args: argparse.Namespace) -> int:
    from loyaltybot import demo

    return await demo.run_demo(port=args.port, viewers=args.viewers, seconds=args.seconds)


async def cmd_run(args: argparse.Namespace) -> int:
    from loyaltybot import daemon

    config = _config(args)
    # What is imported now lives as long as the process: keep it out of the cyclic
    # collector's full passes (measured over three 100,000-viewer ticks: 9 passes of
    # 30-60 ms without this, 2 with it).
    gc.freeze()
    return await daemon.run(config)


def _whoami() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


# ---- parser and error rendering --------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    config_help = "config file (default: ./config.toml, then /etc/loyaltybot/config.toml)"
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-c", "--config", default=argparse.SUPPRESS, help=config_help)

    parser = argparse.ArgumentParser(
        prog="loyaltybot", description="Self-hosted Twitch loyalty points.", parents=[common]
    )
    parser.add_argument("--version", action="version", version=f"loyaltybot {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")

    def add(
        name: str, handler: Callable[[argparse.Namespace], Awaitable[int]], help: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help, description=help)
        p.set_defaults(handler=handler)
        return p

    add("run", cmd_run, "run the daemon in the foreground")
    p = add("demo", cmd_demo, "the daemon against the built-in Twitch simulator (no account)")
    p.add_argument("--port", type=int, default=8080, help="dashboard port (default 8080)")
    p.add_argument("--viewers", type=int, default=150, help="simulated viewers")
    p.add_argument("--seconds", type=float, help="stop after this long (default: Ctrl-C)")
    add("check-config", cmd_check_config, "validate the config file")
    add("migrate", cmd_migrate, "create the database or bring its schema up to date")
    p = add("audit", cmd_audit, "prove every balance equals its history")
    p.add_argument("--channel", help="only this channel")
    p = add("export", cmd_export, "write every viewer of a channel as csv or json")
    p.add_argument("--channel", required=True)
    p.add_argument("--format", choices=("csv", "json"), default="csv")
    p.add_argument("-o", "--output", help="file to write (default: stdout)")
    from loyaltybot import cli_auth, importers  # they use this module's helpers

    p = add("import", importers.cmd_import, "import balances from an export file")
    p.add_argument("--channel", required=True)
    p.add_argument("--format", choices=("csv", "json", *importers.FORMATS), required=True)
    p.add_argument("file")
    p.add_argument("--dry-run", action="store_true", help="show what would change, change nothing")
    p = add("auth", cli_auth.cmd_auth, "get a Twitch token for the bot (device code flow)")
    p.add_argument("--channel", help="authorise this channel's broadcaster instead of the bot")
    p = add("points", cmd_points, "add, remove or set a viewer's points")
    p.add_argument("action", choices=("add", "remove", "set"))
    p.add_argument("channel")
    p.add_argument("user", help="the viewer's login")
    p.add_argument("amount")
    p.add_argument("--reason", help="why (kept in the ledger)")
    p.add_argument(
        "--user-id",
        help="the viewer's Twitch user id, for a login this channel has never seen when"
        " Twitch cannot be asked (no token configured, or offline)",
    )
    p = add("backup", cmd_backup, "consistent copy of the live database")
    p.add_argument("destination", help="a file name, or a directory to put a dated copy in")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p = add("rewards", cmd_rewards, "channel-point rewards on Twitch")
    p.add_argument("action", choices=("sync",), help="sync: create the configured rewards")
    p.add_argument("--channel", help="only this channel")
    return parser


def _explain(exc: BaseException) -> tuple[str, int] | None:
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
    if isinstance(exc, UnknownViewer | UnknownChannel | AlreadyApplied | SchemaTooNew):
        return str(exc), EXIT_FAIL
    if isinstance(exc, LoyaltyError):
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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "config"):
        args.config = None
    if args.command not in ("run", "demo"):
        logs.configure("warning", "console")
    try:
        code: int = asyncio.run(args.handler(args))
        return code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        explained = _explain(exc)
        if explained is None:
            if os.environ.get("LOYALTYBOT_DEBUG"):
                raise
            print(
                f"loyaltybot: internal error ({type(exc).__name__}); set LOYALTYBOT_DEBUG=1"
                " to see the traceback, and please report it",
                file=sys.stderr,
            )
            return 70
        message, code = explained
        prefix = "" if isinstance(exc, ConfigError) else "loyaltybot: "
        print(prefix + message, file=sys.stderr)
        return code
