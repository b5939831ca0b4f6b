"""The database as data: ``check-config``, ``migrate``, ``audit``, ``export``, ``import``
and ``backup``.

``import`` is one command for every format: our own csv/json carry user ids and are
applied as they are; the other bots' exports name logins, which Twitch resolves first.
Either way every balance goes through ``exchange.apply``: all rows or none, each a ledger
row of type ``import``, and a re-run changes nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from loyaltybot.cli.common import (
    EXIT_FAIL,
    EXIT_OK,
    CliError,
    Opened,
    channel_of,
    config_of,
    lookup,
    opened,
)
from loyaltybot.config import Config
from loyaltybot.db import integrity_of, migrations
from loyaltybot.points import exchange, importers
from loyaltybot.points.amounts import format_points
from loyaltybot.points.exchange import ImportFileError, ImportReport

OWN_FORMATS = ("csv", "json")


async def cmd_check_config(args: argparse.Namespace) -> int:
    from loyaltybot.cli.warnings import config_warnings  # reads the database, if any

    config = config_of(args)
    print(f"{config.path}: ok ({len(config.channels)} channel(s): {', '.join(config.channels)})")
    for line in config_warnings(config):
        print(line, file=sys.stderr)
    return EXIT_OK


async def cmd_migrate(args: argparse.Namespace) -> int:
    config = config_of(args)
    before = config.database.path.exists()
    async with opened(config) as db:
        version = await db.store.read(migrations.current_version)
    state = "created and migrated" if not before else "migrated"
    print(f"{config.database.path}: {state}, schema version {version}")
    return EXIT_OK


def audit_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--channel", help="only this channel")


async def cmd_audit(args: argparse.Namespace) -> int:
    config = config_of(args)
    async with opened(config, must_exist=True) as db:
        channel = channel_of(config, db.bank, args.channel) if args.channel else None
        problems = await db.bank.audit(channel)
        viewers, channels = await db.bank.counts(channel)
        rounds, held = await db.bank.escrow_totals(channel)
    if problems:
        for problem in problems:
            print(problem)
        print(f"audit FAILED: {len(problems)} discrepancies", file=sys.stderr)
        return EXIT_FAIL
    where = f"#{channel}" if channel else f"{channels} channel(s)"
    print(f"audit ok: {viewers:,} viewer balances in {where} equal their history")
    if rounds:
        print(f"          {rounds:,} open round(s) hold exactly their stakes: {held:,} points")
    return EXIT_OK


def export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--channel", required=True)
    p.add_argument("--format", choices=OWN_FORMATS, default="csv")
    p.add_argument("-o", "--output", help="file to write (default: stdout)")


async def cmd_export(args: argparse.Namespace) -> int:
    config = config_of(args)
    async with opened(config, must_exist=True) as db:
        channel = channel_of(config, db.bank, args.channel)
        rows = await db.bank.export(channel)
    text = exchange.render(rows, args.format)
    if args.output and args.output != "-":
        Path(args.output).write_text(text, "utf-8")
        print(f"exported {len(rows):,} viewers of #{channel} to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def import_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--channel", required=True)
    p.add_argument("--format", choices=(*OWN_FORMATS, *importers.FORMATS), required=True)
    p.add_argument("file")
    p.add_argument("--dry-run", action="store_true", help="show what would change, change nothing")


async def cmd_import(args: argparse.Namespace) -> int:
    """One import for every format; a malformed file names its line and imports nothing."""
    config = config_of(args)
    path = Path(args.file)
    own = args.format in OWN_FORMATS
    try:
        if own:
            rows = exchange.parse(_read_text(path), args.format)
        else:
            source_rows = importers.parse_file(path, args.format)
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CliError(f"{path}: is a directory") from None
    except OSError as exc:
        raise CliError(f"{path}: cannot read ({exc.strerror})") from None
    except ImportFileError as exc:
        where = f"{path}:{exc.line}" if exc.line else str(path)
        raise CliError(f"{where}: {exc.message}; nothing was imported") from None
    async with opened(config) as db:
        channel = channel_of(config, db.bank, args.channel)
        unknown: list[importers.SourceRow] = []
        if own:
            key = exchange.digest(rows)
        else:
            if not source_rows:
                raise CliError(f"{path}: no viewers in the file; nothing was imported")
            resolution = await _resolve(config, db, source_rows)
            rows, unknown = resolution.rows, resolution.unknown
            key = importers.import_key(args.format, db.bank.channel_id(channel))
        try:
            report = await db.bank.import_rows(
                channel, rows, key, source=args.format, dry_run=args.dry_run
            )
        except ImportFileError as exc:
            raise CliError(f"{path}:{exc.line}: {exc.message}; nothing was imported") from None
    lines = (
        _own_summary(report, channel, args.dry_run)
        if own
        else importers.render(
            report,
            unknown,
            channel=channel,
            fmt=args.format,
            dry_run=args.dry_run,
        )
    )
    for line in lines:
        print(line)
    return EXIT_OK


def _read_text(path: Path) -> str:
    if path.stat().st_size > exchange.MAX_FILE_BYTES:
        raise CliError(f"{path}: larger than {exchange.MAX_FILE_BYTES // 2**20} MiB")
    try:
        return path.read_text("utf-8-sig")
    except UnicodeDecodeError:
        raise CliError(f"{path}: not UTF-8 text; nothing was imported") from None


async def _resolve(
    config: Config, db: Opened, rows: list[importers.SourceRow]
) -> importers.Resolution:
    """Other bots name logins: Twitch says whose they are (Get Users, 100 per request)."""
    async with lookup(
        config,
        db.store,
        unasked="resolving logins needs Twitch: set twitch.client_secret, or run"
        " `loyaltybot auth`; nothing was imported",
        failed="could not ask Twitch who the viewers are ({reason}); nothing was imported",
    ) as helix:
        return await importers.resolve(helix, rows)


def _own_summary(report: ImportReport, channel: str, dry_run: bool) -> list[str]:
    verb = "would import" if dry_run else "imported"
    todo = report.rows - report.already_imported
    lines = [
        f"{verb} {todo:,} of {report.rows:,} rows into #{channel}:"
        f" {format_points(report.points)} points, {report.new_viewers:,} new viewers"
        + (
            f"; {report.already_imported:,} rows were already imported from this file"
            if report.already_imported
            else ""
        )
    ]
    if report.imported_before_from_other_files:
        names = report.imported_before_from_other_files
        shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        lines.append(f"note: these viewers already had points imported from another file: {shown}")
    return lines


def backup_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("destination", help="a file name, or a directory to put a dated copy in")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")


async def cmd_backup(args: argparse.Namespace) -> int:
    config = config_of(args)
    destination = Path(args.destination)
    if destination.is_dir():
        from datetime import UTC, datetime

        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        destination = destination / f"loyaltybot-{stamp}.db"
    if destination.exists() and not args.force:
        raise CliError(f"{destination} exists: choose another name or pass --force")
    if not destination.parent.is_dir():
        raise CliError(f"{destination.parent} is not a directory")
    async with opened(config, must_exist=True) as db:
        await db.store.backup(destination)
    result = integrity_of(destination)
    if result != "ok":
        raise CliError(f"{destination}: the copy failed its integrity check ({result})")
    size = destination.stat().st_size
    print(f"backed up {config.database.path} to {destination} ({size / 2**20:.1f} MiB, verified)")
    return EXIT_OK

