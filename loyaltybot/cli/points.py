"""``loyaltybot points add|remove|set C USER N``: adjustments through the same ledger as chat.

The viewer is found as chat finds them (exact login, first sight included); a login the
channel never saw is asked of Twitch, or named by ``--user-id`` when Twitch cannot be asked.
"""

from __future__ import annotations

import argparse

from loyaltybot.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    Opened,
    channel_of,
    config_of,
    effective_settings,
    lookup,
    opened,
    whoami,
)
from loyaltybot.config import Config
from loyaltybot.points.amounts import format_points, parse_amount
from loyaltybot.points.errors import InvalidAmount
from loyaltybot.points.ledger import EntryType
from loyaltybot.points.viewers import Viewer, normalize_login


def arguments(p: argparse.ArgumentParser) -> None:
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


async def cmd_points(args: argparse.Namespace) -> int:
    config = config_of(args)
    try:
        amount = parse_amount(args.amount, allow_zero=args.action == "set")
    except InvalidAmount as exc:
        raise CliError(f"amount {args.amount!r} {exc.reason}", EXIT_USAGE) from None
    async with opened(config) as db:
        bank = db.bank
        channel = channel_of(config, bank, args.channel)
        viewer = await resolve_viewer(config, db, channel, args.user, args.user_id)
        rules = await effective_settings(config, db, channel)
        actor = f"cli:{whoami()}"
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


async def resolve_viewer(
    config: Config, db: Opened, channel: str, text: str, user_id: str | None = None
) -> Viewer:
    """A login as chat matches it; one the channel never saw is asked of Twitch, unless
    the operator gives its user id (``--user-id``: Twitch not configured or not reachable)."""
    login = normalize_login(text)
    if login is None:
        raise CliError(f"{text!r} is not a Twitch login")
    if user_id is not None and not (user_id.isdigit() and len(user_id) <= 20):
        raise CliError(f"--user-id {user_id!r} is not a Twitch user id (digits only)")
    record = await db.bank.viewer(channel, login)
    if record is not None:
        if user_id is not None and user_id != record.identity.user_id:
            raise CliError(
                f"{login} is user {record.identity.user_id} in #{channel}, not {user_id}"
            )
        return record.identity
    if user_id is not None:
        return Viewer(user_id, login, login)
    unseen = f"{login} has never been seen in #{channel}"
    async with lookup(
        config,
        db.store,
        unasked=f"{unseen}, and Twitch cannot be asked who that is:"
        " set twitch.bot_token or twitch.client_secret, or give --user-id",
        failed=f"{unseen}, and Twitch could not tell who that is ({{reason}})",
    ) as helix:
        users = await helix.get_users(logins=[login])
    if not users:
        raise CliError(f"{unseen}, and Twitch has no user called {login}")
    user = users[0]
    return Viewer(user.id, user.login, user.display_name)
