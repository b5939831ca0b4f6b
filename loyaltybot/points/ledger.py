"""The points domain: every balance change, each inside the caller's transaction.

These functions run on the store's writer thread inside one ``BEGIN IMMEDIATE``
transaction (see ``store.connection``). Each checks and changes in that same
transaction and writes the ledger row with the change, so "has enough points?" can never
be answered by a balance that is already out of date.

The invariant ``audit`` proves, for every viewer::

    points == earned_total + sum(ledger.amount)

Earning ticks are the one bulk path: they raise ``points`` and ``earned_total`` together
and write one ``earning_ticks`` row, not one ledger row per viewer.
"""

from __future__ import annotations

import enum
import json
import sqlite3
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import NamedTuple

import numpy as np

from loyaltybot.db import Tx
from loyaltybot.points import viewers
from loyaltybot.points.amounts import MAX_POINTS, check_amount, clamp_credit
from loyaltybot.points.errors import (
    AlreadyApplied,
    BalanceTooHigh,
    InsufficientPoints,
    SelfTransfer,
    UnknownViewer,
)
from loyaltybot.points.known import LoginBatch, numeric
from loyaltybot.points.standings import Ids, Keys, sorted_keys
from loyaltybot.points.viewers import Viewer

NO_IDS: Ids = np.empty(0, dtype=np.int64)


class EntryType(enum.StrEnum):
    """The ``type`` column of the ledger."""

    TRANSFER = "transfer"  # !give; two rows, one per side, each naming the other
    ADD = "add"  # !addpoints, dashboard, CLI
    REMOVE = "remove"  # !removepoints, dashboard, CLI
    SET = "set"  # !setpoints, CLI
    IMPORT = "import"  # loyaltybot import
    REWARD = "reward"  # a channel-point reward's grant_points action
    COST = "cost"  # a reward's price in loyalty points
    REFUND = "refund"  # a cost given back (rejected redemption)
    BONUS = "bonus"  # follow, sub, gift, cheer, raid
    # spending (SPEC §10.7); stakes and their payouts or refunds name their escrow round
    SHOP_PURCHASE = "shop_purchase"
    SHOP_REFUND = "shop_refund"
    GIVEAWAY_TICKET = "giveaway_ticket"  # a stake: tickets are spent at the first draw
    GIVEAWAY_REFUND = "giveaway_refund"
    CONTEST_STAKE = "contest_stake"
    CONTEST_PAYOUT = "contest_payout"
    CONTEST_REFUND = "contest_refund"
    GAME_WIN = "game_win"
    GAME_LOSS = "game_loss"
    DUEL_STAKE = "duel_stake"
    DUEL_PAYOUT = "duel_payout"
    DUEL_REFUND = "duel_refund"
    HEIST_STAKE = "heist_stake"
    HEIST_PAYOUT = "heist_payout"
    HEIST_REFUND = "heist_refund"


@dataclass(frozen=True, slots=True)
class BalanceChange:
    """One committed change of one viewer's balance (also a commit effect)."""

    channel_id: int
    user_id: str
    login: str
    requested: int  # signed, what was asked
    applied: int  # signed, what happened (differs only when a credit was clamped)
    balance: int  # after the change
    entry_id: int | None  # the ledger row, None when nothing changed

    @property
    def clamped(self) -> bool:
        return self.applied != self.requested


@dataclass(frozen=True, slots=True)
class Transfer:
    sender: BalanceChange
    receiver: BalanceChange

    @property
    def amount(self) -> int:
        return self.receiver.applied


# ---- single-viewer operations ---------------------------------------------------------


def credit(
    tx: Tx,
    channel_id: int,
    viewer: Viewer,
    amount: int,
    *,
    kind: EntryType,
    reason: str | None = None,
    actor: str | None = None,
    related_user_id: str | None = None,
    ref: str | None = None,
    round_id: int | None = None,
) -> BalanceChange:
    """Add points, clamped at MAX_POINTS; the row records what was applied. ``round_id``
    names the escrow round a payout or refund comes from (``escrow`` sets it).

    Raises:
        InvalidAmount: amount not in [1, MAX_POINTS].
        BalanceTooHigh: the balance is already at the maximum.
        AlreadyApplied: ``ref`` was used before in this channel.
    """
    check_amount(amount)
    viewers.upsert(tx.conn, channel_id, viewer, tx.now_ms)
    balance = _balance(tx.conn, channel_id, viewer.user_id)
    applied = clamp_credit(balance, amount)
    if applied == 0:
        raise BalanceTooHigh(balance, amount, MAX_POINTS)
    return _apply(
        tx,
        channel_id,
        viewer,
        balance,
        amount,
        applied,
        kind,
        reason,
        actor,
        related_user_id,
        ref,
        round_id,
    )


def debit(
    tx: Tx,
    channel_id: int,
    viewer: Viewer,
    amount: int,
    *,
    kind: EntryType,
    reason: str | None = None,
    actor: str | None = None,
    related_user_id: str | None = None,
    ref: str | None = None,
    round_id: int | None = None,
) -> BalanceChange:
    """Take points; never below zero. ``round_id`` names the escrow round a stake goes
    into (``escrow`` sets it).

    Raises:
        InvalidAmount: amount not in [1, MAX_POINTS].
        InsufficientPoints: the balance is less than ``amount``; nothing changes.
        AlreadyApplied: ``ref`` was used before in this channel.
    """
    check_amount(amount)
    viewers.upsert(tx.conn, channel_id, viewer, tx.now_ms)
    balance = _balance(tx.conn, channel_id, viewer.user_id)
    if balance < amount:
        raise InsufficientPoints(balance, amount)
    return _apply(
        tx,
        channel_id,
        viewer,
        balance,
        -amount,
        -amount,
        kind,
        reason,
        actor,
        related_user_id,
        ref,
        round_id,
    )


def credit_many(
    tx: Tx,
    channel_id: int,
    credits: Sequence[tuple[str, int]],
    *,
    kind: EntryType,
    reason: str | None = None,
    actor: str | None = None,
    round_id: int | None = None,
) -> tuple[list[BalanceChange], list[tuple[str, int]]]:
    """Credit many viewers who already have rows (an escrow round's stakers), each with its
    own ledger row, as ``credit`` would one by one: clamped at MAX_POINTS, a balance at the
    maximum gets nothing. In three statements' worth of work instead of five per viewer
    (one read of the balances, one batch of updates, one of rows): a contest of 100,000
    bets settles in a fraction of a second.

    Returns the changes applied, in the order given, and ``(user id, points)`` not credited
    (the part a clamp cut, or all of it at the maximum).

    Raises:
        InvalidAmount: an amount not in [1, MAX_POINTS] (nothing is written).
        UnknownViewer: a user id without a row in the channel (nothing is written).
    """
    for _, amount in credits:
        check_amount(amount)
    conn = tx.conn
    held: dict[str, tuple[str, int]] = {}
    ids = list(dict.fromkeys(user_id for user_id, _ in credits))
    for start in range(0, len(ids), 50_000):
        for user_id, login, points in conn.execute(
            "SELECT user_id, login, points FROM viewers WHERE channel_id = ?"
            " AND user_id IN (SELECT value FROM json_each(?))",
            (channel_id, json.dumps(ids[start : start + 50_000])),
        ):
            held[user_id] = (login, int(points))
    missing = [user_id for user_id in ids if user_id not in held]
    if missing:
        raise UnknownViewer(missing[0])
    updates: list[tuple[int, int, str]] = []
    rows: list[tuple[str, int, int | None, int]] = []  # user, applied, requested, after
    planned: list[tuple[str, str, int, int, int]] = []  # user, login, requested, applied, after
    lost: list[tuple[str, int]] = []
    for user_id, amount in credits:
        login, balance = held[user_id]
        applied = clamp_credit(balance, amount)
        if applied < amount:
            lost.append((user_id, amount - applied))
        if applied == 0:
            continue
        after = balance + applied
        held[user_id] = (login, after)
        updates.append((after, channel_id, user_id))
        rows.append((user_id, applied, amount if amount != applied else None, after))
        planned.append((user_id, login, amount, applied, after))
    if not rows:
        return [], lost
    conn.executemany(
        "UPDATE viewers SET points = ? WHERE channel_id = ? AND user_id = ?", updates
    )
    # one statement for every row (a third cheaper than a batch of single inserts), in order
    cursor = conn.execute(
        "INSERT INTO ledger (channel_id, user_id, amount, requested, balance_after, type,"
        " reason, related_user_id, actor, ref, round_id, created_at)"
        " SELECT ?, j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, ?, ?, NULL, ?,"
        " NULL, ?, ? FROM json_each(?) AS j",
        (channel_id, str(kind), reason, actor, round_id, tx.now_ms, json.dumps(rows)),
    )
    # Rows are numbered one after another (INTEGER PRIMARY KEY: the largest + 1, and the
    # writer holds the lock), so the last id tells every id.
    first = int(cursor.lastrowid or 0) - len(rows) + 1
    changes = [
        BalanceChange(channel_id, user_id, login, requested, applied, after, first + i)
        for i, (user_id, login, requested, applied, after) in enumerate(planned)
    ]
    tx.effects.extend(changes)
    return changes, lost


def set_balance(
    tx: Tx,
    channel_id: int,
    viewer: Viewer,
    value: int,
    *,
    reason: str | None = None,
    actor: str | None = None,
    ref: str | None = None,
) -> BalanceChange:
    """Make the balance ``value``; the ledger row holds the difference."""
    check_amount(value, allow_zero=True)
    viewers.upsert(tx.conn, channel_id, viewer, tx.now_ms)
    balance = _balance(tx.conn, channel_id, viewer.user_id)
    delta = value - balance
    if delta == 0:
        return BalanceChange(channel_id, viewer.user_id, viewer.login, 0, 0, balance, None)
    return _apply(
        tx, channel_id, viewer, balance, delta, delta, EntryType.SET, reason, actor, None, ref
    )


def transfer(
    tx: Tx,
    channel_id: int,
    sender: Viewer,
    receiver: Viewer,
    amount: int,
    *,
    reason: str | None = None,
) -> Transfer:
    """Move points between two viewers atomically: both rows or neither.

    The receiver must already be a viewer of the channel. If the receiver's balance
    cannot take it all, only what fits moves, and both rows say so.

    Raises:
        InvalidAmount, SelfTransfer, UnknownViewer, InsufficientPoints, BalanceTooHigh.
    """
    check_amount(amount)
    if sender.user_id == receiver.user_id:
        raise SelfTransfer(sender.login)
    receiver_balance = _balance_or_none(tx.conn, channel_id, receiver.user_id)
    if receiver_balance is None:
        raise UnknownViewer(receiver.login)
    viewers.upsert(tx.conn, channel_id, sender, tx.now_ms)
    sender_balance = _balance(tx.conn, channel_id, sender.user_id)
    if sender_balance < amount:
        raise InsufficientPoints(sender_balance, amount)
    applied = clamp_credit(receiver_balance, amount)
    if applied == 0:
        raise BalanceTooHigh(receiver_balance, amount, MAX_POINTS)
    out = _apply(
        tx,
        channel_id,
        sender,
        sender_balance,
        -amount,
        -applied,
        EntryType.TRANSFER,
        reason,
        sender.login,
        receiver.user_id,
        None,
    )
    into = _apply(
        tx,
        channel_id,
        receiver,
        receiver_balance,
        amount,
        applied,
        EntryType.TRANSFER,
        reason,
        sender.login,
        sender.user_id,
        None,
    )
    return Transfer(out, into)


def _balance_or_none(conn: sqlite3.Connection, channel_id: int, user_id: str) -> int | None:
    row = conn.execute(
        "SELECT points FROM viewers WHERE channel_id = ? AND user_id = ?", (channel_id, user_id)
    ).fetchone()
    return None if row is None else int(row[0])


def _balance(conn: sqlite3.Connection, channel_id: int, user_id: str) -> int:
    balance = _balance_or_none(conn, channel_id, user_id)
    if balance is None:
        raise RuntimeError(f"viewer {user_id} vanished inside a transaction")
    return balance


def _apply(
    tx: Tx,
    channel_id: int,
    viewer: Viewer,
    balance: int,
    requested: int,
    applied: int,
    kind: EntryType,
    reason: str | None,
    actor: str | None,
    related_user_id: str | None,
    ref: str | None,
    round_id: int | None = None,
) -> BalanceChange:
    """Change the balance and write its ledger row; the only place that does either."""
    after = balance + applied
    tx.conn.execute(
        "UPDATE viewers SET points = ? WHERE channel_id = ? AND user_id = ?",
        (after, channel_id, viewer.user_id),
    )
    try:
        cursor = tx.conn.execute(
            "INSERT INTO ledger (channel_id, user_id, amount, requested, balance_after, type,"
            " reason, related_user_id, actor, ref, round_id, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                channel_id,
                viewer.user_id,
                applied,
                requested if requested != applied else None,
                after,
                str(kind),
                reason,
                related_user_id,
                actor,
                ref,
                round_id,
                tx.now_ms,
            ),
        )
    except sqlite3.IntegrityError as exc:
        if ref is not None and "ledger.ref" in str(exc):
            raise AlreadyApplied(str(ref)) from exc
        raise
    change = BalanceChange(
        channel_id, viewer.user_id, viewer.login, requested, applied, after, cursor.lastrowid
    )
    tx.effects.append(change)
    return change


def ref_exists(conn: sqlite3.Connection, channel_id: int, ref: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM ledger WHERE channel_id = ? AND ref = ?", (channel_id, ref)
    ).fetchone()
    return row is not None


# ---- earning ticks --------------------------------------------------------------------


class Presence(NamedTuple):
    """A viewer present for one interval, as the earning scheduler saw them.

    A named tuple, not a dataclass: a tick builds one per present viewer (100,000 in a
    big channel), and a tuple is built three times faster than a frozen dataclass."""

    user_id: str
    login: str
    display_name: str
    subscriber: bool = False
    messages: int = 0  # chat messages in the interval; any earns the active bonus


@dataclass(frozen=True, slots=True)
class EarningRates:
    points: int  # points_per_interval
    subscriber_points: int  # floor(points_per_interval * subscriber_multiplier)
    active_bonus: int
    min_watch_seconds: int


@dataclass(frozen=True)
class TickPlan:
    """Everything one earning tick credits, decided before the transaction starts.

    ``known_logins`` (user id -> login stored) is a hint that lets known, quiet viewers
    take the fast grouped update; a wrong hint costs speed, never points. ``listed`` are
    more of them, as numbers only (a big chatter list's known viewers, checked against the
    hint as it was read): no row object at all; ``subscribers`` says which of them are.
    Whoever ``present`` names is left out of ``listed``.
    """

    channel_id: int
    seq: int
    due_at_ms: int
    watch_seconds: int
    rates: EarningRates
    present: Iterable[Presence]  # read on the database's thread (again, on a rare path)
    known_logins: Mapping[str, str]
    # The daemon keeps this channel's ranks in memory: say exactly who got what. With
    # ``near_max`` (someone may be clamped at the maximum) the exceptions are looked up.
    report: bool = False
    near_max: bool = False
    # Finds where credited groups sit in the ranks, on the database's thread (the event
    # loop then only adds): ``Standings.locate``.
    locate: Callable[[Ids], object] | None = None
    listed: Ids = field(default_factory=lambda: NO_IDS)
    subscribers: Collection[str] = ()


@dataclass(frozen=True, slots=True)
class TickApplied:
    """Commit effect of a tick: who was present (their rows exist now) and, when the plan
    asked for a report, exactly what each got: ``credited`` groups (user ids that each
    got the same amount) and ``balances`` (user id -> balance after, for the rest)."""

    channel_id: int
    seq: int
    present: int
    points: int
    new_logins: LoginBatch
    credited: Sequence[tuple[Keys, int, object]] = ()  # ids, amount, where (plan.locate)
    balances: Mapping[str, int] | None = None  # None: not reported


# The credit a row earns in a tick, given the columns it had before the tick. Eligible:
# earning not switched off and, counting this interval, enough watch time.
_EARN = (
    "min({amount} * (earning_enabled AND watch_seconds + :watch >= :min_watch),"
    " 9007199254740991 - points)"
)
_ROW_AMOUNT = (
    "(CASE WHEN {sub} THEN :sub_points ELSE :points END"
    " + CASE WHEN {msgs} > 0 THEN :bonus ELSE 0 END)"
)
_UPSERT_DETAILED = f"""
INSERT INTO viewers (channel_id, user_id, login, display_name, points, earned_total,
                     watch_seconds, messages, subscriber, first_seen, last_seen)
SELECT :channel, j.value ->> 0, j.value ->> 1, j.value ->> 2,
       {_ROW_AMOUNT.format(sub="j.value ->> 3", msgs="j.value ->> 4")} * (:watch >= :min_watch),
       {_ROW_AMOUNT.format(sub="j.value ->> 3", msgs="j.value ->> 4")} * (:watch >= :min_watch),
       :watch, j.value ->> 4, j.value ->> 3, :now, :now
FROM json_each(:rows) AS j WHERE true ORDER BY j.value ->> 0
ON CONFLICT (channel_id, user_id) DO UPDATE SET
    points = points + {
    _EARN.format(amount=_ROW_AMOUNT.format(sub="excluded.subscriber", msgs="excluded.messages"))
},
    earned_total = earned_total + {
    _EARN.format(amount=_ROW_AMOUNT.format(sub="excluded.subscriber", msgs="excluded.messages"))
},
    watch_seconds = watch_seconds + :watch,
    messages = messages + excluded.messages,
    subscriber = excluded.subscriber,
    login = excluded.login,
    display_name = excluded.display_name,
    last_seen = :now
"""
# New quiet viewers, who need no per-row amount. Each is one string "id login name" (a
# user id is digits and a login has no space) in one JSON array: the cheapest bulk input
# for SQLite 3.40's JSON parser. No ON CONFLICT: the hint said they are new; if one is not,
# the statement fails whole (nothing of it stays) and they go through the upsert instead.
_INSERT_NEW = """
INSERT INTO viewers (channel_id, user_id, login, display_name, points, earned_total,
                     watch_seconds, messages, subscriber, first_seen, last_seen)
SELECT :channel, substr(r.v, 1, r.i - 1), substr(r.v, r.i + 1, r.k - 1),
       substr(r.v, r.i + r.k + 1), :earned, :earned, :watch, 0, :subscriber, :now, :now
FROM (SELECT j.value AS v, instr(j.value, ' ') AS i,
             instr(substr(j.value, instr(j.value, ' ') + 1), ' ') AS k
      FROM json_each(:rows) AS j ORDER BY j.value) AS r
"""
_UPDATE_GROUP = f"""
UPDATE viewers SET
    points = points + {_EARN.format(amount=":amount")},
    earned_total = earned_total + {_EARN.format(amount=":amount")},
    watch_seconds = watch_seconds + :watch,
    subscriber = :subscriber,
    last_seen = :now
WHERE channel_id = :channel AND user_id IN (
    SELECT CAST(value AS TEXT) AS id FROM json_each(:ids) ORDER BY id)
"""
# Rows are visited in key order: SQLite sorts the ids (in C, without the GIL) and the
# B-tree is then walked forwards. Measured on 1,000,000 viewers: 3.5 s in the chatter
# list's order, 2.0 s sorted by SQLite, 1.4 s presorted (sorting in Python costs 0.5 s).


_PIECE = 8192  # ids turned to text at a time: about 2 ms holding the GIL


def _json_ids(ids: Keys) -> str:
    """A JSON array of user ids (numbers for numeric keys, which the statements cast
    back to text); digits need no escaping, so a join does it 3x faster."""
    if isinstance(ids, np.ndarray):  # in pieces: the event loop's thread gets the GIL between
        pieces = (",".join(map(str, ids[i:i + _PIECE].tolist()))
                  for i in range(0, ids.size, _PIECE))
        return "[" + ",".join(pieces) + "]"
    if ids and "".join(ids).isdigit():
        return '["' + '","'.join(ids) + '"]'
    return json.dumps(list(ids))


def _keys(user_ids: list[str]) -> Keys:
    """Numbers when every id is plain digits (cheaper to pass, and the ranks' keys)."""
    return sorted_keys(user_ids) if all(numeric(u) for u in user_ids) else user_ids


def _without(ids: Keys, gone: set[str]) -> Keys:
    if isinstance(ids, np.ndarray):
        return ids[~np.isin(ids, np.array([int(u) for u in gone], dtype=np.int64))]
    return [i for i in ids if i not in gone]


def _unnamed(listed: Ids, named: Collection[str]) -> Ids:
    """``listed`` minus whoever was named one by one."""
    if named and listed.size:
        keys = sorted_keys([u for u in named if numeric(u)])
        if isinstance(keys, np.ndarray):
            return listed[~np.isin(listed, keys)]
    return listed


def _quiet_listed(plan: TickPlan, named: Collection[str]) -> dict[bool, Ids]:
    """``listed`` minus whoever ``present`` named, split into (not) subscribers."""
    listed = _unnamed(plan.listed, named)
    subs = sorted_keys([u for u in plan.subscribers if numeric(u)])
    is_sub = np.isin(listed, subs) if isinstance(subs, np.ndarray) and subs.size else (
        np.zeros(listed.size, dtype=bool))
    return {True: listed[is_sub], False: listed[~is_sub]}


def credit_tick(tx: Tx, plan: TickPlan) -> TickApplied:
    """Credit one interval to everyone present, once.

    Viewers who did not chat take grouped statements (subscribers and not): known ones
    an update, new ones an insert; renamed and chatting viewers go through one upsert.
    Each statement takes its viewers as one JSON value: one statement per group, not one
    round trip per viewer.

    Raises:
        AlreadyApplied: this tick (channel, seq) was credited before.
    """
    conn = tx.conn
    try:
        conn.execute(
            "INSERT INTO earning_ticks (channel_id, seq, due_at, credited_at, watch_seconds,"
            " present, points) VALUES (?, ?, ?, ?, ?, 0, 0)",
            (plan.channel_id, plan.seq, plan.due_at_ms, tx.now_ms, plan.watch_seconds),
        )
    except sqlite3.IntegrityError as exc:
        raise AlreadyApplied(f"earning tick {plan.seq} of channel {plan.channel_id}") from exc

    rates = plan.rates
    params = {
        "channel": plan.channel_id,
        "watch": plan.watch_seconds,
        "min_watch": rates.min_watch_seconds,
        "points": rates.points,
        "sub_points": rates.subscriber_points,
        "bonus": rates.active_bonus,
        "now": tx.now_ms,
    }
    # One pass over who was present, keeping only what each group needs: a known, quiet
    # viewer is just a reference to their id (a million of them are 8 MB of list, not a
    # row object each), and ``listed`` ones are numbers already.
    detailed: list[Presence] = []
    groups: dict[bool, list[str]] = {True: [], False: []}  # known, quiet: their ids
    fresh: dict[bool, list[Presence]] = {True: [], False: []}  # new, quiet
    named: list[str] = []  # who ``present`` named, to leave out of ``listed``
    known_logins = plan.known_logins
    present = 0
    for p in plan.present:
        present += 1
        known = known_logins.get(p.user_id)
        if plan.listed.size:
            named.append(p.user_id)
        if p.messages:
            detailed.append(p)
        elif known == p.login:
            groups[p.subscriber].append(p.user_id)
        elif known is None and p.user_id.isdigit() and " " not in p.login:
            fresh[p.subscriber].append(p)
        else:  # renamed, or a login we cannot pack
            detailed.append(p)
    listed = _quiet_listed(plan, named)
    present += sum(len(ids) for ids in listed.values())

    credited: list[tuple[Keys, int, object]] = []

    def report(ids: Keys, amount: int) -> None:
        if plan.report and amount > 0:
            where = plan.locate(ids) if plan.locate and isinstance(ids, np.ndarray) else None
            credited.append((ids, amount, where))

    exact = plan.report and (
        rates.min_watch_seconds > 0 or plan.near_max or _anyone_not_earning(conn, plan.channel_id)
    )
    for subscriber in (True, False):
        amount = rates.subscriber_points if subscriber else rates.points
        group = {**params, "amount": amount, "subscriber": int(subscriber)}
        for ids in (listed[subscriber], _keys(groups[subscriber])):
            if not len(ids):
                continue
            if exact:  # those who get less than ``amount`` take the per-row path, reported
                odd = _not_full(conn, {**group, "ids": _json_ids(ids)})
                if odd:
                    detailed += _stored_presence(conn, plan.channel_id, odd, subscriber)
                    ids = _without(ids, odd)
            updated = conn.execute(_UPDATE_GROUP, {**group, "ids": _json_ids(ids)}).rowcount
            if updated != len(ids):  # the hint was wrong about some: they have no row yet
                missing = _missing(conn, plan.channel_id, _json_ids(ids))
                detailed += [Presence(u, lg, lg, subscriber) for u in missing
                             if (lg := known_logins.get(u)) is not None]
                ids = _without(ids, missing)
            report(ids, amount)

    for subscriber, members in fresh.items():
        if not members:
            continue
        amount = rates.subscriber_points if subscriber else rates.points
        packed = [f"{p.user_id} {p.login} {p.display_name}" for p in members]
        earned = amount * (plan.watch_seconds >= rates.min_watch_seconds)
        try:
            conn.execute(
                _INSERT_NEW,
                {**params, "earned": earned, "subscriber": int(subscriber),
                 "rows": json.dumps(packed)},
            )
        except sqlite3.IntegrityError:  # the hint was wrong: some have a row already
            detailed.extend(members)
            fresh[subscriber] = []
        else:
            report(_keys([p.user_id for p in members]), earned)

    balances: dict[str, int] | None = {} if plan.report else None
    if detailed:
        rows = [
            [p.user_id, p.login, p.display_name, int(p.subscriber), p.messages] for p in detailed
        ]
        upsert = {**params, "rows": json.dumps(rows)}
        if balances is None:
            conn.execute(_UPSERT_DETAILED, upsert)
        else:
            balances.update(conn.execute(_UPSERT_DETAILED + _RETURNING, upsert).fetchall())

    points = _settle_earned_total(conn, plan.channel_id)
    conn.execute(
        "UPDATE earning_ticks SET points = ?, present = ? WHERE channel_id = ? AND seq = ?",
        (points, present, plan.channel_id, plan.seq),
    )
    new_logins = LoginBatch(  # made here: a first tick's million new viewers stall no loop
        (p.user_id, p.login) for p in chain(detailed, *fresh.values())
    )
    applied = TickApplied(
        plan.channel_id, plan.seq, present, points, new_logins, credited, balances
    )
    tx.effects.append(applied)
    return applied


_RETURNING = " RETURNING user_id, points"
# Who of a group would get less than the group's amount: not earning, not enough watch
# time yet, or too close to the maximum (clamped). Only asked when that can happen.
_NOT_FULL = f"""
SELECT user_id FROM viewers
WHERE channel_id = :channel
  AND user_id IN (SELECT CAST(value AS TEXT) FROM json_each(:ids))
  AND {_EARN.format(amount=":amount")} <> :amount
"""


def _not_full(conn: sqlite3.Connection, params: Mapping[str, object]) -> set[str]:
    return {user_id for (user_id,) in conn.execute(_NOT_FULL, params)}


def _anyone_not_earning(conn: sqlite3.Connection, channel_id: int) -> bool:
    """Has a moderator stopped anyone's earning in this channel? (A partial index.)"""
    row = conn.execute(
        "SELECT 1 FROM viewers WHERE channel_id = ? AND earning_enabled = 0 LIMIT 1",
        (channel_id,),
    ).fetchone()
    return row is not None


_UPSERT_ACTIVITY = """
INSERT INTO viewers (channel_id, user_id, login, display_name, watch_seconds, messages,
                     subscriber, first_seen, last_seen)
SELECT :channel, j.value ->> 0, j.value ->> 1, j.value ->> 2, :watch, j.value ->> 4,
       j.value ->> 3, :now, :now
FROM json_each(:rows) AS j WHERE true
ON CONFLICT (channel_id, user_id) DO UPDATE SET
    watch_seconds = watch_seconds + :watch,
    messages = messages + excluded.messages,
    subscriber = excluded.subscriber,
    login = excluded.login,
    display_name = excluded.display_name,
    last_seen = :now
"""


def record_activity(
    tx: Tx, channel_id: int, present: Sequence[Presence], watch_seconds: int,
    listed: Ids = NO_IDS,
) -> None:
    """Watch time and message counts without points: an interval the stream was offline,
    or the part of an interval before a shutdown. No balance changes, so no ledger row.
    ``listed``: known viewers by id, as in ``TickPlan`` (whoever ``present`` names is not
    counted twice)."""
    params = {"channel": channel_id, "watch": watch_seconds, "now": tx.now_ms}
    if present:
        rows = [[p.user_id, p.login, p.display_name, int(p.subscriber), p.messages]
                for p in present]
        tx.conn.execute(_UPSERT_ACTIVITY, {**params, "rows": json.dumps(rows)})
    named = [p.user_id for p in present]
    quiet = _unnamed(listed, named)
    if quiet.size:
        tx.conn.execute(_WATCHED, {**params, "ids": _json_ids(quiet)})
    if present or quiet.size:
        tx.effects.append(TickApplied(channel_id, 0, len(present) + quiet.size, 0,
                                      LoginBatch((p.user_id, p.login) for p in present)))


_WATCHED = """
UPDATE viewers SET watch_seconds = watch_seconds + :watch, last_seen = :now
WHERE channel_id = :channel AND user_id IN (
    SELECT CAST(value AS TEXT) AS id FROM json_each(:ids) ORDER BY id)
"""


def last_tick(conn: sqlite3.Connection, channel_id: int) -> tuple[int, int] | None:
    """(seq, credited_at ms) of the channel's last credited tick."""
    row = conn.execute(
        "SELECT seq, credited_at FROM earning_ticks WHERE channel_id = ?"
        " ORDER BY seq DESC LIMIT 1",
        (channel_id,),
    ).fetchone()
    return None if row is None else (int(row[0]), int(row[1]))


def _missing(conn: sqlite3.Connection, channel_id: int, ids: str) -> set[str]:
    """Which of these user ids (a JSON array) have no row in the channel."""
    rows = conn.execute(
        "SELECT id FROM (SELECT CAST(value AS TEXT) AS id FROM json_each(?)) WHERE id NOT IN"
        " (SELECT user_id FROM viewers WHERE channel_id = ?)",
        (ids, channel_id),
    ).fetchall()
    return {r[0] for r in rows}


def _stored_presence(
    conn: sqlite3.Connection, channel_id: int, user_ids: set[str], subscriber: bool
) -> list[Presence]:
    """Known viewers as the database names them (a quiet one taken off a grouped path)."""
    rows = conn.execute(
        "SELECT user_id, login, display_name FROM viewers WHERE channel_id = ?"
        " AND user_id IN (SELECT value FROM json_each(?))",
        (channel_id, json.dumps(sorted(user_ids))),
    ).fetchall()
    return [Presence(uid, login, name, subscriber) for uid, login, name in rows]


def _settle_earned_total(conn: sqlite3.Connection, channel_id: int) -> int:
    """Move the channel's running total to the sum over its viewers; return the step."""
    (after,) = conn.execute(
        "SELECT coalesce(sum(earned_total), 0) FROM viewers WHERE channel_id = ?", (channel_id,)
    ).fetchone()
    (before,) = conn.execute(
        "SELECT earned_total FROM channels WHERE id = ?", (channel_id,)
    ).fetchone()
    conn.execute("UPDATE channels SET earned_total = ? WHERE id = ?", (after, channel_id))
    return int(after) - int(before)


# ---- audit ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Discrepancy:
    channel: str
    subject: str  # a viewer 'login (user id)', or 'channel'
    problem: str

    def __str__(self) -> str:
        return f"#{self.channel} {self.subject}: {self.problem}"


def audit(conn: sqlite3.Connection, channel_id: int | None = None) -> list[Discrepancy]:
    """Prove every balance equals its history, and every escrow round holds exactly its
    recorded stakes (``escrow.audit``). Empty list = the books balance."""
    from loyaltybot.points import escrow  # escrow builds on this module, not the reverse

    return audit_balances(conn, channel_id) + escrow.audit(conn, channel_id)


def audit_balances(conn: sqlite3.Connection, channel_id: int | None = None) -> list[Discrepancy]:
    """Every balance against its history: ``points == earned_total + sum(ledger)``."""
    where, args = ("WHERE v.channel_id = ?", (channel_id,)) if channel_id is not None else ("", ())
    found: list[Discrepancy] = []
    rows = conn.execute(
        "SELECT c.login, v.user_id, v.login, v.points, v.earned_total, coalesce(l.total, 0)"
        " FROM viewers AS v JOIN channels AS c ON c.id = v.channel_id"
        " LEFT JOIN (SELECT channel_id, user_id, sum(amount) AS total FROM ledger"
        "            GROUP BY channel_id, user_id) AS l"
        "   ON l.channel_id = v.channel_id AND l.user_id = v.user_id "
        f"{where}",
        args,
    )
    for channel, user_id, login, points, earned, ledger_total in rows:
        subject = f"{login} ({user_id})"
        if points != earned + ledger_total:
            found.append(
                Discrepancy(
                    channel,
                    subject,
                    f"balance {points} != earned {earned} + ledger {ledger_total}"
                    f" (off by {points - earned - ledger_total})",
                )
            )
        if not 0 <= points <= MAX_POINTS:
            found.append(Discrepancy(channel, subject, f"balance {points} out of range"))

    cwhere, cargs = ("WHERE c.id = ?", (channel_id,)) if channel_id is not None else ("", ())
    for channel, recorded, viewers_sum, ticks_sum, transfer_sum, bad_rows in conn.execute(
        "SELECT c.login, c.earned_total,"
        " (SELECT coalesce(sum(earned_total), 0) FROM viewers WHERE channel_id = c.id),"
        " (SELECT coalesce(sum(points), 0) FROM earning_ticks WHERE channel_id = c.id),"
        " (SELECT coalesce(sum(amount), 0) FROM ledger"
        "   WHERE channel_id = c.id AND type = 'transfer'),"
        " (SELECT count(*) FROM ledger WHERE channel_id = c.id"
        "   AND (balance_after < 0 OR balance_after > 9007199254740991))"
        f" FROM channels AS c {cwhere}",
        cargs,
    ):
        if not recorded == viewers_sum == ticks_sum:
            found.append(
                Discrepancy(
                    channel,
                    "channel",
                    f"earned points disagree: ticks {ticks_sum}, viewers {viewers_sum},"
                    f" running total {recorded}",
                )
            )
        if transfer_sum != 0:
            found.append(
                Discrepancy(
                    channel, "channel", f"transfers do not sum to zero (sum {transfer_sum})"
                )
            )
        if bad_rows:
            found.append(
                Discrepancy(
                    channel, "channel", f"{bad_rows} ledger rows with a balance out of range"
                )
            )
    return found


def counts(conn: sqlite3.Connection, channel_id: int | None = None) -> tuple[int, int]:
    """(viewers, channels with viewers), of one channel or all."""
    where, args = ("WHERE channel_id = ?", (channel_id,)) if channel_id is not None else ("", ())
    viewers_count, channels = conn.execute(
        f"SELECT count(*), count(DISTINCT channel_id) FROM viewers {where}", args
    ).fetchone()
    return int(viewers_count), int(channels)


def standings_rows(conn: sqlite3.Connection, channel_id: int) -> Iterable[tuple[str, str, int]]:
    """(user_id, login, points) of every viewer with points, for building standings;
    already in standings order, which makes building them a linear pass, not a sort."""
    return conn.execute(
        "SELECT user_id, login, points FROM viewers WHERE channel_id = ? AND points > 0"
        " ORDER BY points DESC, user_id",
        (channel_id,),
    )


def find_viewer(conn: sqlite3.Connection, channel_id: int, login: str, channel: str) -> Viewer:
    """The viewer a login names in this channel.

    Raises:
        UnknownViewer: nobody with that login has been seen in the channel.
    """
    record = viewers.by_login(conn, channel_id, login)
    if record is None:
        raise UnknownViewer(login, channel)
    return record.identity
