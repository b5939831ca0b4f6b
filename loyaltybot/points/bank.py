"""The bank: the async API chat, earning, rewards, the dashboard and the CLI all use.

It runs ``ledger`` functions through the store's writer, resolves channel logins to ids,
and keeps each channel's standings (ranks, leaderboard) exact by applying every
committed change in commit order. The domain rules live in ``ledger``; this is wiring.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from loyaltybot.db import Store, Tx
from loyaltybot.points import escrow, exchange, history, ledger, viewers
from loyaltybot.points.amounts import MAX_POINTS
from loyaltybot.points.errors import BalanceTooHigh, UnknownChannel, UnknownViewer
from loyaltybot.points.first_sight import FirstSight, ViewersSeen
from loyaltybot.points.known import KnownLogins, LoginBatch
from loyaltybot.points.ledger import (
    NO_IDS,
    BalanceChange,
    Discrepancy,
    EntryType,
    Presence,
    TickApplied,
    TickPlan,
    Transfer,
)
from loyaltybot.points.standings import Ids, Located, Standing, Standings
from loyaltybot.points.viewers import Viewer, ViewerRecord


@dataclass(frozen=True, slots=True)
class _StandingsBuilt:
    """Commit effect: a fresh copy of one channel's standings, as of this transaction."""

    channel_id: int
    standings: Standings


class Bank:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._channels: dict[str, int] = {}
        self._standings: dict[int, Standings] = {}
        self._stale: set[int] = set()
        self._building: dict[int, asyncio.Future[Standings]] = {}
        self._excluded: dict[int, frozenset[str]] = {}
        self._known: dict[int, KnownLogins] = {}
        self.first_sight = FirstSight(store, self.channel_id, self._known.get, self.excluded)
        store.on_commit(self._on_commit)

    # ---- channels -------------------------------------------------------------------

    async def ensure_channels(self, logins: Iterable[str]) -> dict[str, int]:
        """Create the channels' rows if missing; remember every channel's id."""
        wanted = sorted(set(logins))

        def run(tx: Tx) -> dict[str, int]:
            for login in wanted:
                tx.conn.execute(
                    "INSERT INTO channels (login, created_at) VALUES (?, ?)"
                    " ON CONFLICT (login) DO NOTHING",
                    (login, tx.now_ms),
                )
            return dict(tx.conn.execute("SELECT login, id FROM channels").fetchall())

        self._channels = await self.store.write(run)
        return dict(self._channels)

    async def load_channels(self) -> dict[str, int]:
        rows = await self.store.read(
            lambda c: c.execute("SELECT login, id FROM channels").fetchall()
        )
        self._channels = dict(rows)
        return dict(self._channels)

    def channel_id(self, channel: str) -> int:
        try:
            return self._channels[channel]
        except KeyError:
            raise UnknownChannel(channel) from None

    def set_excluded(self, channel: str, logins: Iterable[str]) -> None:
        """Logins that never earn and stay off the leaderboard (ignored users, broadcaster, bot)."""
        channel_id = self.channel_id(channel)
        excluded = frozenset(logins)
        if self._excluded.get(channel_id) != excluded:
            self._excluded[channel_id] = excluded
            self._stale.add(channel_id)

    def excluded(self, channel: str) -> frozenset[str]:
        return self._excluded.get(self.channel_id(channel), frozenset())

    # ---- lookups --------------------------------------------------------------------

    async def viewer(self, channel: str, login: str) -> ViewerRecord | None:
        """The viewer a login names now, including one first seen a moment ago."""
        channel_id = self.channel_id(channel)
        await self.first_sight.settle()
        return await self.store.read(lambda c: viewers.by_login(c, channel_id, login))

    async def viewer_by_id(self, channel: str, user_id: str) -> ViewerRecord | None:
        channel_id = self.channel_id(channel)
        await self.first_sight.settle()
        return await self.store.read(lambda c: viewers.by_user_id(c, channel_id, user_id))

    # ---- pages (the dashboard's reads) ------------------------------------------------

    async def viewer_page(
        self, channel: str, *, sort: str, prefix: str | None, cursor: str | None
    ) -> history.ViewerPage:
        """A page of the channel's viewers (a viewer first seen a moment ago included)."""
        channel_id = self.channel_id(channel)
        await self.first_sight.settle()
        return await self.store.read(
            lambda c: history.list_viewers(c, channel_id, sort=sort, prefix=prefix, cursor=cursor)
        )

    async def ledger_page(
        self,
        channel: str,
        filters: history.LedgerFilter = history.LedgerFilter(),  # noqa: B008 (frozen)
        *,
        before_id: int | None = None,
        limit: int = history.PAGE_SIZE,
    ) -> tuple[list[history.LedgerRow], int | None]:
        """A page of the channel's ledger, newest first; and where the next one starts."""
        channel_id = self.channel_id(channel)
        return await self.store.read(
            lambda c: history.ledger_page(c, channel_id, filters, before_id=before_id, limit=limit)
        )

    async def login_history(self, user_id: str) -> list[tuple[str, int]]:
        """The logins a viewer had before, with when each was replaced."""
        return await self.store.read(lambda c: history.login_history(c, user_id))

    async def display_names(self, channel: str, user_ids: Sequence[str]) -> dict[str, str]:
        channel_id = self.channel_id(channel)
        return await self.store.read(lambda c: history.display_names(c, channel_id, user_ids))

    async def channel_counts(self, channel: str) -> tuple[int, int]:
        """(viewers, points held by all of them)."""
        channel_id = self.channel_id(channel)
        return await self.store.read(lambda c: history.channel_counts(c, channel_id))

    # ---- balance changes ------------------------------------------------------------

    async def credit(
        self,
        channel: str,
        viewer: Viewer,
        amount: int,
        *,
        kind: EntryType,
        reason: str | None = None,
        actor: str | None = None,
        ref: str | None = None,
    ) -> BalanceChange:
        channel_id = self.channel_id(channel)
        return await self.store.write(
            lambda tx: ledger.credit(
                tx, channel_id, viewer, amount, kind=kind, reason=reason, actor=actor, ref=ref
            )
        )

    async def debit(
        self,
        channel: str,
        viewer: Viewer,
        amount: int,
        *,
        kind: EntryType,
        reason: str | None = None,
        actor: str | None = None,
        ref: str | None = None,
    ) -> BalanceChange:
        channel_id = self.channel_id(channel)
        return await self.store.write(
            lambda tx: ledger.debit(
                tx, channel_id, viewer, amount, kind=kind, reason=reason, actor=actor, ref=ref
            )
        )

    async def credit_each(
        self,
        channel: str,
        viewers_: Sequence[Viewer],
        amount: int,
        *,
        kind: EntryType,
        reason: str | None = None,
        actor: str | None = None,
    ) -> tuple[int, int]:
        """Credit each viewer ``amount`` in one transaction; those already at the maximum
        are skipped. Returns (credited, at maximum)."""
        channel_id = self.channel_id(channel)

        def run(tx: Tx) -> tuple[int, int]:
            credited = full = 0
            for viewer in viewers_:
                try:
                    ledger.credit(
                        tx, channel_id, viewer, amount, kind=kind, reason=reason, actor=actor
                    )
                except BalanceTooHigh:
                    full += 1
                else:
                    credited += 1
            return credited, full

        return await self.store.write(run)

    async def set_balance(
        self,
        channel: str,
        viewer: Viewer,
        value: int,
        *,
        reason: str | None = None,
        actor: str | None = None,
    ) -> BalanceChange:
        channel_id = self.channel_id(channel)
        return await self.store.write(
            lambda tx: ledger.set_balance(tx, channel_id, viewer, value, reason=reason, actor=actor)
        )

    async def give(
        self, channel: str, sender: Viewer, receiver_login: str, amount: int
    ) -> Transfer:
        """``!give``: the receiver is looked up by exact login in the same transaction.

        Raises:
            UnknownViewer, SelfTransfer, InsufficientPoints, BalanceTooHigh, InvalidAmount.
        """
        channel_id = self.channel_id(channel)
        await self.first_sight.settle()

        def run(tx: Tx) -> Transfer:
            receiver = ledger.find_viewer(tx.conn, channel_id, receiver_login, channel)
            return ledger.transfer(tx, channel_id, sender, receiver, amount)

        return await self.store.write(run)

    async def transfer(
        self, channel: str, sender: Viewer, receiver: Viewer, amount: int
    ) -> Transfer:
        channel_id = self.channel_id(channel)
        try:
            return await self.store.write(
                lambda tx: ledger.transfer(tx, channel_id, sender, receiver, amount)
            )
        except UnknownViewer as exc:
            raise UnknownViewer(exc.login, channel) from None

    # ---- escrow: rounds and stakes (see points/escrow.py for the rules) -----------------

    async def open_round(
        self, channel: str, kind: str, *, deadline_ms: int | None = None
    ) -> escrow.Round:
        """A new open round of ``kind`` (the owning feature) in the channel."""
        channel_id = self.channel_id(channel)
        return await self.store.write(
            lambda tx: escrow.open_round(tx, channel_id, kind, deadline_ms=deadline_ms)
        )

    async def stake(
        self,
        round_id: int,
        viewer: Viewer,
        amount: int,
        *,
        kind: EntryType,
        units: int = 0,
        option: int | None = None,
        reason: str | None = None,
        actor: str | None = None,
    ) -> escrow.StakeAccepted:
        """Take ``amount`` points (and ``units``) from the viewer into the open round.

        Raises:
            UnknownRound, RoundNotOpen, InsufficientPoints, StakeOptionMismatch,
            InvalidAmount: nothing changes.
        """
        return await self.store.write(
            lambda tx: escrow.stake(
                tx,
                round_id,
                viewer,
                amount,
                kind=kind,
                units=units,
                option=option,
                reason=reason,
                actor=actor,
            )
        )

    async def settle_round(
        self,
        round_id: int,
        payouts: Mapping[str, int] | Sequence[tuple[str, int]] = (),
        *,
        kind: EntryType,
        reason: str | None = None,
        actor: str | None = None,
    ) -> escrow.Settlement:
        """End the round, paying each staker in ``payouts`` (user id -> points).

        Raises:
            UnknownRound, RoundNotOpen: nothing changes; ValueError: a payout to a stranger.
        """
        return await self.store.write(
            lambda tx: escrow.settle(tx, round_id, payouts, kind=kind, reason=reason, actor=actor)
        )

    async def refund_round(
        self,
        round_id: int,
        *,
        kind: EntryType,
        reason: str | None = None,
        actor: str | None = None,
    ) -> escrow.Settlement:
        """End the round, every stake given back.

        Raises:
            UnknownRound, RoundNotOpen: nothing changes.
        """
        return await self.store.write(
            lambda tx: escrow.refund(tx, round_id, kind=kind, reason=reason, actor=actor)
        )

    async def set_round_deadline(self, round_id: int, deadline_ms: int | None) -> escrow.Round:
        return await self.store.write(lambda tx: escrow.set_deadline(tx, round_id, deadline_ms))

    async def round(self, round_id: int) -> escrow.Round | None:
        return await self.store.read(lambda c: escrow.get(c, round_id))

    async def stakes(self, round_id: int) -> list[escrow.Stake]:
        """Every stake of the round, in the order viewers first staked."""
        return await self.store.read(lambda c: escrow.stakes(c, round_id))

    async def open_rounds(
        self, channel: str | None = None, kind: str | None = None
    ) -> list[escrow.Round]:
        channel_id = None if channel is None else self.channel_id(channel)
        return await self.store.read(
            lambda c: escrow.open_rounds(c, channel_id=channel_id, kind=kind)
        )

    async def due_rounds(self, now_ms: int, kind: str | None = None) -> list[escrow.Round]:
        """Open rounds whose deadline is at or before ``now_ms`` (the feature settles them)."""
        return await self.store.read(lambda c: escrow.due(c, now_ms, kind=kind))

    async def escrow_totals(self, channel: str | None = None) -> tuple[int, int]:
        """(open rounds, points they hold)."""
        channel_id = None if channel is None else self.channel_id(channel)
        return await self.store.read(lambda c: escrow.totals(c, channel_id))

    # ---- earning --------------------------------------------------------------------

    async def load_known_logins(self, channel: str) -> KnownLogins:
        """user id -> stored login of every viewer: the earning tick's fast-path hint, in
        columns (33 bytes a viewer, read and sorted on the database's thread)."""
        channel_id = self.channel_id(channel)

        def read(conn: sqlite3.Connection) -> LoginBatch:
            return LoginBatch(
                conn.execute("SELECT user_id, login FROM viewers WHERE channel_id = ?",
                             (channel_id,))
            )

        self._known[channel_id] = KnownLogins(await self.store.read(read))
        return self._known[channel_id]

    def known_logins(self, channel: str) -> KnownLogins:
        return self._known.setdefault(self.channel_id(channel), KnownLogins())

    async def credit_tick(self, plan: TickPlan) -> TickApplied:
        """Credit one earning interval. When the daemon keeps the channel's ranks, the
        tick reports who got what and the ranks follow it in commit order (no rebuild).

        Raises:
            AlreadyApplied: this tick was credited before.
        """
        channel_id = plan.channel_id
        standings = self._standings.get(channel_id)
        if standings is not None and channel_id not in self._stale:
            rates = plan.rates
            most = max(rates.points, rates.subscriber_points) + rates.active_bonus
            plan = replace(plan, report=True, locate=standings.locate,
                           near_max=standings.max_points() > MAX_POINTS - most)
        return await self.store.write(lambda tx: ledger.credit_tick(tx, plan))

    async def last_tick(self, channel: str) -> tuple[int, int] | None:
        """(seq, credited_at ms) of the channel's last credited tick."""
        channel_id = self.channel_id(channel)
        return await self.store.read(lambda c: ledger.last_tick(c, channel_id))

    async def subscriber_ids(self, channel: str) -> list[str]:
        """Viewers last seen subscribed (until Twitch's list says otherwise)."""
        channel_id = self.channel_id(channel)
        return await self.store.read(lambda c: viewers.subscriber_ids(c, channel_id))

    async def record_activity(
        self, channel: str, present: Sequence[Presence], watch_seconds: int,
        *, listed: Ids = NO_IDS,
    ) -> None:
        """Watch time and message counts without points (offline, or at stop); ``listed``:
        known viewers by id (``TickPlan.listed``)."""
        channel_id = self.channel_id(channel)
        await self.store.write(
            lambda tx: ledger.record_activity(tx, channel_id, present, watch_seconds, listed)
        )

    # ---- standings ------------------------------------------------------------------

    async def rank(self, channel: str, user_id: str) -> int | None:
        return (await self._current_standings(self.channel_id(channel))).rank(user_id)

    async def top(self, channel: str, limit: int, offset: int = 0) -> list[Standing]:
        """One page of the leaderboard, each entry named by its current login."""
        channel_id = self.channel_id(channel)
        entries = (await self._current_standings(channel_id)).top_entries(limit, offset)
        logins = await self._logins(channel_id, [user_id for _, user_id, _ in entries])
        return [
            Standing(rank, user_id, logins.get(user_id, user_id), points)
            for rank, user_id, points in entries
        ]

    async def _logins(self, channel_id: int, user_ids: Sequence[str]) -> dict[str, str]:
        """Logins of a leaderboard page: from memory when the bank knows them, else read."""
        known = self._known.get(channel_id)
        found = {} if known is None else {
            u: lg for u in user_ids if (lg := known.get(u)) is not None
        }
        missing = [u for u in user_ids if u not in found]
        if missing:
            found.update(await self.store.read(lambda c: viewers.logins_of(c, channel_id, missing)))
        return found

    async def ranked_count(self, channel: str) -> int:
        return len(await self._current_standings(self.channel_id(channel)))

    async def _current_standings(self, channel_id: int) -> Standings:
        standings = self._standings.get(channel_id)
        if standings is not None and channel_id not in self._stale:
            return standings
        building = self._building.get(channel_id)
        if building is None:
            building = asyncio.ensure_future(self._rebuild(channel_id))
            self._building[channel_id] = building
            building.add_done_callback(lambda _: self._building.pop(channel_id, None))
        return await asyncio.shield(building)

    async def _rebuild(self, channel_id: int) -> Standings:
        def run(tx: Tx) -> Standings:
            return self._build_into(tx, channel_id)

        return await self.store.write(run)

    def _build_into(self, tx: Tx, channel_id: int) -> Standings:
        """Build inside a write transaction so no committed change can fall between the
        copy and its installation (the effect is applied in commit order)."""
        standings = Standings(
            ledger.standings_rows(tx.conn, channel_id),
            self._excluded.get(channel_id, frozenset()),
        )
        tx.effects.append(_StandingsBuilt(channel_id, standings))
        return standings

    def _on_commit(self, effects: Sequence[object], external: bool) -> None:
        if external:  # another process wrote: what we hold may be out of date
            self._stale.update(self._standings)
        for effect in effects:
            if isinstance(effect, BalanceChange):
                standings = self._standings.get(effect.channel_id)
                if standings is not None:
                    standings.update(effect.user_id, effect.login, effect.balance)
                known = self._known.get(effect.channel_id)
                if known is not None:
                    known[effect.user_id] = effect.login
            elif isinstance(effect, TickApplied):
                known = self._known.get(effect.channel_id)
                if known is not None:
                    known.add_batch(effect.new_logins)
                self._follow_tick(effect)
            elif isinstance(effect, ViewersSeen):
                known = self._known.get(effect.channel_id)
                if known is not None:
                    known.update(effect.logins)
            elif isinstance(effect, _StandingsBuilt):
                self._standings[effect.channel_id] = effect.standings
                self._stale.discard(effect.channel_id)

    def _follow_tick(self, tick: TickApplied) -> None:
        """Apply a committed tick to the channel's ranks: the groups that each got the same
        amount in one vectorised step, the rest one by one. A tick that did not report
        (planned before the ranks existed) makes them stale: rebuilt when next asked."""
        standings = self._standings.get(tick.channel_id)
        if standings is None or tick.seq == 0:
            return
        if tick.balances is None:
            self._stale.add(tick.channel_id)
            return
        for user_ids, amount, where in tick.credited:
            standings.add_all(user_ids, amount, where if isinstance(where, Located) else None)
        logins = tick.new_logins
        for user_id, balance in tick.balances.items():
            standings.update(user_id, logins.get(user_id) or "", balance)

    # ---- import and export ------------------------------------------------------------

    async def export(self, channel: str) -> list[exchange.Row]:
        """Every viewer of the channel, as ``loyaltybot export`` writes them."""
        channel_id = self.channel_id(channel)
        return await self.store.read(lambda c: exchange.export_rows(c, channel_id))

    async def import_rows(
        self,
        channel: str,
        rows: Sequence[exchange.ImportRow],
        key: str,
        *,
        source: str,
        dry_run: bool = False,
    ) -> exchange.ImportReport:
        """Import balances in one transaction (or only count them, with ``dry_run``); rows
        imported under ``key`` before are left alone.

        Raises:
            ImportFileError: a row cannot be applied (its balance is at the maximum).
        """
        channel_id = self.channel_id(channel)
        if dry_run:
            return await self.store.read(
                lambda c: exchange.apply(c, channel_id, rows, key, dry_run=True)
            )
        return await self.store.write(
            lambda tx: exchange.apply(tx, channel_id, rows, key, source=source)
        )

    # ---- audit ----------------------------------------------------------------------

    async def counts(self, channel: str | None = None) -> tuple[int, int]:
        """(viewers, channels) the audit covers."""
        channel_id = None if channel is None else self.channel_id(channel)
        return await self.store.read(lambda c: ledger.counts(c, channel_id))


    async def audit(self, channel: str | None = None) -> list[Discrepancy]:
        channel_id = None if channel is None else self.channel_id(channel)

        def run(conn: sqlite3.Connection) -> list[Discrepancy]:
            return ledger.audit(conn, channel_id)

        return await self.store.read(run)
