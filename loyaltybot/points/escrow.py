"""Escrow: points held by an open round until one transaction settles it (DESIGN invariant 9).

A **round** is anything viewers stake points into and that ends later: a giveaway's
tickets, a contest's bets, a duel's two stakes, a heist's crew. The owning feature opens
it (``kind`` names the feature), takes **stakes** into it, and ends it in exactly one
settling transaction: ``settle`` pays out what the feature decided (nothing, for tickets,
which are spent), or ``refund`` gives every stake back. A round may have a deadline; the
feature's timer settles it, and at start-up the feature settles what ``due`` lists (the
daemon may have been down when the time ran out). The core decides nothing about who
wins: it holds the points and proves the books.

Every function here runs inside the caller's transaction (``Store.write``), so a feature
composes a stake with its own rows (a giveaway entry, a duel) in one commit. Points move
only through ``ledger``: a stake is a ledger debit of the feature's type (e.g.
``giveaway_ticket``) naming the round, a payout or refund a ledger credit naming it. So
``points == earned_total + sum(ledger)`` still holds for every viewer, and ``audit`` adds,
per round:

- open: ``held == staked`` and nothing returned; settled or refunded: ``held == 0``;
- the round's ledger debits add up to ``staked``, its credits to ``returned``;
- its stakes add up to ``staked`` (points), ``units`` and ``entrants``, and each viewer's
  stake equals their own debits for the round (no stake without its ledger row, no row
  without its stake).

The API (each ``tx`` function has an async twin on ``Bank``):

``open_round(tx, channel_id, kind, deadline_ms=None) -> Round``
    a new open round.
``stake(tx, round_id, viewer, amount, kind=..., units=0, option=None) -> StakeAccepted``
    take ``amount`` points (0 for a free entry) and ``units`` (tickets) into the round; a
    viewer's later stakes add to their first (one stake row per viewer, on one option).
``settle(tx, round_id, payouts, kind=...) -> Settlement``
    end the round, crediting each staker in ``payouts`` (user id -> points; may total
    more or less than was staked: a heist pays more, tickets pay nothing).
``refund(tx, round_id, kind=...) -> Settlement``
    end the round, every stake given back.
``set_deadline(tx, round_id, deadline_ms)``, ``get``, ``stake_of``, ``stakes``,
``open_rounds``, ``due``: the rest a feature needs; ``audit`` is run by ``ledger.audit``.
"""

from __future__ import annotations

import dataclasses
import enum
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from loyaltybot.db import Tx
from loyaltybot.points import ledger, viewers
from loyaltybot.points.amounts import check_amount
from loyaltybot.points.errors import (
    RoundNotOpen,
    StakeOptionMismatch,
    UnknownRound,
)
from loyaltybot.points.ledger import BalanceChange, Discrepancy, EntryType
from loyaltybot.points.viewers import Viewer


class RoundState(enum.StrEnum):
    OPEN = "open"
    SETTLED = "settled"  # paid out as the feature decided (possibly nothing)
    REFUNDED = "refunded"  # every stake given back


@dataclass(frozen=True, slots=True)
class Round:
    id: int
    channel_id: int
    kind: str
    state: RoundState
    held: int  # points held now (0 once settled)
    staked: int  # every point staked into it
    returned: int  # points paid out or refunded when it was settled
    units: int  # tickets (or other units) staked
    entrants: int  # viewers with a stake
    deadline_ms: int | None
    created_at: int
    settled_at: int | None

    @property
    def is_open(self) -> bool:
        return self.state is RoundState.OPEN


@dataclass(frozen=True, slots=True)
class Stake:
    """One viewer's stake in a round: everything they put in, on one option."""

    round_id: int
    user_id: str
    amount: int
    units: int
    option: int | None
    seq: int  # 1 for the round's first staker, 2 for the next, ...
    first_at: int  # ms
    updated_at: int  # ms


@dataclass(frozen=True, slots=True)
class StakeAccepted:
    """What ``stake`` did (also a commit effect): the stake and the round after it."""

    round: Round
    stake: Stake
    amount: int  # points this call took
    units: int  # units this call added
    change: BalanceChange | None  # the ledger debit; None for a free stake
    new_entrant: bool


@dataclass(frozen=True, slots=True)
class Settlement:
    """What ``settle`` or ``refund`` did (also a commit effect)."""

    round: Round  # after: settled or refunded, holding nothing
    credits: tuple[BalanceChange, ...]  # each payout or refund, as applied
    lost: tuple[tuple[str, int], ...]  # (user id, points) not credited: balance at the maximum

    @property
    def paid(self) -> int:
        return sum(change.applied for change in self.credits)


_ROUND_COLUMNS = (
    "id, channel_id, kind, state, held, staked, returned, units, entrants, deadline,"
    " created_at, settled_at"
)
_STAKE_COLUMNS = "round_id, user_id, amount, units, option, seq, first_at, updated_at"


def _round(row: tuple[object, ...]) -> Round:
    values = list(row)
    values[3] = RoundState(str(values[3]))
    return Round(*values)  # type: ignore[arg-type]


def _stake(row: tuple[object, ...]) -> Stake:
    return Stake(*row)  # type: ignore[arg-type]


# ---- reads ------------------------------------------------------------------------------


def get(conn: sqlite3.Connection, round_id: int) -> Round | None:
    row = conn.execute(
        f"SELECT {_ROUND_COLUMNS} FROM escrow_rounds WHERE id = ?", (round_id,)
    ).fetchone()
    return None if row is None else _round(row)


def stake_of(conn: sqlite3.Connection, round_id: int, user_id: str) -> Stake | None:
    row = conn.execute(
        f"SELECT {_STAKE_COLUMNS} FROM escrow_stakes WHERE round_id = ? AND user_id = ?",
        (round_id, user_id),
    ).fetchone()
    return None if row is None else _stake(row)


def stakes(conn: sqlite3.Connection, round_id: int) -> list[Stake]:
    """Every stake of the round, in the order the viewers first staked."""
    return [
        _stake(row)
        for row in conn.execute(
            f"SELECT {_STAKE_COLUMNS} FROM escrow_stakes WHERE round_id = ? ORDER BY seq",
            (round_id,),
        )
    ]


def open_rounds(
    conn: sqlite3.Connection, *, channel_id: int | None = None, kind: str | None = None
) -> list[Round]:
    """Open rounds, oldest first, of one channel and/or one kind."""
    where: list[str] = ["state = 'open'"]
    args: list[object] = []
    if channel_id is not None:
        where.append("channel_id = ?")
        args.append(channel_id)
    if kind is not None:
        where.append("kind = ?")
        args.append(kind)
    return [
        _round(row)
        for row in conn.execute(
            f"SELECT {_ROUND_COLUMNS} FROM escrow_rounds WHERE {' AND '.join(where)} ORDER BY id",
            args,
        )
    ]


def due(conn: sqlite3.Connection, now_ms: int, *, kind: str | None = None) -> list[Round]:
    """Open rounds whose deadline has passed (at start-up: those that ran out while the
    daemon was down), earliest deadline first. The owning feature settles or refunds each."""
    sql = (
        f"SELECT {_ROUND_COLUMNS} FROM escrow_rounds"
        " WHERE state = 'open' AND deadline IS NOT NULL AND deadline <= ?"
    )
    args: list[object] = [now_ms]
    if kind is not None:
        sql += " AND kind = ?"
        args.append(kind)
    return [_round(row) for row in conn.execute(sql + " ORDER BY deadline, id", args)]


def totals(conn: sqlite3.Connection, channel_id: int | None = None) -> tuple[int, int]:
    """(open rounds, points they hold), of one channel or all."""
    where, args = ("AND channel_id = ?", (channel_id,)) if channel_id is not None else ("", ())
    rounds, held = conn.execute(
        f"SELECT count(*), coalesce(sum(held), 0) FROM escrow_rounds WHERE state = 'open' {where}",
        args,
    ).fetchone()
    return int(rounds), int(held)


def _require_open(conn: sqlite3.Connection, round_id: int) -> Round:
    found = get(conn, round_id)
    if found is None:
        raise UnknownRound(round_id)
    if not found.is_open:
        raise RoundNotOpen(round_id, str(found.state))
    return found


# ---- changes ----------------------------------------------------------------------------


def open_round(
    tx: Tx, channel_id: int, kind: str, *, deadline_ms: int | None = None
) -> Round:
    """A new open round of ``kind`` (the owning feature's name) in the channel."""
    if not kind:
        raise ValueError("a round needs a kind")
    cursor = tx.conn.execute(
        "INSERT INTO escrow_rounds (channel_id, kind, deadline, created_at) VALUES (?, ?, ?, ?)",
        (channel_id, kind, deadline_ms, tx.now_ms),
    )
    return Round(
        int(cursor.lastrowid or 0), channel_id, kind, RoundState.OPEN, 0, 0, 0, 0, 0,
        deadline_ms, tx.now_ms, None,
    )  # fmt: skip


def set_deadline(tx: Tx, round_id: int, deadline_ms: int | None) -> Round:
    """Move (or clear) an open round's deadline.

    Raises:
        UnknownRound, RoundNotOpen.
    """
    current = _require_open(tx.conn, round_id)
    tx.conn.execute("UPDATE escrow_rounds SET deadline = ? WHERE id = ?", (deadline_ms, round_id))
    return dataclasses.replace(current, deadline_ms=deadline_ms)


def stake(
    tx: Tx,
    round_id: int,
    viewer: Viewer,
    amount: int,
    *,
    kind: EntryType,
    units: int = 0,
    option: int | None = None,
    reason: str | None = None,
    actor: str | None = None,
) -> StakeAccepted:
    """Take ``amount`` points from the viewer into the open round, with ``units``.

    The debit (a ledger row of type ``kind`` naming the round) and the stake are one
    change: both or neither. ``amount`` may be 0 for a free entry (then ``units`` >= 1
    and no ledger row). A viewer's later stakes add to their first one and must be on the
    same ``option``.

    Raises:
        UnknownRound, RoundNotOpen: nothing changes.
        InsufficientPoints: the balance is less than ``amount``; nothing changes.
        StakeOptionMismatch: the viewer's stake is on another option.
        InvalidAmount: ``amount`` not in [0, MAX_POINTS].
        ValueError: nothing staked (0 points and 0 units), or negative units.
    """
    check_amount(amount, allow_zero=True)
    if units < 0 or (amount == 0 and units == 0):
        raise ValueError("a stake takes points or units (or both), never nothing")
    conn = tx.conn
    current = _require_open(conn, round_id)
    held = stake_of(conn, round_id, viewer.user_id)
    if held is not None and held.option != option:
        raise StakeOptionMismatch(round_id, held.option, option)
    change = None
    if amount:
        change = ledger.debit(
            tx,
            current.channel_id,
            viewer,
            amount,
            kind=kind,
            reason=reason,
            actor=actor,
            round_id=round_id,
        )
    else:
        viewers.upsert(conn, current.channel_id, viewer, tx.now_ms)
    if held is None:
        conn.execute(
            "INSERT INTO escrow_stakes (round_id, user_id, channel_id, amount, units, option,"
            " seq, first_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                round_id,
                viewer.user_id,
                current.channel_id,
                amount,
                units,
                option,
                current.entrants + 1,
                tx.now_ms,
                tx.now_ms,
            ),
        )
        after_stake = Stake(
            round_id, viewer.user_id, amount, units, option, current.entrants + 1,
            tx.now_ms, tx.now_ms,
        )  # fmt: skip
    else:
        conn.execute(
            "UPDATE escrow_stakes SET amount = amount + ?, units = units + ?, updated_at = ?"
            " WHERE round_id = ? AND user_id = ?",
            (amount, units, tx.now_ms, round_id, viewer.user_id),
        )
        after_stake = Stake(
            round_id, viewer.user_id, held.amount + amount, held.units + units, option,
            held.seq, held.first_at, tx.now_ms,
        )  # fmt: skip
    new_entrant = held is None
    conn.execute(
        "UPDATE escrow_rounds SET held = held + ?, staked = staked + ?, units = units + ?,"
        " entrants = entrants + ? WHERE id = ?",
        (amount, amount, units, int(new_entrant), round_id),
    )
    after_round = Round(
        current.id,
        current.channel_id,
        current.kind,
        current.state,
        current.held + amount,
        current.staked + amount,
        current.returned,
        current.units + units,
        current.entrants + int(new_entrant),
        current.deadline_ms,
        current.created_at,
        current.settled_at,
    )
    accepted = StakeAccepted(after_round, after_stake, amount, units, change, new_entrant)
    tx.effects.append(accepted)
    return accepted


def settle(
    tx: Tx,
    round_id: int,
    payouts: Mapping[str, int] | Iterable[tuple[str, int]] = (),
    *,
    kind: EntryType,
    reason: str | None = None,
    actor: str | None = None,
) -> Settlement:
    """End the round: credit each staker in ``payouts`` (user id -> points, ledger rows of
    type ``kind`` naming the round); what was staked is released. No payouts at all means
    the stakes were spent (giveaway tickets). A credit is clamped at the maximum balance
    like any other; a staker already at the maximum gets nothing (``lost``).

    Raises:
        UnknownRound, RoundNotOpen: nothing changes (a round is never paid twice).
        ValueError: a payout to someone without a stake in the round, or below 0.
    """
    current = _require_open(tx.conn, round_id)
    wanted: dict[str, int] = {}
    for user_id, amount in payouts.items() if isinstance(payouts, Mapping) else payouts:
        if amount < 0:
            raise ValueError(f"payout to {user_id} is negative")
        wanted[user_id] = wanted.get(user_id, 0) + amount
    if not wanted:  # spent (tickets): nobody to pay, no stake to read
        return _close(tx, current, [], RoundState.SETTLED, kind, reason, actor)
    # who staked, and in what order (only these two columns: a contest has 100,000 stakes)
    seq_of: dict[str, int] = dict(
        tx.conn.execute(
            "SELECT user_id, seq FROM escrow_stakes WHERE round_id = ?", (round_id,)
        ).fetchall()
    )
    strangers = set(wanted) - set(seq_of)
    if strangers:
        raise ValueError(f"payouts to viewers without a stake: {sorted(strangers)[:5]}")
    order = sorted((uid for uid, amount in wanted.items() if amount), key=seq_of.__getitem__)
    return _close(tx, current, [(uid, wanted[uid]) for uid in order], RoundState.SETTLED,
                  kind, reason, actor)  # fmt: skip


def refund(
    tx: Tx,
    round_id: int,
    *,
    kind: EntryType,
    reason: str | None = None,
    actor: str | None = None,
) -> Settlement:
    """End the round by giving every stake back (ledger rows of type ``kind`` naming it).

    Raises:
        UnknownRound, RoundNotOpen: nothing changes (a round is never refunded twice).
    """
    current = _require_open(tx.conn, round_id)
    back = [(s.user_id, s.amount) for s in stakes(tx.conn, round_id) if s.amount]
    return _close(tx, current, back, RoundState.REFUNDED, kind, reason, actor)


def _close(
    tx: Tx,
    current: Round,
    credits: list[tuple[str, int]],
    state: RoundState,
    kind: EntryType,
    reason: str | None,
    actor: str | None,
) -> Settlement:
    conn = tx.conn
    # every staker has a row (they staked): credited together, each with its ledger row
    applied, lost = ledger.credit_many(
        tx, current.channel_id, credits, kind=kind, reason=reason, actor=actor,
        round_id=current.id,
    )  # fmt: skip
    returned = sum(change.applied for change in applied)
    conn.execute(
        "UPDATE escrow_rounds SET state = ?, held = 0, returned = ?, settled_at = ? WHERE id = ?",
        (str(state), returned, tx.now_ms, current.id),
    )
    after = Round(
        current.id,
        current.channel_id,
        current.kind,
        state,
        0,
        current.staked,
        returned,
        current.units,
        current.entrants,
        current.deadline_ms,
        current.created_at,
        tx.now_ms,
    )
    settlement = Settlement(after, tuple(applied), tuple(lost))
    tx.effects.append(settlement)
    return settlement


# ---- audit ------------------------------------------------------------------------------

_ROUND_SUMS = """
SELECT r.id, c.login, r.kind, r.state, r.held, r.staked, r.returned, r.units, r.entrants,
       coalesce(l.debits, 0), coalesce(l.credits, 0), coalesce(l.strays, 0),
       coalesce(s.amount, 0), coalesce(s.units, 0), coalesce(s.n, 0)
FROM escrow_rounds AS r
JOIN channels AS c ON c.id = r.channel_id
LEFT JOIN (SELECT round_id,
                  sum(CASE WHEN amount < 0 THEN -amount ELSE 0 END) AS debits,
                  sum(CASE WHEN amount > 0 THEN amount ELSE 0 END) AS credits,
                  sum(channel_id <> (SELECT channel_id FROM escrow_rounds WHERE id = round_id))
                      AS strays
           FROM ledger WHERE round_id IS NOT NULL GROUP BY round_id) AS l ON l.round_id = r.id
LEFT JOIN (SELECT round_id, sum(amount) AS amount, sum(units) AS units, count(*) AS n
           FROM escrow_stakes GROUP BY round_id) AS s ON s.round_id = r.id
{where}
"""

# A viewer's stake against their own debits for the round, both ways round.
_STAKE_MISMATCHES = """
SELECT s.round_id, c.login, s.user_id, s.amount, coalesce(d.debits, 0)
FROM escrow_stakes AS s
JOIN channels AS c ON c.id = s.channel_id
LEFT JOIN (SELECT round_id, user_id, -sum(amount) AS debits FROM ledger
           WHERE round_id IS NOT NULL AND amount < 0 GROUP BY round_id, user_id) AS d
  ON d.round_id = s.round_id AND d.user_id = s.user_id
WHERE s.amount <> coalesce(d.debits, 0) {and_where}
UNION ALL
SELECT l.round_id, c.login, l.user_id, 0, -sum(l.amount)
FROM ledger AS l JOIN channels AS c ON c.id = l.channel_id
WHERE l.round_id IS NOT NULL AND l.amount < 0 {and_where_l}
  AND NOT EXISTS (SELECT 1 FROM escrow_stakes AS s
                  WHERE s.round_id = l.round_id AND s.user_id = l.user_id)
GROUP BY l.round_id, l.user_id
"""


def audit(conn: sqlite3.Connection, channel_id: int | None = None) -> list[Discrepancy]:
    """Prove every round holds exactly its recorded stakes. Empty list = it does."""
    found: list[Discrepancy] = []
    where = "" if channel_id is None else "WHERE r.channel_id = ?"
    args: tuple[object, ...] = () if channel_id is None else (channel_id,)
    for (
        round_id, channel, kind, state, held, staked, returned, units, entrants,
        debits, credits, strays, stake_amount, stake_units, stakers,
    ) in conn.execute(_ROUND_SUMS.format(where=where), args):  # fmt: skip
        subject = f"round {round_id} ({kind}, {state})"

        def problem(text: str, channel: str = channel, subject: str = subject) -> None:
            found.append(Discrepancy(channel, subject, text))

        if state == RoundState.OPEN and (held != staked or returned):
            problem(f"holds {held} but {staked} were staked and {returned} returned")
        if state != RoundState.OPEN and held:
            problem(f"is {state} but still holds {held}")
        if debits != staked:
            problem(f"ledger took {debits} into it, but it records {staked} staked")
        if credits != returned:
            problem(f"ledger paid {credits} out of it, but it records {returned} returned")
        if stake_amount != staked:
            problem(f"its stakes add up to {stake_amount}, but it records {staked} staked")
        if (stake_units, stakers) != (units, entrants):
            problem(
                f"its stakes hold {stake_units} units from {stakers} viewers, but it records"
                f" {units} from {entrants}"
            )
        if strays:
            problem(f"{strays} ledger rows of another channel name it")
    and_where = "" if channel_id is None else "AND s.channel_id = ?"
    and_where_l = "" if channel_id is None else "AND l.channel_id = ?"
    args2: tuple[object, ...] = () if channel_id is None else (channel_id, channel_id)
    for round_id, channel, user_id, amount, debits in conn.execute(
        _STAKE_MISMATCHES.format(and_where=and_where, and_where_l=and_where_l), args2
    ):
        found.append(
            Discrepancy(
                channel,
                f"round {round_id}, viewer {user_id}",
                f"stake {amount} != ledger debits {debits} for the round",
            )
        )
    return found
