"""``loyaltybot giveaway verify ID``: recompute a giveaway's winners from its recorded seed
and entries, print them, and say whether they match the recorded draw (SPEC §10.2).

Exit 0: they match (and the seed hashes to the commitment posted at close); 1: they do
not; 2: no giveaway has that number, or it has not been drawn (nothing to check yet).
"""

from __future__ import annotations

import argparse
import sqlite3

from loyaltybot.cli.common import EXIT_FAIL, EXIT_OK, EXIT_USAGE, CliCommand, CliError, config_of
from loyaltybot.cli.common import opened as opened_db
from loyaltybot.features.giveaways import service
from loyaltybot.features.giveaways.service import Checked
from loyaltybot.points.amounts import format_points


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("verify",), help="verify: recompute the winners")
    p.add_argument("id", help="the giveaway's number, as announced (#12 or 12)")


async def cmd_giveaway(args: argparse.Namespace) -> int:
    config = config_of(args)
    raw = str(args.id).removeprefix("#")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise CliError(f"{args.id!r} is not a giveaway number (like 12)", EXIT_USAGE)
    giveaway_id = int(raw)
    async with opened_db(config, must_exist=True) as db:

        def read(conn: sqlite3.Connection) -> tuple[Checked, dict[str, str], str] | None:
            found = service.by_id(conn, giveaway_id)
            if found is None:
                return None
            if found.drawn_at is None:
                raise CliError(
                    f"giveaway #{giveaway_id} is {found.state} and has not been drawn:"
                    " nothing to verify yet",
                    EXIT_USAGE,
                )
            logins = {e.user_id: e.login for e in service.entries(conn, found)}
            return service.check(conn, found), logins, service.channel_of(conn, found)

        result = await db.store.read(read)
    if result is None:
        raise CliError(f"no giveaway #{giveaway_id} in {config.database.path}", EXIT_USAGE)
    checked, logins, channel = result
    for line in report(checked, logins, channel):
        print(line)
    return EXIT_OK if checked.result.ok else EXIT_FAIL


def report(checked: Checked, logins: dict[str, str], channel: str) -> list[str]:
    g, result = checked.giveaway, checked.result

    def name(user_id: str) -> str:
        return f"{logins.get(user_id, '?')} ({user_id})"

    lines = [
        f"Giveaway #{g.id} in #{channel}: {g.prize}",
        f"  {format_points(g.tickets)} tickets from {format_points(g.entrants)} entrants;"
        f" algorithm {g.algorithm}",
        f"  commitment {g.commitment}",
        f"  seed       {g.seed}",
    ]
    if result.status in ("bad_seed", "bad_entries"):
        return [*lines, f"verify FAILED: {result.status.replace('_', ' ')}: {result.problem}"]
    sha = "does NOT hash" if result.status == "bad_commitment" else "hashes"
    lines.append(f"  the seed {sha} to the commitment (SHA-256 of its 64 hex characters)")
    lines.append("recomputed winners, in draw order:")
    lines += [f"  {i}. {name(uid)}" for i, uid in enumerate(result.winners, 1)] or ["  (none)"]
    if result.skipped:
        lines.append("recomputed skipped (not present when drawn):")
        lines += [f"  - {name(uid)}" for uid in result.skipped]
    for diff in result.differences:
        recorded = "nobody" if diff.recorded is None else name(diff.recorded)
        recomputed = "nobody" if diff.recomputed is None else name(diff.recomputed)
        lines.append(f"  differs at {diff.what} {diff.index + 1}: recorded {recorded},"
                     f" recomputed {recomputed}")  # fmt: skip
    if result.ok:
        lines.append(
            f"verify ok: the {len(checked.winners)} recorded winner(s) follow from the seed"
            " and the entries"
        )
    else:
        lines.append(f"verify FAILED: {result.status.replace('_', ' ')}")
    return lines


COMMAND = CliCommand(
    "giveaway", "recompute a giveaway's winners from its seed and entries", cmd_giveaway,
    arguments,
)  # fmt: skip
