"""The ``loyaltybot`` command line (SPEC §2): the parser and ``main``.

What lives here: the commands on the database and on tokens (``common``: errors, config,
opening the bank, the error renderer; ``points``; ``data``: check-config, migrate, audit,
export, import, backup; ``auth``). What may not: the daemon or any feature. Their commands
(``run``, ``demo``, ``rewards``, ``giveaway``) are handed to ``main`` by the composition
root (``loyaltybot.daemon.main``), which is what the ``loyaltybot`` script runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from loyaltybot import __version__, logs
from loyaltybot.cli import auth, data, points
from loyaltybot.cli.common import CliCommand, CliError, explain
from loyaltybot.config import ConfigError

COMMANDS: tuple[CliCommand, ...] = (
    CliCommand("check-config", "validate the config file", data.cmd_check_config),
    CliCommand(
        "migrate", "create the database or bring its schema up to date", data.cmd_migrate
    ),
    CliCommand(
        "audit", "prove every balance equals its history", data.cmd_audit, data.audit_arguments
    ),
    CliCommand(
        "export",
        "write every viewer of a channel as csv or json",
        data.cmd_export,
        data.export_arguments,
    ),
    CliCommand(
        "import", "import balances from an export file", data.cmd_import, data.import_arguments
    ),
    CliCommand(
        "auth",
        "get a Twitch token for the bot (device code flow)",
        auth.cmd_auth,
        auth.arguments,
    ),
    CliCommand(
        "points", "add, remove or set a viewer's points", points.cmd_points, points.arguments
    ),
    CliCommand(
        "backup", "consistent copy of the live database", data.cmd_backup, data.backup_arguments
    ),
)


def build_parser(commands: Sequence[CliCommand] = COMMANDS) -> argparse.ArgumentParser:
    config_help = "config file (default: ./config.toml, then /etc/loyaltybot/config.toml)"
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-c", "--config", default=argparse.SUPPRESS, help=config_help)

    parser = argparse.ArgumentParser(
        prog="loyaltybot", description="Self-hosted Twitch loyalty points.", parents=[common]
    )
    parser.add_argument("--version", action="version", version=f"loyaltybot {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    for command in commands:
        p = sub.add_parser(
            command.name, parents=[common], help=command.help, description=command.help
        )
        p.set_defaults(handler=command.handler, quiet_logs=command.quiet_logs)
        command.arguments(p)
    return parser


def main(argv: list[str] | None = None, commands: Sequence[CliCommand] = COMMANDS) -> int:
    """Parse, run one command, and turn an expected error into one line and an exit code."""
    parser = build_parser(commands)
    args = parser.parse_args(argv)
    if not hasattr(args, "config"):
        args.config = None
    if args.quiet_logs:
        logs.configure("warning", "console")
    try:
        code: int = asyncio.run(args.handler(args))
        return code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        explained = explain(exc)
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


__all__ = ["COMMANDS", "CliCommand", "CliError", "build_parser", "main"]
