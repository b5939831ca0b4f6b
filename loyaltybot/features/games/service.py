"""Games' transactions (SPEC §10.4): gamble, slots, duel and heist, and the settings the
dashboard owns. The feature's SQL lives here and nowhere else.

- **gamble, slots**: one transaction takes the wager's decision from the balance it reads
  (``all``, ``half``, ``N%`` are of that balance), rolls (``secrets``), writes one ledger
  row for the net change (``game_win`` or ``game_loss``; none when a pair gives the bet
  back) and records the round and its roll.
- **duel**: the challenge holds the challenger's stake in an escrow round whose deadline is
  ``duel_accept_seconds`` away (``duel_stake``); ``!accept`` holds the target's stake, flips
  the coin and pays both stakes to the winner (``duel_payout``) in one transaction;
  ``!deny``, a withdrawal or the deadline refunds (``duel_refund``). A viewer is in at most
  one open duel, as challenger or target, checked in the transaction that opens one.
- **heist**: the first ``!heist`` opens a lobby (an escrow round with a deadline
  ``heist_join_seconds`` away), the next ones join it (``heist_stake``). At the deadline one
  transaction runs it: fewer than ``heist_min_players`` and every bet comes back
  (``heist_refund``: it never runs short of its crew), else each player rolls, survivors
  are paid ``floor(bet * heist_payout_multiplier)`` (``heist_payout``) and the caught lose
  their bet. A heist that ran starts the channel's ``heist_cooldown_seconds``.

Every roll is recorded in ``game_rolls`` with its round, and each round keeps the rules it
was played with, so the games page can show what happened and check it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import structlog

from loyaltybot.clock import Clock, to_ms
from loyaltybot.config import GamesConfig
from loyaltybot.db import Store, Tx
from loyaltybot.features.games import rules
from loyaltybot.features.games.rules import (
    CannotAfford,
    Game,
    GameSettings,
    HeistCooldown,
    HeistStarting,
    InDuel,
    InHeist,
    NoDuel,
    NotEligible,
    SelfDuel,
)
from loyaltybot.points import escrow, ledger, viewers
from loyaltybot.points.bank import Bank
from loyaltybot.points.errors import BalanceTooHigh, InsufficientPoints, UnknownViewer
from loyaltybot.points.ledger import EntryType
from loyaltybot.points.viewers import Viewer

log = structlog.get_logger(__name__)

DAY_MS = 86_400_000
DUEL = "duel"  # escrow rounds' kinds
HEIST = "heist"
RECENT = 50


# ---- results ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Played:
    """A gamble or a spin, settled."""

    game: Game
    round_id: int
    bet: int
    roll: str  # "73" or "Kappa Kappa LUL"
    outcome: Literal["win", "loss", "even"]
    returned: int  # what came back of the bet (applied)
    balance: int  # after
    detail: rules.GambleOutcome | rules.SlotsOutcome

    @property
    def delta(self) -> int:
        return self.returned - self.bet


@dataclass(frozen=True, slots=True)
class Challenge:
    round_id: int
    challenger: str  # logins
    target: str
    stake: int
    deadline_ms: int
    balance: int  # the challenger's, after


@dataclass(frozen=True, slots=True)
class DuelResult:
    round_id: int
    challenger: str
    target: str
    stake: int
    flip: rules.Side
    winner: str
    loser: str
    winner_balance: int


@dataclass(frozen=True, slots=True)
class DuelEnded:
    """A duel that never took place: denied, withdrawn or expired; its stake refunded."""

    round_id: int
    channel_id: int
    challenger: str
    target: str
    stake: int
    why: Literal["denied", "withdrawn", "expired"]


@dataclass(frozen=True, slots=True)
class Joined:
    round_id: int
    login: str
    bet: int
    balance: int
    opened: bool  # this bet opened the heist
    players: int
    pot: int  # points the crew has in it
    deadline_ms: int


@dataclass(frozen=True, slots=True)
class Haul:
    login: str
    bet: int
    returned: int
    roll: int | None


@dataclass(frozen=True, slots=True)
class HeistResult:
    round_id: int
    channel_id: int
    ran: bool  # False: short of players, every bet refunded
    players: int
    min_players: int
    success_percent: int
    survivors: tuple[Haul, ...]  # largest hauls first
    caught: int
    total_bet: int
    paid: int  # points credited (payouts or refunds)
    lost: int  # the caught players' bets


@dataclass(frozen=True, slots=True)
class RoundRow:
    id: int
    game: Game
    state: str
    login: str
    target: str | None
    bet: int
    returned: int
    players: int
    outcome: str | None
    created_at: int
    settled_at: int | None
    rolls: tuple[str, ...]  # up to a few rolls (a heist's first ones)


@dataclass(frozen=True, slots=True)
class Edge:
    """A game's house edge: by its settings, and as its rounds realised it."""

    game: Game
    enabled: bool
    configured: float  # share of each bet the house keeps, by the settings
    rounds: int
    bet: int
    returned: int

    @property
    def realised(self) -> float | None:
        return None if not self.bet else 1 - self.returned / self.bet


# ---- settings: the file's keys over the dashboard's ---------------------------------------


def stored_settings(conn: sqlite3.Connection, channel_id: int) -> dict[str, Any]:
    """The games settings the dashboard saved for the channel (key -> value)."""
    return {
        key: json.loads(value)
        for key, value in conn.execute(
            "SELECT key, value FROM game_settings WHERE channel_id = ?", (channel_id,)
        )
        if key in rules.SETTING_KEYS
    }


def merge(stored: Mapping[str, Any], file: GamesConfig | None) -> GameSettings:
    """The settings in force: the file's keys over the dashboard's over the defaults. A
    combination that no longer validates (a stored minimum above the file's new maximum)
    falls back to the file's keys alone, and is logged."""
    written = {} if file is None else {k: getattr(file, k) for k in file.model_fields_set}
    try:
        return rules.settings_from({**stored, **written})
    except ValueError as exc:
        log.warning("game_settings_fallback", problem=str(exc))
        return file if file is not None else GamesConfig()


def save_settings(tx: Tx, channel_id: int, changes: Mapping[str, Any], actor: str) -> None:
    for key, value in changes.items():
        tx.conn.execute(
            "INSERT INTO game_settings (channel_id, key, value, updated_at, updated_by)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (channel_id, key) DO UPDATE SET"
            " value = excluded.value, updated_at = excluded.updated_at,"
            " updated_by = excluded.updated_by",
            (channel_id, key, json.dumps(list(value) if isinstance(value, tuple) else value),
             tx.now_ms, actor),
        )  # fmt: skip


def _rules_of(settings: GameSettings, game: Game) -> str:
    """The settings a round of ``game`` is decided by, as recorded with it."""
    keys = {
        "gamble": ("gamble_win_at",),
        "slots": ("slots_symbols", "slots_pair_multiplier", "slots_triple_multiplier"),
        "duel": ("duel_accept_seconds",),
        "heist": ("heist_min_players", "heist_success_percent", "heist_payout_multiplier"),
    }[game]
    return json.dumps({k: getattr(settings, k) for k in keys})


# ---- gamble and slots ------------------------------------------------------------------------


def _balance(conn: sqlite3.Connection, channel_id: int, user_id: str) -> int:
    row = conn.execute(
        "SELECT points FROM viewers WHERE channel_id = ? AND user_id = ?", (channel_id, user_id)
    ).fetchone()
    return 0 if row is None else int(row[0])


def _wager(conn: sqlite3.Connection, channel_id: int, viewer: Viewer, text: str,
           settings: GameSettings) -> tuple[int, int]:  # fmt: skip
    """(wager, balance): the typed wager of the balance read now, within the limits.

    Raises:
        InvalidAmount, BadPercent, NothingToWager, WagerTooSmall, WagerTooLarge, CannotAfford.
    """
    balance = _balance(conn, channel_id, viewer.user_id)
    amount = rules.check_bet(rules.parse_wager(text, balance), settings.min_bet,
                             settings.max_bet)  # fmt: skip
    if amount > balance:
        raise CannotAfford(amount, balance)
    return amount, balance


def _net(tx: Tx, channel_id: int, viewer: Viewer, delta: int, game: Game, round_id: int
         ) -> tuple[int, int]:  # fmt: skip
    """Apply a game's net change as one ledger row; (applied change, balance after)."""
    reason = f"{game} #{round_id}"
    if delta > 0:
        try:
            change = ledger.credit(tx, channel_id, viewer, delta, kind=EntryType.GAME_WIN,
                                   reason=reason, actor=viewer.login)  # fmt: skip
        except BalanceTooHigh as exc:  # at the maximum already: nothing more fits
            return 0, exc.balance
        return change.applied, change.balance
    if delta < 0:
        change = ledger.debit(tx, channel_id, viewer, -delta, kind=EntryType.GAME_LOSS,
                              reason=reason, actor=viewer.login)  # fmt: skip
        return change.applied, change.balance
    return 0, _balance(tx.conn, channel_id, viewer.user_id)


def _insert_round(tx: Tx, channel_id: int, game: Game, user_id: str, *, settings: GameSettings,
                  state: str, bet: int = 0, round_id: int | None = None,
                  target_id: str | None = None, players: int = 1) -> int:  # fmt: skip
    cursor = tx.conn.execute(
        "INSERT INTO game_rounds (channel_id, game, round_id, state, user_id, target_id, bet,"
        " players, rules, created_at, settled_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (channel_id, game, round_id, state, user_id, target_id, bet, players,
         _rules_of(settings, game), tx.now_ms, None if state == "open" else tx.now_ms),
    )  # fmt: skip
    return int(cursor.lastrowid or 0)


def _finish_round(
    tx: Tx, game_round_id: int, *, state: str, bet: int, returned: int, won: int, lost: int,
    outcome: str, players: int | None = None,
) -> None:  # fmt: skip
    conn = tx.conn
    conn.execute(
        "UPDATE game_rounds SET state = ?, bet = ?, returned = ?, won = ?, lost = ?,"
        " outcome = ?, players = coalesce(?, players), settled_at = ? WHERE id = ?",
        (state, bet, returned, won, lost, outcome, players, tx.now_ms, game_round_id),
    )
    if state == "settled":  # played out: it counts toward the house edge realised
        conn.execute(
            "INSERT INTO game_daily (channel_id, day, game, rounds, bet, returned)"
            " SELECT channel_id, ? / ?, game, 1, ?, ? FROM game_rounds WHERE id = ?"
            " ON CONFLICT (channel_id, day, game) DO UPDATE SET rounds = rounds + 1,"
            " bet = bet + excluded.bet, returned = returned + excluded.returned",
            (tx.now_ms, DAY_MS, bet, returned, game_round_id),
        )


def play(tx: Tx, channel_id: int, viewer: Viewer, game: Literal["gamble", "slots"],
         text: str, settings: GameSettings) -> Played:  # fmt: skip
    """Play one gamble or spin: wager, roll, the net change and the record, together.

    Raises:
        InvalidAmount, BadPercent, NothingToWager, WagerTooSmall, WagerTooLarge,
        CannotAfford: nothing changes.
    """
    conn = tx.conn
    viewers.upsert(conn, channel_id, viewer, tx.now_ms)
    amount, _ = _wager(conn, channel_id, viewer, text, settings)
    detail: rules.GambleOutcome | rules.SlotsOutcome
    if game == "gamble":
        detail = rules.gamble(amount, rules.roll_d100(), settings.gamble_win_at)
        roll = str(detail.roll)
    else:
        detail = rules.slots(amount, rules.spin(settings.slots_symbols),
                             settings.slots_pair_multiplier, settings.slots_triple_multiplier)
        roll = " ".join(detail.symbols)
    round_no = _insert_round(tx, channel_id, game, viewer.user_id, settings=settings,
                             state="settled", bet=amount)  # fmt: skip
    applied, balance = _net(tx, channel_id, viewer, detail.delta, game, round_no)
    returned = amount + applied
    outcome: Literal["win", "loss", "even"] = (
        "win" if applied > 0 else "loss" if applied < 0 else "even"
    )
    _finish_round(tx, round_no, state="settled", bet=amount, returned=returned,
                  won=max(applied, 0), lost=max(-applied, 0),
                  outcome=f"{viewer.login} bet {amount}, {roll}: {outcome} {applied:+d}")
    conn.execute(
        "INSERT INTO game_rolls (game_round_id, seq, user_id, bet, roll, returned)"
        " VALUES (?, 1, ?, ?, ?, ?)",
        (round_no, viewer.user_id, amount, roll, returned),
    )
    return Played(game, round_no, amount, roll, outcome, returned, balance, detail)


# ---- duels -----------------------------------------------------------------------------------

_OPEN_DUEL = """
SELECT g.id, g.round_id, g.user_id, g.target_id, r.staked, r.deadline
FROM game_rounds AS g JOIN escrow_rounds AS r ON r.id = g.round_id
WHERE g.channel_id = ? AND g.game = 'duel' AND g.state = 'open'
  AND (g.user_id = ? OR g.target_id = ?)
"""


def _open_duel(conn: sqlite3.Connection, channel_id: int, user_id: str
               ) -> tuple[int, int, str, str, int, int] | None:  # fmt: skip
    row = conn.execute(_OPEN_DUEL, (channel_id, user_id, user_id)).fetchone()
    return None if row is None else tuple(row)


def _login(conn: sqlite3.Connection, channel_id: int, user_id: str) -> str:
    row = conn.execute(
        "SELECT login FROM viewers WHERE channel_id = ? AND user_id = ?", (channel_id, user_id)
    ).fetchone()
    return user_id if row is None else str(row[0])


def _identity(conn: sqlite3.Connection, channel_id: int, user_id: str) -> Viewer:
    row = conn.execute(
        "SELECT login, display_name FROM viewers WHERE channel_id = ? AND user_id = ?",
        (channel_id, user_id),
    ).fetchone()
    return Viewer(user_id, str(row[0]), str(row[1]))


def challenge(
    tx: Tx, channel_id: int, channel: str, challenger: Viewer, target_login: str, text: str,
    settings: GameSettings, excluded: frozenset[str],
) -> Challenge:  # fmt: skip
    """Hold the challenger's stake until the target answers or the time runs out.

    Raises:
        UnknownViewer, SelfDuel, NotEligible, InDuel, and the wager's refusals.
    """
    conn = tx.conn
    login = viewers.normalize_login(target_login) or target_login
    if login == challenger.login:
        raise SelfDuel()
    if login in excluded:
        raise NotEligible(login)
    target = ledger.find_viewer(conn, channel_id, login, channel)
    if target.user_id == challenger.user_id:
        raise SelfDuel()
    if target.login in excluded:
        raise NotEligible(target.login)
    viewers.upsert(conn, channel_id, challenger, tx.now_ms)
    for who, yourself in ((challenger, True), (target, False)):
        if _open_duel(conn, channel_id, who.user_id) is not None:
            raise InDuel(who.login, yourself)
    amount, _ = _wager(conn, channel_id, challenger, text, settings)
    deadline = tx.now_ms + round(settings.duel_accept_seconds * 1000)
    round_ = escrow.open_round(tx, channel_id, DUEL, deadline_ms=deadline)
    number = _insert_round(tx, channel_id, "duel", challenger.user_id, settings=settings,
                           state="open", bet=amount, round_id=round_.id,
                           target_id=target.user_id, players=2)  # fmt: skip
    accepted = escrow.stake(tx, round_.id, challenger, amount, kind=EntryType.DUEL_STAKE,
                            reason=f"duel #{number} with {target.login}",
                            actor=challenger.login)  # fmt: skip
    balance = accepted.change.balance if accepted.change is not None else 0
    return Challenge(number, challenger.login, target.login, amount, deadline, balance)


def accept(tx: Tx, channel_id: int, target: Viewer) -> DuelResult:
    """The target takes the challenge: their stake is held, the coin flips, the winner
    takes both stakes, all in this transaction.

    Raises:
        NoDuel (none open for them, or its time ran out), CannotAfford: nothing changes.
    """
    conn = tx.conn
    found = _open_duel(conn, channel_id, target.user_id)
    if found is None or found[3] != target.user_id or found[5] <= tx.now_ms:
        raise NoDuel()
    number, round_id, challenger_id, _, stake, _ = found
    try:
        escrow.stake(tx, round_id, target, stake, kind=EntryType.DUEL_STAKE,
                     reason=f"duel #{number}", actor=target.login)  # fmt: skip
    except InsufficientPoints as exc:
        raise CannotAfford(stake, exc.balance) from None
    flip = rules.coin_flip()
    outcome = rules.duel(stake, flip)
    winner_id = challenger_id if outcome.winner == "challenger" else target.user_id
    challenger_login = _login(conn, channel_id, challenger_id)
    winner = challenger_login if winner_id == challenger_id else target.login
    loser = target.login if winner_id == challenger_id else challenger_login
    done = escrow.settle(tx, round_id, {winner_id: outcome.pot}, kind=EntryType.DUEL_PAYOUT,
                         reason=f"duel #{number} won", actor=target.login)  # fmt: skip
    paid = done.paid
    _finish_round(tx, number, state="settled", bet=2 * stake, returned=paid, won=paid - stake,
                  lost=stake, outcome=f"{winner} beat {loser} for {stake}")  # fmt: skip
    conn.execute(
        "INSERT INTO game_rolls (game_round_id, seq, user_id, bet, roll, returned)"
        " VALUES (?, 1, ?, ?, ?, ?)",
        (number, winner_id, 2 * stake, flip, paid),
    )
    balance = done.credits[0].balance if done.credits else _balance(conn, channel_id, winner_id)
    return DuelResult(number, challenger_login, target.login, stake, flip, winner, loser, balance)


def _refund_duel(tx: Tx, found: tuple[int, int, str, str, int, int], channel_id: int,
                 why: Literal["denied", "withdrawn", "expired"], actor: str | None
                 ) -> DuelEnded:  # fmt: skip
    number, round_id, challenger_id, target_id, stake, _ = found
    done = escrow.refund(tx, round_id, kind=EntryType.DUEL_REFUND,
                         reason=f"duel #{number} {why}", actor=actor)  # fmt: skip
    _finish_round(tx, number, state="refunded", bet=stake, returned=done.paid, won=0, lost=0,
                  outcome=f"{why}")  # fmt: skip
    return DuelEnded(number, channel_id, _login(tx.conn, channel_id, challenger_id),
                     _login(tx.conn, channel_id, target_id), stake, why)  # fmt: skip


def deny(tx: Tx, channel_id: int, viewer: Viewer) -> DuelEnded:
    """The target says no, or the challenger takes the challenge back: refunded.

    Raises:
        NoDuel: nothing changes.
    """
    found = _open_duel(tx.conn, channel_id, viewer.user_id)
    if found is None:
        raise NoDuel()
    why: Literal["denied", "withdrawn"] = "denied" if found[3] == viewer.user_id else "withdrawn"
    return _refund_duel(tx, found, channel_id, why, viewer.login)


def expire_duel(tx: Tx, round_id: int) -> DuelEnded | None:
    """The target did not answer in time: refunded (the timer; the start-up)."""
    row = tx.conn.execute(
        "SELECT g.id, g.round_id, g.user_id, g.target_id, r.staked, r.deadline, g.channel_id"
        " FROM game_rounds AS g JOIN escrow_rounds AS r ON r.id = g.round_id"
        " WHERE g.round_id = ? AND g.state = 'open'",
        (round_id,),
    ).fetchone()
    if row is None:
        return None
    return _refund_duel(tx, tuple(row[:6]), int(row[6]), "expired", None)


# ---- heists ----------------------------------------------------------------------------------


def _open_heist(conn: sqlite3.Connection, channel_id: int) -> tuple[int, int, int] | None:
    """(game round, escrow round, deadline ms) of the channel's heist lobby."""
    row = conn.execute(
        "SELECT g.id, g.round_id, r.deadline FROM game_rounds AS g"
        " JOIN escrow_rounds AS r ON r.id = g.round_id"
        " WHERE g.channel_id = ? AND g.game = 'heist' AND g.state = 'open'",
        (channel_id,),
    ).fetchone()
    return None if row is None else (int(row[0]), int(row[1]), int(row[2]))


def last_heist_at(conn: sqlite3.Connection, channel_id: int) -> int | None:
    """When the channel's last heist that ran ended (its cooldown runs from there)."""
    (at,) = conn.execute(
        "SELECT max(settled_at) FROM game_rounds WHERE channel_id = ? AND game = 'heist'"
        " AND state = 'settled'",
        (channel_id,),
    ).fetchone()
    return None if at is None else int(at)


def join_heist(tx: Tx, channel_id: int, viewer: Viewer, text: str, settings: GameSettings
               ) -> Joined:  # fmt: skip
    """Open the heist lobby, or join the open one.

    Raises:
        HeistCooldown, HeistStarting, InHeist, and the wager's refusals: nothing changes.
    """
    conn = tx.conn
    viewers.upsert(conn, channel_id, viewer, tx.now_ms)
    lobby = _open_heist(conn, channel_id)
    opened = lobby is None
    if lobby is None:
        last = last_heist_at(conn, channel_id)
        wait_ms = 0 if last is None else last + settings.heist_cooldown_seconds * 1000 - tx.now_ms
        if wait_ms > 0:
            raise HeistCooldown(wait_ms / 1000)
    else:
        if lobby[2] <= tx.now_ms:
            raise HeistStarting()
        held = escrow.stake_of(conn, lobby[1], viewer.user_id)
        if held is not None:
            raise InHeist(held.amount)
    amount, _ = _wager(conn, channel_id, viewer, text, settings)
    if lobby is None:
        deadline = tx.now_ms + round(settings.heist_join_seconds * 1000)
        round_ = escrow.open_round(tx, channel_id, HEIST, deadline_ms=deadline)
        number = _insert_round(tx, channel_id, "heist", viewer.user_id, settings=settings,
                               state="open", round_id=round_.id, players=0)  # fmt: skip
        lobby = (number, round_.id, deadline)
    number, round_id, deadline = lobby
    accepted = escrow.stake(tx, round_id, viewer, amount, kind=EntryType.HEIST_STAKE,
                            reason=f"heist #{number}", actor=viewer.login)  # fmt: skip
    conn.execute(
        "UPDATE game_rounds SET bet = bet + ?, players = players + 1 WHERE id = ?",
        (amount, number),
    )
    balance = accepted.change.balance if accepted.change is not None else 0
    return Joined(number, viewer.login, amount, balance, opened, accepted.round.entrants,
                  accepted.round.held, deadline)  # fmt: skip


def run_heist(tx: Tx, round_id: int) -> HeistResult | None:
    """The joining time is over: refund a short crew, or roll for each player and pay the
    survivors, in this one transaction (the timer; the start-up). The rules are those the
    heist was announced with, recorded when it opened. None: not open any more."""
    conn = tx.conn
    row = conn.execute(
        "SELECT id, channel_id, rules FROM game_rounds WHERE round_id = ? AND game = 'heist'"
        " AND state = 'open'",
        (round_id,),
    ).fetchone()
    if row is None:
        return None
    number, channel_id = int(row[0]), int(row[1])
    settings = rules.settings_from(json.loads(str(row[2])))
    entries = conn.execute(
        "SELECT user_id, amount FROM escrow_stakes WHERE round_id = ? ORDER BY seq", (round_id,)
    ).fetchall()
    logins = dict(conn.execute(
        "SELECT s.user_id, v.login FROM escrow_stakes AS s JOIN viewers AS v"
        " ON v.channel_id = s.channel_id AND v.user_id = s.user_id WHERE s.round_id = ?",
        (round_id,),
    ).fetchall())  # fmt: skip
    crew = [(str(user_id), int(amount)) for user_id, amount in entries]
    short = len(crew) < settings.heist_min_players
    rolls = [] if short else rules.heist_rolls(len(crew))
    outcome = rules.heist(crew, rolls, settings.heist_min_players,
                          settings.heist_success_percent, settings.heist_payout_multiplier)
    reason = f"heist #{number}"
    if not outcome.ran:
        done = escrow.refund(tx, round_id, kind=EntryType.HEIST_REFUND,
                             reason=f"{reason}: not enough players")  # fmt: skip
        state = "refunded"
    else:
        payouts = {p.user_id: p.returned for p in outcome.players if p.returned}
        done = escrow.settle(tx, round_id, payouts, kind=EntryType.HEIST_PAYOUT,
                             reason=f"{reason}: escaped")  # fmt: skip
        state = "settled"
    won = sum(max(p.delta, 0) for p in outcome.players) if outcome.ran else 0
    lost = sum(max(-p.delta, 0) for p in outcome.players) if outcome.ran else 0
    summary = (
        f"{outcome.survivors} of {len(crew)} escaped" if outcome.ran
        else f"{len(crew)} joined, {settings.heist_min_players} needed: refunded"
    )
    _finish_round(tx, number, state=state, bet=outcome.total_bet, returned=done.paid, won=won,
                  lost=lost, outcome=summary, players=len(crew))  # fmt: skip
    if outcome.ran:
        conn.executemany(
            "INSERT INTO game_rolls (game_round_id, seq, user_id, bet, roll, returned)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(number, seq, p.user_id, p.bet, str(p.roll), p.returned)
             for seq, p in enumerate(outcome.players, start=1)],
        )  # fmt: skip
    survivors = sorted(
        (p for p in outcome.players if p.survived),
        key=lambda p: (-p.returned, p.user_id),
    )
    return HeistResult(
        number, channel_id, outcome.ran, len(crew), settings.heist_min_players,
        settings.heist_success_percent,
        tuple(Haul(logins.get(p.user_id, p.user_id), p.bet, p.returned, p.roll)
              for p in survivors[:10]),
        outcome.caught, outcome.total_bet, done.paid,
        sum(p.bet for p in outcome.players if outcome.ran and not p.survived),
    )  # fmt: skip


# ---- reads -----------------------------------------------------------------------------------


def recent(conn: sqlite3.Connection, channel_id: int, limit: int, game: Game | None = None,
           round_id: int | None = None) -> list[RoundRow]:  # fmt: skip
    """The channel's latest rounds (of one game; or the one round ``round_id``)."""
    where: str = "AND g.game = ?" if game else ""
    args: tuple[object, ...] = (game,) if game else ()
    if round_id is not None:
        where, args = "AND g.id = ?", (round_id,)
    rows = conn.execute(
        "SELECT g.id, g.game, g.state, coalesce(v.login, g.user_id), t.login, g.bet,"
        " g.returned, g.players, g.outcome, g.created_at, g.settled_at"
        " FROM game_rounds AS g"
        " LEFT JOIN viewers AS v ON v.channel_id = g.channel_id AND v.user_id = g.user_id"
        " LEFT JOIN viewers AS t ON t.channel_id = g.channel_id AND t.user_id = g.target_id"
        f" WHERE g.channel_id = ? {where} ORDER BY g.id DESC LIMIT ?",
        (channel_id, *args, limit),
    ).fetchall()
    found = []
    for row in rows:
        rolls = tuple(
            roll for (roll,) in conn.execute(
                "SELECT roll FROM game_rolls WHERE game_round_id = ? ORDER BY seq LIMIT 5",
                (row[0],),
            )
        )  # fmt: skip
        found.append(RoundRow(*[*row, rolls]))
    return found


def rolls_of(conn: sqlite3.Connection, game_round_id: int, limit: int
             ) -> list[tuple[int, str, int, str, int]]:  # fmt: skip
    """(seq, login, bet, roll, returned) of a round, in order."""
    return [
        (seq, login, bet, roll, returned)
        for seq, login, bet, roll, returned in conn.execute(
            "SELECT r.seq, coalesce(v.login, r.user_id), r.bet, r.roll, r.returned"
            " FROM game_rolls AS r JOIN game_rounds AS g ON g.id = r.game_round_id"
            " LEFT JOIN viewers AS v ON v.channel_id = g.channel_id AND v.user_id = r.user_id"
            " WHERE r.game_round_id = ? ORDER BY r.seq LIMIT ?",
            (game_round_id, limit),
        )
    ]


def totals(conn: sqlite3.Connection, channel_id: int, since_ms: int
           ) -> dict[str, tuple[int, int, int]]:  # fmt: skip
    """game -> (rounds, points bet, points returned) of rounds played out from the UTC day
    of ``since_ms`` on (a heist short of players, a duel never accepted: not played)."""
    return {
        game: (int(rounds), int(bet), int(returned))
        for game, rounds, bet, returned in conn.execute(
            "SELECT game, sum(rounds), sum(bet), sum(returned) FROM game_daily"
            " WHERE channel_id = ? AND day >= ? GROUP BY game",
            (channel_id, since_ms // DAY_MS),
        )
    }


# ---- the service -----------------------------------------------------------------------------


class Games:
    """Every game action, as the chat commands, the dashboard and the timer use them."""

    def __init__(self, bank: Bank, store: Store, clock: Clock) -> None:
        self._bank = bank
        self._store = store
        self._clock = clock
        self._file: dict[str, GamesConfig | None] = {}
        self._settings: dict[str, GameSettings] = {}

    def now_ms(self) -> int:
        return to_ms(self._clock.now())

    # ---- settings --------------------------------------------------------------------------

    async def load_settings(self, file: Mapping[str, GamesConfig | None]) -> None:
        """The file's ``[channels.C.games]`` tables (start, reload) with the dashboard's."""
        self._file = dict(file)
        for channel in file:
            await self.refresh(channel)
        for channel in set(self._settings) - set(file):
            del self._settings[channel]

    async def refresh(self, channel: str) -> GameSettings:
        channel_id = self._bank.channel_id(channel)
        stored = await self._store.read(lambda c: stored_settings(c, channel_id))
        self._settings[channel] = merge(stored, self._file.get(channel))
        return self._settings[channel]

    def settings(self, channel: str) -> GameSettings:
        """The settings in force (kept in memory: chat reads them on every command)."""
        return self._settings.get(channel) or GamesConfig()

    def file_keys(self, channel: str) -> frozenset[str]:
        file = self._file.get(channel)
        return frozenset() if file is None else frozenset(file.model_fields_set)

    async def stored(self, channel: str) -> dict[str, Any]:
        channel_id = self._bank.channel_id(channel)
        return await self._store.read(lambda c: stored_settings(c, channel_id))

    async def save_settings(self, channel: str, changes: Mapping[str, Any], actor: str
                            ) -> GameSettings:  # fmt: skip
        """Store dashboard edits (already validated, none of the file's keys)."""
        channel_id = self._bank.channel_id(channel)
        owned = set(changes) & self.file_keys(channel)
        if owned:
            raise ValueError(f"set in config.toml: {sorted(owned)}")
        await self._store.write(lambda tx: save_settings(tx, channel_id, changes, actor))
        return await self.refresh(channel)

    # ---- playing ---------------------------------------------------------------------------

    def _check(self, channel: str, viewer: Viewer) -> int:
        if viewer.login in self._bank.excluded(channel):
            raise NotEligible(viewer.login)
        return self._bank.channel_id(channel)

    async def play(self, channel: str, viewer: Viewer, game: Literal["gamble", "slots"],
                   text: str) -> Played:  # fmt: skip
        channel_id = self._check(channel, viewer)
        settings = self.settings(channel)
        return await self._store.write(
            lambda tx: play(tx, channel_id, viewer, game, text, settings)
        )

    async def challenge(self, channel: str, viewer: Viewer, target: str, text: str
                        ) -> Challenge:  # fmt: skip
        channel_id = self._check(channel, viewer)
        settings = self.settings(channel)
        excluded = self._bank.excluded(channel)
        await self._bank.first_sight.settle()
        try:
            return await self._store.write(
                lambda tx: challenge(
                    tx, channel_id, channel, viewer, target, text, settings, excluded
                )
            )
        except UnknownViewer as exc:
            raise UnknownViewer(exc.login, channel) from None

    async def accept(self, channel: str, viewer: Viewer) -> DuelResult:
        channel_id = self._bank.channel_id(channel)
        return await self._store.write(lambda tx: accept(tx, channel_id, viewer))

    async def deny(self, channel: str, viewer: Viewer) -> DuelEnded:
        channel_id = self._bank.channel_id(channel)
        return await self._store.write(lambda tx: deny(tx, channel_id, viewer))

    async def heist(self, channel: str, viewer: Viewer, text: str) -> Joined:
        channel_id = self._check(channel, viewer)
        settings = self.settings(channel)
        return await self._store.write(
            lambda tx: join_heist(tx, channel_id, viewer, text, settings)
        )

    async def end_due(self) -> list[DuelEnded | HeistResult]:
        """Refund every expired duel and run every heist whose joining time is over, each
        in its own transaction (the timer; the start-up for what ran out while down)."""
        ended: list[DuelEnded | HeistResult] = []
        now = self.now_ms()
        for due in await self._store.read(lambda c: escrow.due(c, now)):
            done: DuelEnded | HeistResult | None
            if due.kind == DUEL:
                done = await self._store.write(partial(expire_duel, round_id=due.id))
            elif due.kind == HEIST:
                done = await self._store.write(partial(run_heist, round_id=due.id))
            else:
                continue
            if done is not None:
                ended.append(done)
        return ended

    async def next_deadline(self) -> int | None:
        """The earliest deadline of an open duel or heist (ms), if any."""

        def read(conn: sqlite3.Connection) -> int | None:
            times = [r.deadline_ms for kind in (DUEL, HEIST)
                     for r in escrow.open_rounds(conn, kind=kind) if r.deadline_ms is not None]
            return min(times, default=None)

        return await self._store.read(read)

    # ---- reads -----------------------------------------------------------------------------

    async def recent(self, channel: str, limit: int = RECENT, game: Game | None = None
                     ) -> list[RoundRow]:  # fmt: skip
        channel_id = self._bank.channel_id(channel)
        return await self._store.read(lambda c: recent(c, channel_id, limit, game))

    async def round(self, channel: str, game_round_id: int) -> RoundRow | None:
        channel_id = self._bank.channel_id(channel)
        found = await self._store.read(
            lambda c: recent(c, channel_id, 1, round_id=game_round_id)
        )
        return found[0] if found else None

    async def rolls(self, channel: str, game_round_id: int, limit: int = 200
                    ) -> list[tuple[int, str, int, str, int]] | None:  # fmt: skip
        channel_id = self._bank.channel_id(channel)

        def read(conn: sqlite3.Connection) -> list[tuple[int, str, int, str, int]] | None:
            row = conn.execute("SELECT channel_id FROM game_rounds WHERE id = ?",
                               (game_round_id,)).fetchone()  # fmt: skip
            if row is None or int(row[0]) != channel_id:
                return None
            return rolls_of(conn, game_round_id, limit)

        return await self._store.read(read)

    async def edges(self, channel: str, since_ms: int = 0) -> list[Edge]:
        """Each game's house edge by its settings beside the one its rounds realised."""
        channel_id = self._bank.channel_id(channel)
        played = await self._store.read(lambda c: totals(c, channel_id, since_ms))
        settings = self.settings(channel)
        return [
            Edge(game, game in settings.enabled, float(rules.house_edge(settings, game)),
                 *played.get(game, (0, 0, 0)))
            for game in rules.GAMES
        ]  # fmt: skip
