"""Giveaways' transactions (SPEC §10.2): open, tickets, close, draw, cancel. The feature's
SQL lives here and nowhere else.

A giveaway goes open -> closed -> drawn, and a drawn one is ended by the next ``open``;
an open or closed one may be canceled instead. Its tickets are stakes of its escrow
round (``points/escrow.py``): a purchase moves the points out of the viewer's balance
into the round in the transaction that accepts it; ``cancel`` refunds every stake in one
transaction; the first draw settles the round with no payouts (the tickets are spent).

The seed is drawn from ``secrets`` at ``close`` and stored with its commitment; each draw
records the entrants it picked, in draw order, winners and skipped alike, so
``verify`` (the CLI, the dashboard) recomputes exactly what was announced.

Ticket purchases come in bursts (thousands of ``!ticket`` in seconds): ``buy`` hands each
to a desk that commits the purchases waiting together, one transaction per group, each
purchase inside its own savepoint, so a refused one changes nothing and costs the others
nothing, and a burst costs a few commits instead of thousands.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal

from loyaltybot.clock import Clock
from loyaltybot.db import Store, Tx
from loyaltybot.db.desk import Desk, DeskStats, each_in_savepoint
from loyaltybot.features.giveaways import rules
from loyaltybot.features.giveaways.rules import (
    CannotAfford,
    GiveawayClosed,
    NoEntrants,
    NoGiveaway,
    NotEligible,
    Verification,
    WrongState,
)
from loyaltybot.points import escrow
from loyaltybot.points.amounts import MAX_POINTS
from loyaltybot.points.bank import Bank
from loyaltybot.points.errors import InsufficientPoints
from loyaltybot.points.ledger import EntryType
from loyaltybot.points.viewers import Viewer
from loyaltybot.settings import ChannelSettings

KIND = "giveaway"  # the escrow rounds' kind
MAX_GROUP = 512  # ticket purchases committed together at most

State = Literal["open", "closed", "drawn", "canceled", "ended"]


@dataclass(frozen=True, slots=True)
class Terms:
    """What a giveaway's tickets cost and weigh, fixed when it opens."""

    ticket_cost: int  # 0 = free entry: one ticket each
    max_tickets: int  # per viewer
    luck: int  # a subscriber's ticket weight, in hundredths (100..1000)

    @property
    def limit(self) -> int:
        """Tickets a viewer may hold: one for a free giveaway."""
        return 1 if self.ticket_cost == 0 else self.max_tickets


@dataclass(frozen=True, slots=True)
class Giveaway:
    id: int
    channel_id: int
    round_id: int
    prize: str
    state: State
    terms: Terms
    commitment: str | None  # posted at close
    seed: str | None  # published from the first draw on; None before
    algorithm: str
    opened_by: str | None
    opened_at: int
    closed_at: int | None
    drawn_at: int | None
    ended_at: int | None
    tickets: int  # in the draw
    entrants: int
    held: int  # points its round holds now

    @property
    def takes_tickets(self) -> bool:
        return self.state == "open"


@dataclass(frozen=True, slots=True)
class Purchase:
    """A ``!ticket`` that was accepted."""

    giveaway_id: int
    user_id: str
    login: str
    bought: int
    held: int  # tickets the viewer holds now
    limit: int
    price: int  # points taken
    balance: int | None  # after, when points were taken
    tickets: int  # in the draw now
    entrants: int


@dataclass(frozen=True, slots=True)
class Pick:
    """An entrant a draw picked: a winner, or skipped as not present."""

    pick: int  # place in the draw order, from 1
    draw_no: int
    user_id: str
    login: str
    outcome: Literal["won", "skipped"]


@dataclass(frozen=True, slots=True)
class Drawn:
    """What one draw did."""

    giveaway: Giveaway  # after the draw (its seed is public now)
    draw_no: int
    winners: tuple[Pick, ...]
    skipped: tuple[Pick, ...]
    exhausted: bool  # nobody is left to draw
    spent: bool  # this was the first draw: it spent the tickets


@dataclass(frozen=True, slots=True)
class Canceled:
    giveaway: Giveaway
    refunded: int  # points given back
    viewers: int  # viewers who got points back
    lost: int  # points that did not fit under a balance's maximum


@dataclass(frozen=True, slots=True)
class EntryRow:
    user_id: str
    login: str
    tickets: int
    points: int
    subscriber: bool


@dataclass(frozen=True, slots=True)
class Checked:
    """``verify``: the giveaway, its recorded winners and skipped, and the recomputation."""

    giveaway: Giveaway
    winners: tuple[str, ...]
    skipped: tuple[str, ...]
    result: Verification


@dataclass
class TicketStats(DeskStats):
    """The desk's counters for /metrics, and the tickets the purchases bought."""

    tickets: int = 0


# ---- SQL -----------------------------------------------------------------------------------

_GIVEAWAY_COLUMNS = """
g.id, g.channel_id, g.round_id, g.prize, g.state, g.ticket_cost, g.max_tickets,
g.subscriber_luck, g.commitment, g.seed, g.algorithm, g.opened_by, g.opened_at, g.closed_at,
g.drawn_at, g.ended_at, r.units, r.entrants, r.held
"""
_FROM = "FROM giveaways AS g JOIN escrow_rounds AS r ON r.id = g.round_id"


def _giveaway(row: tuple[object, ...] | None) -> Giveaway | None:
    if row is None:
        return None
    (gid, channel_id, round_id, prize, state, cost, max_tickets, luck, commitment, seed,
     algorithm, opened_by, opened_at, closed_at, drawn_at, ended_at, units, entrants,
     held) = row  # fmt: skip
    published = seed if drawn_at is not None else None
    return Giveaway(
        int(gid),  # type: ignore[call-overload]
        int(channel_id),  # type: ignore[call-overload]
        int(round_id),  # type: ignore[call-overload]
        str(prize),
        state,  # type: ignore[arg-type]
        Terms(int(cost), int(max_tickets), int(luck)),  # type: ignore[call-overload]
        commitment,  # type: ignore[arg-type]
        published,  # type: ignore[arg-type]
        str(algorithm),
        opened_by,  # type: ignore[arg-type]
        opened_at,  # type: ignore[arg-type]
        closed_at,  # type: ignore[arg-type]
        drawn_at,  # type: ignore[arg-type]
        ended_at,  # type: ignore[arg-type]
        int(units),  # type: ignore[call-overload]
        int(entrants),  # type: ignore[call-overload]
        int(held),  # type: ignore[call-overload]
    )


def by_id(conn: sqlite3.Connection, giveaway_id: int) -> Giveaway | None:
    return _giveaway(
        conn.execute(f"SELECT {_GIVEAWAY_COLUMNS} {_FROM} WHERE g.id = ?", (giveaway_id,))
        .fetchone()
    )


def latest(conn: sqlite3.Connection, channel_id: int) -> Giveaway | None:
    """The channel's most recent giveaway, whatever its state."""
    return _giveaway(
        conn.execute(
            f"SELECT {_GIVEAWAY_COLUMNS} {_FROM} WHERE g.channel_id = ? ORDER BY g.id DESC"
            " LIMIT 1",
            (channel_id,),
        ).fetchone()
    )


def running(conn: sqlite3.Connection, channel_id: int) -> Giveaway | None:
    """The channel's giveaway that is open, closed or drawn (not yet ended), if any."""
    found = latest(conn, channel_id)
    return found if found is not None and found.state in ("open", "closed", "drawn") else None


def history(conn: sqlite3.Connection, channel_id: int, limit: int) -> list[Giveaway]:
    rows = conn.execute(
        f"SELECT {_GIVEAWAY_COLUMNS} {_FROM} WHERE g.channel_id = ? ORDER BY g.id DESC LIMIT ?",
        (channel_id, limit),
    ).fetchall()
    return [g for g in map(_giveaway, rows) if g is not None]


def tickets_held(conn: sqlite3.Connection, giveaway: Giveaway, user_id: str) -> int:
    stake = escrow.stake_of(conn, giveaway.round_id, user_id)
    return 0 if stake is None else stake.units


def entries(
    conn: sqlite3.Connection, giveaway: Giveaway, *, limit: int | None = None
) -> list[EntryRow]:
    """Entrants with their tickets; most tickets first when ``limit`` cuts the list, else
    in the draw's canonical order (shorter ids first, then by id)."""
    order = "s.units DESC, s.seq" if limit is not None else "length(s.user_id), s.user_id"
    rows = conn.execute(
        "SELECT s.user_id, v.login, s.units, s.amount, coalesce(e.subscriber, 0)"
        " FROM escrow_stakes AS s"
        " JOIN viewers AS v ON v.channel_id = s.channel_id AND v.user_id = s.user_id"
        " LEFT JOIN giveaway_entries AS e ON e.giveaway_id = ? AND e.user_id = s.user_id"
        f" WHERE s.round_id = ? ORDER BY {order} LIMIT ?",
        (giveaway.id, giveaway.round_id, -1 if limit is None else limit),
    )
    return [
        EntryRow(user_id, login, units, points, bool(subscriber))
        for user_id, login, units, points, subscriber in rows
    ]


def draw_entries(conn: sqlite3.Connection, giveaway: Giveaway) -> list[tuple[str, int, float]]:
    """(user id, tickets, luck) of every entrant: what the draw and its verification use.

    Read in the stakes' key order with no join and no SQL sort (100,000 entrants in a few
    tens of ms); the rules put them in the canonical order. Luck is hundredths / 100 as a
    float, which the rules read back exactly (1.15 prints as "1.15")."""
    luck = giveaway.terms.luck / 100
    subscribers = {
        user_id
        for (user_id,) in conn.execute(
            "SELECT user_id FROM giveaway_entries WHERE giveaway_id = ? AND subscriber = 1",
            (giveaway.id,),
        )
    }
    rows = conn.execute(
        "SELECT user_id, units FROM escrow_stakes WHERE round_id = ? AND units > 0",
        (giveaway.round_id,),
    ).fetchall()
    if not subscribers or giveaway.terms.luck == 100:
        return [(user_id, units, 1.0) for user_id, units in rows]
    return [(user_id, units, luck if user_id in subscribers else 1.0) for user_id, units in rows]


def picks(conn: sqlite3.Connection, giveaway_id: int) -> list[Pick]:
    """Every entrant the draws picked, in draw order."""
    return [
        Pick(pick, draw_no, user_id, login or user_id, outcome)
        for pick, draw_no, user_id, login, outcome in conn.execute(
            "SELECT p.pick, p.draw_no, p.user_id, v.login, p.outcome FROM giveaway_picks AS p"
            " JOIN giveaways AS g ON g.id = p.giveaway_id"
            " LEFT JOIN viewers AS v ON v.channel_id = g.channel_id AND v.user_id = p.user_id"
            " WHERE p.giveaway_id = ? ORDER BY p.pick",
            (giveaway_id,),
        )
    ]


def channel_of(conn: sqlite3.Connection, giveaway: Giveaway) -> str:
    """The login of the giveaway's channel (the CLI may run without it in the config)."""
    (login,) = conn.execute(
        "SELECT login FROM channels WHERE id = ?", (giveaway.channel_id,)
    ).fetchone()
    return str(login)


def check(conn: sqlite3.Connection, giveaway: Giveaway) -> Checked:
    """Recompute the winners from the recorded seed and entries and compare (SPEC §10.2)."""
    (seed,) = conn.execute("SELECT seed FROM giveaways WHERE id = ?", (giveaway.id,)).fetchone()
    recorded = picks(conn, giveaway.id)
    winners = tuple(p.user_id for p in recorded if p.outcome == "won")
    skipped = tuple(p.user_id for p in recorded if p.outcome == "skipped")
    result = rules.verify(
        seed or "", giveaway.commitment or "", draw_entries(conn, giveaway), winners, skipped
    )
    return Checked(giveaway, winners, skipped, result)


def terms_of(settings: ChannelSettings) -> Terms:
    """A new giveaway's terms from the channel's settings (SPEC §10.2 keys)."""
    return Terms(
        settings.giveaway_ticket_cost,
        settings.giveaway_max_tickets,
        rules.luck_hundredths(settings.giveaway_subscriber_luck),
    )


# ---- the service -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Request:
    channel_id: int
    viewer: Viewer
    requested: int | Literal["max"]
    subscriber: bool


class Giveaways:
    """Every giveaway action, as the chat commands, the dashboard and the CLI use them."""

    def __init__(self, bank: Bank, store: Store, clock: Clock) -> None:
        self._bank = bank
        self._store = store
        self._clock = clock
        self.stats = TicketStats()
        self._desk: Desk[_Request, Purchase] = Desk(
            store, clock, _buy_group, name="giveaway-tickets", max_group=MAX_GROUP,
            stats=self.stats, committed=self._count,
        )

    def _count(self, purchase: Purchase) -> None:
        self.stats.tickets += purchase.bought

    # ---- reads ----------------------------------------------------------------------------

    async def running(self, channel: str) -> Giveaway | None:
        channel_id = self._bank.channel_id(channel)
        return await self._store.read(lambda c: running(c, channel_id))

    async def latest(self, channel: str) -> Giveaway | None:
        channel_id = self._bank.channel_id(channel)
        return await self._store.read(lambda c: latest(c, channel_id))

    async def get(self, channel: str, giveaway_id: int) -> Giveaway | None:
        """The giveaway with this number, if it is this channel's."""
        channel_id = self._bank.channel_id(channel)
        found = await self._store.read(lambda c: by_id(c, giveaway_id))
        return found if found is not None and found.channel_id == channel_id else None

    async def history(self, channel: str, limit: int = 20) -> list[Giveaway]:
        channel_id = self._bank.channel_id(channel)
        return await self._store.read(lambda c: history(c, channel_id, limit))

    async def status(self, channel: str, user_id: str) -> tuple[Giveaway | None, int]:
        """The running giveaway and the tickets ``user_id`` holds in it (one snapshot)."""
        channel_id = self._bank.channel_id(channel)

        def read(conn: sqlite3.Connection) -> tuple[Giveaway | None, int]:
            found = running(conn, channel_id)
            return found, 0 if found is None else tickets_held(conn, found, user_id)

        return await self._store.read(read)

    async def entries(self, giveaway: Giveaway, limit: int | None = None) -> list[EntryRow]:
        return await self._store.read(lambda c: entries(c, giveaway, limit=limit))

    async def picks(self, giveaway: Giveaway) -> list[Pick]:
        return await self._store.read(lambda c: picks(c, giveaway.id))

    async def check(self, giveaway: Giveaway) -> Checked:
        return await self._store.read(lambda c: check(c, giveaway))

    # ---- a moderator's actions --------------------------------------------------------------

    async def open(self, channel: str, prize: str, terms: Terms, *, actor: str) -> Giveaway:
        """Open a giveaway (ending a drawn one).

        Raises:
            WrongState: another giveaway is open or closed.
            ValueError: an empty prize.
        """
        channel_id = self._bank.channel_id(channel)
        text = rules.clean_prize(prize)
        if not (terms.ticket_cost >= 0 and terms.max_tickets >= 1 and 100 <= terms.luck <= 1000):
            raise ValueError(f"bad giveaway terms {terms}")

        def run(tx: Tx) -> Giveaway:
            current = running(tx.conn, channel_id)
            if current is not None and current.state in ("open", "closed"):
                raise WrongState(current.id, current.state, "open")
            tx.conn.execute(
                "UPDATE giveaways SET state = 'ended', ended_at = ?"
                " WHERE channel_id = ? AND state = 'drawn'",
                (tx.now_ms, channel_id),
            )
            round_ = escrow.open_round(tx, channel_id, KIND)
            cursor = tx.conn.execute(
                "INSERT INTO giveaways (channel_id, round_id, prize, ticket_cost, max_tickets,"
                " subscriber_luck, algorithm, opened_by, opened_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (channel_id, round_.id, text, terms.ticket_cost, terms.max_tickets, terms.luck,
                 rules.ALGORITHM, actor, tx.now_ms),
            )  # fmt: skip
            return _reread(tx.conn, int(cursor.lastrowid or 0))

        return await self._store.write(run)

    async def close(self, channel: str, *, actor: str) -> Giveaway:
        """No more tickets; the seed is drawn and its commitment recorded.

        Raises:
            NoGiveaway, WrongState: nothing changes.
        """
        channel_id = self._bank.channel_id(channel)
        seed = rules.new_seed()  # from secrets; fixed before anyone can see the draw
        commitment = rules.commitment(seed)

        def run(tx: Tx) -> Giveaway:
            current = _require(tx.conn, channel_id)
            if current.state != "open":
                raise WrongState(current.id, current.state, "close")
            tx.conn.execute(
                "UPDATE giveaways SET state = 'closed', seed = ?, commitment = ?, closed_at = ?"
                " WHERE id = ? AND state = 'open'",
                (seed, commitment, tx.now_ms, current.id),
            )
            return _reread(tx.conn, current.id)

        return await self._store.write(run)

    async def draw(
        self, channel: str, n: int, *, present: Collection[str] | None, actor: str
    ) -> Drawn:
        """Draw ``n`` more winners of the closed (or drawn) giveaway; ``present`` (user
        ids) skips the entrants not in it. The first draw spends the tickets.

        Raises:
            NoGiveaway, WrongState (still open, or canceled): nothing changes.
            NoEntrants: nobody (left) to draw.
        """
        channel_id = self._bank.channel_id(channel)
        if not 1 <= n <= rules.MAX_DRAW:
            raise ValueError(f"n must be 1..{rules.MAX_DRAW}")
        here = None if present is None else frozenset(present)
        return await self._store.write(partial(_draw, channel_id=channel_id, n=n,
                                               present=here, actor=actor))  # fmt: skip

    async def cancel(self, channel: str, *, actor: str) -> Canceled:
        """Refund every ticket of the open or closed giveaway, in one transaction.

        Raises:
            NoGiveaway, WrongState (drawn already): nothing changes.
        """
        channel_id = self._bank.channel_id(channel)

        def run(tx: Tx) -> Canceled:
            current = _require(tx.conn, channel_id)
            if current.state not in ("open", "closed"):
                raise WrongState(current.id, current.state, "cancel")
            done = escrow.refund(
                tx,
                current.round_id,
                kind=EntryType.GIVEAWAY_REFUND,
                reason=f"Giveaway #{current.id} canceled",
                actor=actor,
            )
            tx.conn.execute(
                "UPDATE giveaways SET state = 'canceled', ended_at = ? WHERE id = ?",
                (tx.now_ms, current.id),
            )
            lost = sum(amount for _, amount in done.lost)
            return Canceled(_reread(tx.conn, current.id), done.paid, len(done.credits), lost)

        return await self._store.write(run)

    # ---- tickets ----------------------------------------------------------------------------

    async def buy(
        self,
        channel: str,
        viewer: Viewer,
        requested: int | Literal["max"],
        *,
        subscriber: bool = False,
        received_at: float | None = None,
    ) -> Purchase:
        """Buy tickets in the channel's open giveaway (committed with the others waiting).

        ``received_at`` (monotonic) is when the chat line arrived: the line-to-commit time
        goes to ``stats``.

        Raises:
            NoGiveaway, GiveawayClosed, NotEligible, NoTicketsLeft, TooManyTickets,
            CannotAfford: nothing changes.
        """
        channel_id = self._bank.channel_id(channel)
        if viewer.login in self._bank.excluded(channel):
            raise NotEligible(viewer.login)
        try:
            return await self._desk.submit(
                _Request(channel_id, viewer, requested, subscriber), received_at
            )
        except rules.GiveawayRefusal:
            self.stats.refused += 1
            raise

    async def close_desk(self) -> None:
        """Finish the purchases being committed (at stop)."""
        await self._desk.close()


def _reread(conn: sqlite3.Connection, giveaway_id: int) -> Giveaway:
    found = by_id(conn, giveaway_id)
    if found is None:
        raise RuntimeError(f"giveaway {giveaway_id} vanished inside a transaction")
    return found


def _require(conn: sqlite3.Connection, channel_id: int) -> Giveaway:
    found = running(conn, channel_id)
    if found is None:
        raise NoGiveaway()
    return found


def _buy_group(tx: Tx, group: Sequence[_Request]) -> list[Purchase | Exception]:
    """Each purchase in its own savepoint of one transaction."""
    open_now: dict[int, Giveaway | None] = {}
    return each_in_savepoint(tx, "ticket", group, lambda r: _buy(tx, r, open_now))


def _buy(tx: Tx, request: _Request, open_now: dict[int, Giveaway | None]) -> Purchase:
    conn = tx.conn
    if request.channel_id not in open_now:  # one look per channel and group
        open_now[request.channel_id] = latest(conn, request.channel_id)
    current = open_now[request.channel_id]
    if current is None or current.state in ("canceled", "ended"):
        raise NoGiveaway()
    if current.state != "open":
        raise GiveawayClosed(current.id, current.state)
    viewer = request.viewer
    terms = current.terms
    held = tickets_held(conn, current, viewer.user_id)
    bought = rules.tickets_to_buy(request.requested, held, terms.max_tickets, terms.ticket_cost)
    price = bought * terms.ticket_cost
    try:
        if price > MAX_POINTS:
            raise InsufficientPoints(_balance(conn, request.channel_id, viewer.user_id), price)
        accepted = escrow.stake(
            tx,
            current.round_id,
            viewer,
            price,
            kind=EntryType.GIVEAWAY_TICKET,
            units=bought,
            reason=f"Giveaway #{current.id}: {bought} ticket{'s' if bought != 1 else ''}",
            actor=viewer.login,
        )
    except InsufficientPoints as exc:
        raise CannotAfford(bought, price, exc.balance) from None
    conn.execute(
        "INSERT INTO giveaway_entries (giveaway_id, user_id, subscriber) VALUES (?, ?, ?)"
        " ON CONFLICT (giveaway_id, user_id) DO UPDATE SET subscriber = 1"
        " WHERE excluded.subscriber = 1 AND subscriber = 0",
        (current.id, viewer.user_id, int(request.subscriber)),
    )
    return Purchase(
        current.id,
        viewer.user_id,
        viewer.login,
        bought,
        accepted.stake.units,
        terms.limit,
        price,
        None if accepted.change is None else accepted.change.balance,
        accepted.round.units,
        accepted.round.entrants,
    )


def _balance(conn: sqlite3.Connection, channel_id: int, user_id: str) -> int:
    row = conn.execute(
        "SELECT points FROM viewers WHERE channel_id = ? AND user_id = ?", (channel_id, user_id)
    ).fetchone()
    return 0 if row is None else int(row[0])


def _draw(
    tx: Tx, *, channel_id: int, n: int, present: frozenset[str] | None, actor: str
) -> Drawn:
    conn = tx.conn
    current = _require(conn, channel_id)
    if current.state not in ("closed", "drawn"):
        raise WrongState(current.id, current.state, "draw")
    rows = draw_entries(conn, current)
    earlier = picks(conn, current.id)
    (seed,) = conn.execute("SELECT seed FROM giveaways WHERE id = ?", (current.id,)).fetchone()
    result = rules.draw(
        seed,
        rows,
        n,
        already_won=[p.user_id for p in earlier if p.outcome == "won"],
        already_skipped=[p.user_id for p in earlier if p.outcome == "skipped"],
        present=present,
    )
    if not result.winners and not result.skipped:
        raise NoEntrants(current.id, len(rows))
    (draw_no,) = conn.execute(
        "SELECT coalesce(max(draw_no), 0) + 1 FROM giveaway_draws WHERE giveaway_id = ?",
        (current.id,),
    ).fetchone()
    conn.execute(
        "INSERT INTO giveaway_draws (giveaway_id, draw_no, requested, present_only, position,"
        " drawn_by, drawn_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (current.id, draw_no, n, int(present is not None), result.position, actor, tx.now_ms),
    )
    won = set(result.winners)
    start = len(earlier)
    for offset, user_id in enumerate(result.picked, start=1):
        conn.execute(
            "INSERT INTO giveaway_picks (giveaway_id, pick, draw_no, user_id, outcome)"
            " VALUES (?, ?, ?, ?, ?)",
            (current.id, start + offset, draw_no, user_id,
             "won" if user_id in won else "skipped"),
        )  # fmt: skip
    spent = current.state == "closed"
    if spent:
        # the tickets are spent: the round ends holding nothing, paying nobody
        escrow.settle(tx, current.round_id, kind=EntryType.GIVEAWAY_TICKET,
                      reason=f"Giveaway #{current.id} drawn", actor=actor)  # fmt: skip
        conn.execute(
            "UPDATE giveaways SET state = 'drawn', drawn_at = ?, position = ? WHERE id = ?",
            (tx.now_ms, result.position, current.id),
        )
    else:
        conn.execute(
            "UPDATE giveaways SET position = ? WHERE id = ?", (result.position, current.id)
        )
    after = _reread(conn, current.id)
    recorded = [p for p in picks(conn, current.id) if p.draw_no == draw_no]
    return Drawn(
        after,
        draw_no,
        tuple(p for p in recorded if p.outcome == "won"),
        tuple(p for p in recorded if p.outcome == "skipped"),
        result.exhausted,
        spent,
    )

