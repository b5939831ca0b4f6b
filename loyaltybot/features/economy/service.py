"""The economy's figures (SPEC §10.7), read from the core's books: the ledger and the
earning ticks. The feature's SQL lives here and nowhere else.

Reading a million ledger rows for every page view would cost far more than the page's
50 ms, so migration 0008 keeps two daily roll-ups with triggers, in the transaction of
every change (no code path can forget them):

- ``ledger_daily``: per channel, UTC day and ledger type, the points credited and debited;
- ``escrow_daily``: per channel, UTC day and kind of round (contest, duel, heist, giveaway),
  the rounds that ended that day and what their stakers won and lost in them (each
  viewer's payout or refund minus their stake: above 0 won, below 0 lost).

Earning ticks are one row per interval (a few hundred a day) and are summed by their
``(channel_id, credited_at)`` index. Points in circulation at the end of a day follow
from the audit's own identity, ``sum(points) == earned_total + sum(ledger)``, minus
whatever came in after that day: exact without reading a viewer.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime

from loyaltybot.points.ledger import EntryType

DAY_MS = 86_400_000
GAME_KINDS = ("contest", "duel", "heist")  # escrow rounds whose stakes are won or lost

_T = EntryType
_ADJUSTMENTS = (_T.ADD, _T.REMOVE, _T.SET, _T.IMPORT)


@dataclass
class Day:
    """One UTC day's figures; points, all of them."""

    day: int  # days since the epoch
    watching: int = 0  # earning ticks
    events: int = 0  # follow, sub, gift, cheer and raid bonuses
    given: int = 0  # moved by !give
    spent_shop: int = 0  # shop purchases, net of refunds
    spent_tickets: int = 0  # giveaway tickets, net of refunds
    adjusted: int = 0  # by moderators and operators: !addpoints, !removepoints, set, import
    won: int = 0  # games won, and the gains of contests, duels and heists that ended
    lost: int = 0
    circulation: int = 0  # every balance together, at the end of the day
    won_by: dict[str, int] = field(default_factory=dict)  # game or kind -> points
    lost_by: dict[str, int] = field(default_factory=dict)

    @property
    def date(self) -> str:
        return datetime.fromtimestamp(self.day * 86_400, UTC).strftime("%Y-%m-%d")

    @property
    def earned(self) -> int:
        return self.watching + self.events

    @property
    def spent(self) -> int:
        return self.spent_shop + self.spent_tickets


@dataclass(frozen=True)
class Economy:
    days: tuple[Day, ...]  # oldest first, the last is today
    circulation: int  # now
    held: int  # points in open rounds now (staked, not yet settled)
    open_rounds: int

    def total(self, name: str) -> int:
        return sum(getattr(day, name) for day in self.days)

    def by_kind(self) -> list[tuple[str, int, int]]:
        """(game or kind, won, lost) over the whole period."""
        kinds: dict[str, list[int]] = {}
        for day in self.days:
            for kind, value in day.won_by.items():
                kinds.setdefault(kind, [0, 0])[0] += value
            for kind, value in day.lost_by.items():
                kinds.setdefault(kind, [0, 0])[1] += value
        return [(kind, won, lost) for kind, (won, lost) in sorted(kinds.items())]


def economy(conn: sqlite3.Connection, channel_id: int, now_ms: int, days: int = 30) -> Economy:
    """The last ``days`` UTC days up to today's, and the channel's totals now."""
    today = now_ms // DAY_MS
    first = today - days + 1
    table = {d: Day(d) for d in range(first, today + 1)}
    net_after: dict[int, int] = {}  # day -> net change of every balance on that day

    for day, type_, credits, debits in conn.execute(
        "SELECT day, type, credits, debits FROM ledger_daily WHERE channel_id = ? AND day >= ?",
        (channel_id, first),
    ):
        net_after[day] = net_after.get(day, 0) + credits - debits
        entry = table.get(day)
        if entry is None:  # a row dated after today (a clock set back): counted in the total
            continue
        if type_ == _T.BONUS:
            entry.events += credits - debits
        elif type_ in _ADJUSTMENTS:
            entry.adjusted += credits - debits
        elif type_ == _T.TRANSFER:
            entry.given += credits
        elif type_ == _T.SHOP_PURCHASE:
            entry.spent_shop += debits - credits
        elif type_ == _T.SHOP_REFUND:
            entry.spent_shop -= credits - debits
        elif type_ == _T.GIVEAWAY_TICKET:
            entry.spent_tickets += debits - credits
        elif type_ == _T.GIVEAWAY_REFUND:
            entry.spent_tickets -= credits - debits
        elif type_ == _T.GAME_WIN:
            entry.won += credits
            entry.won_by["games"] = entry.won_by.get("games", 0) + credits
        elif type_ == _T.GAME_LOSS:
            entry.lost += debits
            entry.lost_by["games"] = entry.lost_by.get("games", 0) + debits

    marks = ",".join("?" * len(GAME_KINDS))
    for day, kind, won, lost in conn.execute(
        f"SELECT day, kind, won, lost FROM escrow_daily WHERE channel_id = ? AND day >= ?"
        f" AND kind IN ({marks})",
        (channel_id, first, *GAME_KINDS),
    ):
        entry = table.get(day)
        if entry is None:
            continue
        entry.won += won
        entry.lost += lost
        label = f"{kind}s"
        entry.won_by[label] = entry.won_by.get(label, 0) + won
        entry.lost_by[label] = entry.lost_by.get(label, 0) + lost

    for day, points in conn.execute(
        "SELECT credited_at / ? AS day, sum(points) FROM earning_ticks"
        " WHERE channel_id = ? AND credited_at >= ? GROUP BY day",
        (DAY_MS, channel_id, first * DAY_MS),
    ):
        net_after[day] = net_after.get(day, 0) + points
        if day in table:
            table[day].watching += points

    (earned,) = conn.execute(
        "SELECT earned_total FROM channels WHERE id = ?", (channel_id,)
    ).fetchone() or (0,)
    (ledger_total,) = conn.execute(
        "SELECT coalesce(sum(credits - debits), 0) FROM ledger_daily WHERE channel_id = ?",
        (channel_id,),
    ).fetchone()
    circulation = int(earned) + int(ledger_total)
    running = circulation - sum(net for day, net in net_after.items() if day > today)
    for day in range(today, first - 1, -1):
        table[day].circulation = running
        running -= net_after.get(day, 0)

    rounds, held = conn.execute(
        "SELECT count(*), coalesce(sum(held), 0) FROM escrow_rounds"
        " WHERE state = 'open' AND channel_id = ?",
        (channel_id,),
    ).fetchone()
    return Economy(tuple(table[d] for d in range(first, today + 1)), circulation, int(held),
                   int(rounds))  # fmt: skip


def check(conn: sqlite3.Connection, channel_id: int) -> list[str]:
    """Where the roll-ups disagree with the books they summarise (empty: they agree).

    For tests and the curious: the triggers keep them, this recomputes them."""
    problems = []
    rolled = {
        (day, type_): (credits, debits)
        for day, type_, credits, debits in conn.execute(
            "SELECT day, type, credits, debits FROM ledger_daily WHERE channel_id = ?",
            (channel_id,),
        )
    }
    actual = {
        (day, type_): (credits, debits)
        for day, type_, credits, debits in conn.execute(
            "SELECT created_at / ?, type, sum(max(amount, 0)), sum(max(-amount, 0))"
            " FROM ledger WHERE channel_id = ? GROUP BY 1, 2",
            (DAY_MS, channel_id),
        )
    }
    for key in sorted(set(rolled) | set(actual)):
        if rolled.get(key) != actual.get(key):
            problems.append(f"ledger_daily {key}: {rolled.get(key)} != ledger {actual.get(key)}")
    rolled_rounds = {
        (day, kind): (rounds, won, lost)
        for day, kind, rounds, won, lost in conn.execute(
            "SELECT day, kind, rounds, won, lost FROM escrow_daily WHERE channel_id = ?",
            (channel_id,),
        )
    }
    actual_rounds = {
        (day, kind): (rounds, won, lost)
        for day, kind, rounds, won, lost in conn.execute(
            "SELECT r.settled_at / ?, r.kind, count(*), coalesce(sum(n.won), 0),"
            " coalesce(sum(n.lost), 0) FROM escrow_rounds AS r"
            " LEFT JOIN (SELECT round_id, sum(max(net, 0)) AS won, sum(max(-net, 0)) AS lost"
            "   FROM (SELECT round_id, sum(amount) AS net FROM ledger"
            "         WHERE round_id IS NOT NULL GROUP BY round_id, user_id)"
            "   GROUP BY round_id) AS n ON n.round_id = r.id"
            " WHERE r.channel_id = ? AND r.state <> 'open' GROUP BY 1, 2",
            (DAY_MS, channel_id),
        )
    }
    for key in sorted(set(rolled_rounds) | set(actual_rounds)):
        if rolled_rounds.get(key) != actual_rounds.get(key):
            problems.append(
                f"escrow_daily {key}: {rolled_rounds.get(key)} != {actual_rounds.get(key)}"
            )
    return problems
