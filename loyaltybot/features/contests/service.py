"""Contests' transactions (SPEC §10.3): open, bet, close, settle, cancel. The feature's SQL
lives here and nowhere else.

A contest goes open -> closed -> settled (or refunded, when nobody backed the winner);
an open or closed contest may be canceled instead (every bet refunded). Its bets are
stakes of its escrow round (``points/escrow.py``) with the option as the stake's option:
a bet moves the points out of the viewer's balance into the round in the transaction
that accepts it, and the settlement pays the whole pool back in one transaction, by the
largest-remainder rule of ``rules.settle``. Each option's pool and bettors are kept in
``contest_pools`` by the same transactions, so a status read is one row per option.

Bets come in bursts (thousands of ``!bet`` in seconds): ``bet`` hands each to a desk that
commits the bets waiting together, one transaction per group, each bet inside its own
savepoint, so a refused one changes nothing and costs the others nothing.

A contest with ``contest_close_after_seconds`` records when it closes (``closes_at``):
from then on it takes no bet, whoever asks first (a bet, the feature's timer, a
restart's ``close_due``), and the timer or the start-up closes it for good.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal

from loyaltybot.clock import Clock, to_ms
from loyaltybot.db import Store, Tx
from loyaltybot.db.desk import Desk, DeskStats, each_in_savepoint
from loyaltybot.features.contests import rules
from loyaltybot.features.contests.rules import (
    CannotAfford,
    ContestClosed,
    ContestSpec,
    NoContest,
    NoSuchOption,
    NotEligible,
    WrongState,
)
from loyaltybot.points import escrow
from loyaltybot.points.bank import Bank
from loyaltybot.points.errors import InsufficientPoints
from loyaltybot.points.ledger import EntryType
from loyaltybot.points.viewers import Viewer
from loyaltybot.settings import ChannelSettings

KIND = "contest"  # the escrow rounds' kind
MAX_GROUP = 256  # bets committed together at most (a group is ~25 ms of the writer)

State = Literal["open", "closed", "settled", "refunded", "canceled"]
RUNNING: tuple[State, ...] = ("open", "closed")


@dataclass(frozen=True, slots=True)
class Terms:
    """A new contest's limits, fixed when it opens (from the channel's settings)."""

    min_bet: int
    max_bet: int  # per viewer, in total
    close_after_seconds: float  # 0 = until a moderator closes it


def terms_of(settings: ChannelSettings) -> Terms:
    return Terms(
        settings.contest_min_bet, settings.contest_max_bet, settings.contest_close_after_seconds
    )


@dataclass(frozen=True, slots=True)
class Option:
    number: int  # 1-based, as viewers type it
    text: str
    pool: int
    bettors: int


@dataclass(frozen=True, slots=True)
class Contest:
    id: int
    channel_id: int
    round_id: int
    question: str
    options: tuple[Option, ...]
    state: State
    min_bet: int
    max_bet: int
    closes_at: int | None  # ms
    winner: int | None
    winning_pool: int | None
    losing_pool: int | None
    extra_points: int | None
    opened_by: str | None
    opened_at: int
    closed_at: int | None
    ended_by: str | None
    ended_at: int | None
    held: int  # points its round holds now

    @property
    def pool(self) -> int:
        return sum(option.pool for option in self.options)

    @property
    def bettors(self) -> int:
        return sum(option.bettors for option in self.options)

    @property
    def pools(self) -> tuple[int, ...]:
        return tuple(option.pool for option in self.options)

    @property
    def running(self) -> bool:
        return self.state in RUNNING

    def takes_bets(self, now_ms: int) -> bool:
        return self.state == "open" and (self.closes_at is None or now_ms < self.closes_at)

    def option(self, number: int) -> Option:
        """Raises NoSuchOption."""
        if not 1 <= number <= len(self.options):
            raise NoSuchOption(number, len(self.options))
        return self.options[number - 1]


@dataclass(frozen=True, slots=True)
class Placed:
    """A ``!bet`` that was accepted."""

    contest_id: int
    user_id: str
    login: str
    option: int
    amount: int  # points this bet took
    total: int  # the viewer's whole stake now
    balance: int  # after
    pool: int  # the contest's whole pool now
    bettors: int  # viewers with a bet now


@dataclass(frozen=True, slots=True)
class Payout:
    user_id: str
    login: str
    stake: int
    paid: int


@dataclass(frozen=True, slots=True)
class Ended:
    """What settling or canceling did."""

    contest: Contest  # after
    outcome: Literal["paid", "refunded", "canceled"]
    winners: int  # viewers paid (0 when refunded)
    paid: int  # points credited, payouts and refunds together (= the pool, unless clamped)
    viewers: int  # viewers credited
    lost: int  # points that did not fit under a balance's maximum
    top: tuple[Payout, ...]  # the largest payouts (up to 3)


@dataclass(frozen=True, slots=True)
class BetRow:
    user_id: str
    login: str
    option: int
    amount: int
    seq: int  # 1 for the contest's first bettor
    payout: int | None  # after settlement: what came back (None while it runs)


@dataclass
class BetStats(DeskStats):
    """The desk's counters for /metrics, and the points the bets took."""

    points: int = 0


# ---- SQL: reads ------------------------------------------------------------------------------

_COLUMNS = """
c.id, c.channel_id, c.round_id, c.question, c.options, c.state, c.min_bet, c.max_bet,
c.closes_at, c.winner, c.winning_pool, c.losing_pool, c.extra_points, c.opened_by,
c.opened_at, c.closed_at, c.ended_by, c.ended_at, r.held
"""
_FROM = "FROM contests AS c JOIN escrow_rounds AS r ON r.id = c.round_id"


def _contest(conn: sqlite3.Connection, row: tuple[object, ...] | None) -> Contest | None:
    if row is None:
        return None
    (cid, channel_id, round_id, question, options, state, min_bet, max_bet, closes_at, winner,
     winning_pool, losing_pool, extra, opened_by, opened_at, closed_at, ended_by, ended_at,
     held) = row  # fmt: skip
    pools = {
        option: (pool, bettors)
        for option, pool, bettors in conn.execute(
            "SELECT option, pool, bettors FROM contest_pools WHERE contest_id = ?", (cid,)
        )
    }
    texts = json.loads(str(options))
    return Contest(
        int(cid),  # type: ignore[call-overload]
        int(channel_id),  # type: ignore[call-overload]
        int(round_id),  # type: ignore[call-overload]
        str(question),
        tuple(
            Option(n, text, *pools.get(n, (0, 0))) for n, text in enumerate(texts, start=1)
        ),
        state,  # type: ignore[arg-type]
        int(min_bet),  # type: ignore[call-overload]
        int(max_bet),  # type: ignore[call-overload]
        closes_at,  # type: ignore[arg-type]
        winner,  # type: ignore[arg-type]
        winning_pool,  # type: ignore[arg-type]
        losing_pool,  # type: ignore[arg-type]
        extra,  # type: ignore[arg-type]
        opened_by,  # type: ignore[arg-type]
        int(opened_at),  # type: ignore[call-overload]
        closed_at,  # type: ignore[arg-type]
        ended_by,  # type: ignore[arg-type]
        ended_at,  # type: ignore[arg-type]
        int(held),  # type: ignore[call-overload]
    )


def by_id(conn: sqlite3.Connection, contest_id: int) -> Contest | None:
    return _contest(
        conn, conn.execute(f"SELECT {_COLUMNS} {_FROM} WHERE c.id = ?", (contest_id,)).fetchone()
    )


def latest(conn: sqlite3.Connection, channel_id: int) -> Contest | None:
    """The channel's most recent contest, whatever its state."""
    row = conn.execute(
        f"SELECT {_COLUMNS} {_FROM} WHERE c.channel_id = ? ORDER BY c.id DESC LIMIT 1",
        (channel_id,),
    ).fetchone()
    return _contest(conn, row)


def running(conn: sqlite3.Connection, channel_id: int) -> Contest | None:
    """The channel's contest that is open or waiting for its winner, if any."""
    found = latest(conn, channel_id)
    return found if found is not None and found.running else None


def history(conn: sqlite3.Connection, channel_id: int, limit: int) -> list[Contest]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} {_FROM} WHERE c.channel_id = ? ORDER BY c.id DESC LIMIT ?",
        (channel_id, limit),
    ).fetchall()
    return [c for c in (_contest(conn, row) for row in rows) if c is not None]


def stake_of(conn: sqlite3.Connection, contest: Contest, user_id: str) -> tuple[int, int] | None:
    """(option, points) the viewer has on the contest, if any."""
    stake = escrow.stake_of(conn, contest.round_id, user_id)
    if stake is None or stake.option is None:
        return None
    return stake.option, stake.amount


def bets(conn: sqlite3.Connection, contest: Contest, limit: int) -> list[BetRow]:
    """The largest bets (first bettors first among equals), with what each got back."""
    rows = conn.execute(
        "SELECT s.user_id, v.login, s.option, s.amount, s.seq,"
        " (SELECT sum(l.amount) FROM ledger AS l WHERE l.round_id = s.round_id"
        "   AND l.user_id = s.user_id AND l.amount > 0)"
        " FROM escrow_stakes AS s"
        " JOIN viewers AS v ON v.channel_id = s.channel_id AND v.user_id = s.user_id"
        " WHERE s.round_id = ? ORDER BY s.amount DESC, s.seq LIMIT ?",
        (contest.round_id, limit),
    )
    ended = contest.state in ("settled", "refunded", "canceled")
    return [
        BetRow(user_id, login, option, amount, seq, (paid or 0) if ended else None)
        for user_id, login, option, amount, seq, paid in rows
    ]


def closing_due(conn: sqlite3.Connection, now_ms: int) -> list[Contest]:
    """Open contests whose closing time has come (the timer's, or a restart's, work)."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} {_FROM} WHERE c.state = 'open' AND c.closes_at IS NOT NULL"
        " AND c.closes_at <= ? ORDER BY c.closes_at",
        (now_ms,),
    ).fetchall()
    return [c for c in (_contest(conn, row) for row in rows) if c is not None]


def next_closing(conn: sqlite3.Connection) -> int | None:
    """When the next open contest closes (ms), if any has a closing time."""
    (at,) = conn.execute(
        "SELECT min(closes_at) FROM contests WHERE state = 'open' AND closes_at IS NOT NULL"
    ).fetchone()
    return None if at is None else int(at)


def _reread(conn: sqlite3.Connection, contest_id: int) -> Contest:
    found = by_id(conn, contest_id)
    if found is None:
        raise RuntimeError(f"contest {contest_id} vanished inside a transaction")
    return found


def _require(conn: sqlite3.Connection, channel_id: int) -> Contest:
    found = running(conn, channel_id)
    if found is None:
        raise NoContest()
    return found


# ---- SQL: changes ----------------------------------------------------------------------------


def open_contest(tx: Tx, channel_id: int, spec: ContestSpec, terms: Terms, actor: str) -> Contest:
    """Raises WrongState: another contest is open or closed."""
    current = running(tx.conn, channel_id)
    if current is not None:
        raise WrongState(current.id, current.state, "open")
    round_ = escrow.open_round(tx, channel_id, KIND)
    closes_at = (
        tx.now_ms + round(terms.close_after_seconds * 1000)
        if terms.close_after_seconds > 0
        else None
    )
    cursor = tx.conn.execute(
        "INSERT INTO contests (channel_id, round_id, question, options, min_bet, max_bet,"
        " closes_at, opened_by, opened_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (channel_id, round_.id, spec.question, json.dumps(list(spec.options)), terms.min_bet,
         terms.max_bet, closes_at, actor, tx.now_ms),
    )  # fmt: skip
    contest_id = int(cursor.lastrowid or 0)
    tx.conn.executemany(
        "INSERT INTO contest_pools (contest_id, option) VALUES (?, ?)",
        [(contest_id, n) for n in range(1, len(spec.options) + 1)],
    )
    return _reread(tx.conn, contest_id)


def close(tx: Tx, channel_id: int, actor: str | None, *, contest_id: int | None = None
          ) -> Contest:  # fmt: skip
    """No more bets. ``contest_id``: only if that contest is still the one open.

    Raises:
        NoContest, WrongState (closed already).
    """
    current = _require(tx.conn, channel_id)
    if contest_id is not None and current.id != contest_id:
        raise NoContest()
    if current.state != "open":
        raise WrongState(current.id, current.state, "close")
    tx.conn.execute(
        "UPDATE contests SET state = 'closed', closed_at = ? WHERE id = ? AND state = 'open'",
        (tx.now_ms, current.id),
    )
    return _reread(tx.conn, current.id)


def settle(tx: Tx, channel_id: int, winner: int, actor: str) -> Ended:
    """The winning option is ``winner``: close the contest if still open and pay the whole
    pool out (or refund it, when nobody backed the winner) in this one transaction.

    Raises:
        NoContest, NoSuchOption: nothing changes.
    """
    conn = tx.conn
    current = _require(conn, channel_id)
    current.option(winner)
    rows = conn.execute(
        "SELECT user_id, option, amount, seq FROM escrow_stakes WHERE round_id = ?"
        " AND amount > 0",
        (current.round_id,),
    ).fetchall()
    result = rules.settle(rows, winner)
    name = f"Contest #{current.id}"
    if result.outcome == "paid":
        done = escrow.settle(tx, current.round_id, result.payouts, kind=EntryType.CONTEST_PAYOUT,
                             reason=f"{name}: option {winner} won", actor=actor)  # fmt: skip
        state: State = "settled"
    else:
        done = escrow.refund(tx, current.round_id, kind=EntryType.CONTEST_REFUND,
                             reason=f"{name}: nobody bet on option {winner}", actor=actor)
        state = "refunded"
    conn.execute(
        "UPDATE contests SET state = ?, winner = ?, winning_pool = ?, losing_pool = ?,"
        " extra_points = ?, closed_at = coalesce(closed_at, ?), ended_by = ?, ended_at = ?"
        " WHERE id = ?",
        (state, winner, result.winning_pool, result.losing_pool, result.extra_points,
         tx.now_ms, actor, tx.now_ms, current.id),
    )  # fmt: skip
    top: list[Payout] = []
    if result.outcome == "paid":
        best = sorted(result.payouts.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        logins = {c.user_id: c.login for c in done.credits}
        top = [Payout(uid, logins.get(uid, uid), result.stakes[uid], paid) for uid, paid in best]
    return Ended(
        _reread(conn, current.id),
        result.outcome,
        len(result.payouts),
        done.paid,
        len(done.credits),
        sum(amount for _, amount in done.lost),
        tuple(top),
    )


def cancel(tx: Tx, channel_id: int, actor: str) -> Ended:
    """Every bet back, in this one transaction.

    Raises:
        NoContest: nothing changes.
    """
    current = _require(tx.conn, channel_id)
    done = escrow.refund(tx, current.round_id, kind=EntryType.CONTEST_REFUND,
                         reason=f"Contest #{current.id} canceled", actor=actor)  # fmt: skip
    tx.conn.execute(
        "UPDATE contests SET state = 'canceled', closed_at = coalesce(closed_at, ?),"
        " ended_by = ?, ended_at = ? WHERE id = ?",
        (tx.now_ms, actor, tx.now_ms, current.id),
    )
    return Ended(
        _reread(tx.conn, current.id), "canceled", 0, done.paid, len(done.credits),
        sum(amount for _, amount in done.lost), (),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Request:
    channel_id: int
    viewer: Viewer
    option: int
    amount: int


def _bet_group(tx: Tx, group: Sequence[_Request]) -> list[Placed | Exception]:
    """Each bet in its own savepoint of one transaction."""
    running_now: dict[int, Contest | None] = {}
    return each_in_savepoint(tx, "bet", group, lambda r: _bet(tx, r, running_now))


def _bet(tx: Tx, request: _Request, running_now: dict[int, Contest | None]) -> Placed:
    conn = tx.conn
    if request.channel_id not in running_now:  # one look per channel and group
        running_now[request.channel_id] = running(conn, request.channel_id)
    current = running_now[request.channel_id]
    if current is None:
        raise NoContest()
    if not current.takes_bets(tx.now_ms):
        raise ContestClosed(current.id)
    viewer = request.viewer
    held = stake_of(conn, current, viewer.user_id)
    total = rules.check_bet(
        request.option,
        request.amount,
        option_count=len(current.options),
        held_option=None if held is None else held[0],
        held_amount=0 if held is None else held[1],
        min_bet=current.min_bet,
        max_bet=current.max_bet,
    )
    try:
        accepted = escrow.stake(
            tx,
            current.round_id,
            viewer,
            request.amount,
            kind=EntryType.CONTEST_STAKE,
            option=request.option,
            reason=f"Contest #{current.id}: option {request.option}",
            actor=viewer.login,
        )
    except InsufficientPoints as exc:
        raise CannotAfford(request.amount, exc.balance) from None
    conn.execute(
        "UPDATE contest_pools SET pool = pool + ?, bettors = bettors + ?"
        " WHERE contest_id = ? AND option = ?",
        (request.amount, int(accepted.new_entrant), current.id, request.option),
    )
    change = accepted.change
    return Placed(
        current.id,
        viewer.user_id,
        viewer.login,
        request.option,
        request.amount,
        total,
        0 if change is None else change.balance,
        accepted.round.held,
        accepted.round.entrants,
    )


# ---- the service ---------------------------------------------------------------------------


class Contests:
    """Every contest action, as the chat commands, the dashboard and the timer use them."""

    def __init__(self, bank: Bank, store: Store, clock: Clock) -> None:
        self._bank = bank
        self._store = store
        self._clock = clock
        self.stats = BetStats()
        self._desk: Desk[_Request, Placed] = Desk(
            store, clock, _bet_group, name="contest-bets", max_group=MAX_GROUP,
            stats=self.stats, committed=self._count,
        )

    def _count(self, placed: Placed) -> None:
        self.stats.points += placed.amount

    def now_ms(self) -> int:
        return to_ms(self._clock.now())

    # ---- reads -------------------------------------------------------------------------------

    async def running(self, channel: str) -> Contest | None:
        channel_id = self._bank.channel_id(channel)
        return await self._store.read(lambda c: running(c, channel_id))

    async def latest(self, channel: str) -> Contest | None:
        channel_id = self._bank.channel_id(channel)
        return await self._store.read(lambda c: latest(c, channel_id))

    async def get(self, channel: str, contest_id: int) -> Contest | None:
        """The contest with this number, if it is this channel's."""
        channel_id = self._bank.channel_id(channel)
        found = await self._store.read(lambda c: by_id(c, contest_id))
        return found if found is not None and found.channel_id == channel_id else None

    async def history(self, channel: str, limit: int = 20) -> list[Contest]:
        channel_id = self._bank.channel_id(channel)
        return await self._store.read(lambda c: history(c, channel_id, limit))

    async def status(self, channel: str, user_id: str
                     ) -> tuple[Contest | None, tuple[int, int] | None]:  # fmt: skip
        """The running (else the latest) contest and the asker's bet on it: one snapshot."""
        channel_id = self._bank.channel_id(channel)

        def read(conn: sqlite3.Connection) -> tuple[Contest | None, tuple[int, int] | None]:
            found = latest(conn, channel_id)
            return found, None if found is None else stake_of(conn, found, user_id)

        return await self._store.read(read)

    async def bets(self, contest: Contest, limit: int = 50) -> list[BetRow]:
        return await self._store.read(lambda c: bets(c, contest, limit))

    async def next_closing(self) -> int | None:
        return await self._store.read(next_closing)

    # ---- a moderator's actions ---------------------------------------------------------------

    async def open(self, channel: str, spec: ContestSpec, terms: Terms, *, actor: str) -> Contest:
        """Raises WrongState: another contest runs; BadLimits: the minimum is above the
        maximum (nothing could be bet)."""
        channel_id = self._bank.channel_id(channel)
        if terms.min_bet > terms.max_bet:
            raise rules.BadLimits(terms.min_bet, terms.max_bet)
        if terms.min_bet < 1 or terms.close_after_seconds < 0:
            raise ValueError(f"bad contest terms {terms}")
        return await self._store.write(
            lambda tx: open_contest(tx, channel_id, spec, terms, actor)
        )

    async def close(self, channel: str, *, actor: str | None, contest_id: int | None = None
                    ) -> Contest:  # fmt: skip
        """Raises NoContest, WrongState: nothing changes."""
        channel_id = self._bank.channel_id(channel)
        return await self._store.write(
            lambda tx: close(tx, channel_id, actor, contest_id=contest_id)
        )

    async def settle(self, channel: str, winner: int, *, actor: str) -> Ended:
        """Raises NoContest, NoSuchOption: nothing changes."""
        channel_id = self._bank.channel_id(channel)
        return await self._store.write(partial(settle, channel_id=channel_id, winner=winner,
                                               actor=actor))  # fmt: skip

    async def cancel(self, channel: str, *, actor: str) -> Ended:
        """Raises NoContest: nothing changes."""
        channel_id = self._bank.channel_id(channel)
        return await self._store.write(lambda tx: cancel(tx, channel_id, actor))

    async def close_due(self) -> list[Contest]:
        """Close every open contest whose time has run out (the timer; the start-up)."""

        def run(tx: Tx) -> list[Contest]:
            closed = []
            for contest in closing_due(tx.conn, tx.now_ms):
                closed.append(close(tx, contest.channel_id, None, contest_id=contest.id))
            return closed

        return await self._store.write(run)

    # ---- bets ----------------------------------------------------------------------------------

    async def bet(self, channel: str, viewer: Viewer, option: int, amount: int, *,
                  received_at: float | None = None) -> Placed:  # fmt: skip
        """Bet ``amount`` on ``option`` of the channel's open contest (committed with the
        others waiting). ``received_at`` (monotonic): when the chat line arrived.

        Raises:
            NoContest, ContestClosed, NotEligible, NoSuchOption, WrongOption, BetTooSmall,
            BetTooLarge, CannotAfford: nothing changes.
        """
        channel_id = self._bank.channel_id(channel)
        if viewer.login in self._bank.excluded(channel):
            raise NotEligible(viewer.login)
        try:
            return await self._desk.submit(
                _Request(channel_id, viewer, option, amount), received_at
            )
        except rules.ContestRefusal:
            self.stats.refused += 1
            raise

    async def close_desk(self) -> None:
        """Finish the bets being committed (at stop)."""
        await self._desk.close()
