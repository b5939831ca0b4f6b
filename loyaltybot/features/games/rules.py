"""The rules of games: settings, wagers, and the outcome of each roll (SPEC §10.4).

Every outcome function takes its roll as an argument, so it is pure and the roll can
be recorded with the round; the roll functions (``roll_d100``, ``spin``, ``coin_flip``,
``heist_rolls``) are the only randomness, all from ``secrets``.

Amounts are what leaves or comes back to a balance: a game's ``returned`` is what the
round pays back (the stake was taken when the round began, SPEC §10.6), and ``delta``
is the net change (``returned - bet``). Multipliers are read as the decimal written in
the config (``1.7`` is exactly 17/10) and a return is ``floor(bet * multiplier)``, so
``floor(100 * 1.15)`` is 115, not the 114 binary floating point would give.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any, Literal

from pydantic import ValidationError

from loyaltybot.config import GAME_NAMES, GameName, GamesConfig, validation_problems
from loyaltybot.points.amounts import MAX_POINTS, parse_amount
from loyaltybot.points.errors import LoyaltyError

Game = GameName
GAMES: tuple[Game, ...] = GAME_NAMES
Side = Literal["challenger", "target"]


# ---- refusals ---------------------------------------------------------------------------


class GameRefusal(LoyaltyError):
    """A game request that is refused; the chat layer words it."""


class WagerTooSmall(GameRefusal):
    def __init__(self, amount: int, minimum: int) -> None:
        super().__init__(f"wager {amount} is below the minimum {minimum}")
        self.amount = amount
        self.minimum = minimum


class WagerTooLarge(GameRefusal):
    def __init__(self, amount: int, maximum: int) -> None:
        super().__init__(f"wager {amount} is over the maximum {maximum}")
        self.amount = amount
        self.maximum = maximum


class BadPercent(GameRefusal):
    """``N%`` with N not a whole number from 1 to 100."""

    def __init__(self, text: str) -> None:
        super().__init__(f"{text!r} is not a percentage from 1% to 100%")
        self.text = text


class NothingToWager(GameRefusal):
    """``all``, ``half`` or ``N%`` of the balance comes to 0 points."""

    def __init__(self, text: str, balance: int) -> None:
        super().__init__(f"{text!r} of a balance of {balance} is 0 points")
        self.text = text
        self.balance = balance


class CannotAfford(GameRefusal):
    """A wager (or a duel stake) of more points than the viewer has."""

    def __init__(self, amount: int, balance: int) -> None:
        super().__init__(f"wager {amount} but has {balance}")
        self.amount = amount
        self.balance = balance


class OnCooldown(GameRefusal):
    """The viewer played this game less than ``cooldown_seconds`` ago."""

    def __init__(self, game: str, seconds: float) -> None:
        super().__init__(f"{game} again in {seconds:.0f} s")
        self.game = game
        self.seconds = seconds


class NotEligible(GameRefusal):
    """The broadcaster, the bot and ignored users do not play (nor are challenged)."""

    def __init__(self, login: str) -> None:
        super().__init__(f"{login} may not play")
        self.login = login


class SelfDuel(GameRefusal):
    """``!duel`` naming oneself."""


class InDuel(GameRefusal):
    """``login`` (the challenger or the target) has an open duel already: one at a time."""

    def __init__(self, login: str, yourself: bool) -> None:
        super().__init__(f"{login} is in a duel already")
        self.login = login
        self.yourself = yourself


class NoDuel(GameRefusal):
    """``!accept`` or ``!deny`` with no open challenge to answer."""


class InHeist(GameRefusal):
    """The viewer joined the heist being planned already (one entry each)."""

    def __init__(self, bet: int) -> None:
        super().__init__(f"in the heist already with {bet}")
        self.bet = bet


class HeistCooldown(GameRefusal):
    """A heist ran less than ``heist_cooldown_seconds`` ago in this channel."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"next heist in {seconds:.0f} s")
        self.seconds = seconds


class HeistStarting(GameRefusal):
    """The heist's joining time is over; it runs in a moment and takes no one else."""


# ---- settings ---------------------------------------------------------------------------

GameSettings = GamesConfig
"""``[channels.<login>.games]``: the config's model is the one schema (SPEC §10.4's
defaults and valid ranges), so check-config, the dashboard and these rules agree."""

SETTING_KEYS = frozenset(GamesConfig.model_fields)


def settings_from(values: Mapping[str, Any], *, lax: bool = False) -> GameSettings:
    """The settings from a mapping (a TOML table; ``lax``: a form's strings).

    Raises:
        ValueError: the mapping has problems (:func:`validate_game_settings` names them).
    """
    try:
        return GamesConfig.model_validate(dict(values), strict=False if lax else None)
    except ValidationError as exc:
        problems = "; ".join(f"{p.key}: {p.message}" for p in validation_problems(exc))
        raise ValueError(problems) from None


def validate_game_settings(values: Mapping[str, Any], *, lax: bool = False
                           ) -> list[tuple[str, str]]:
    """Every problem in a games table, as ``(key, problem)``; empty when valid. Keys are
    relative to the table (``gamble_win_at``, ``slots_symbols[2]``), in check-config's
    words, because it is the same validation."""
    try:
        GamesConfig.model_validate(dict(values), strict=False if lax else None)
    except ValidationError as exc:
        return [(p.key, p.message) for p in validation_problems(exc)]
    return []


def exact(multiplier: float | int | Fraction | Decimal) -> Fraction:
    """A multiplier as the exact decimal it was written as: 1.7 -> 17/10."""
    if isinstance(multiplier, Fraction | int):
        return Fraction(multiplier)
    try:
        return Fraction(Decimal(str(multiplier)))
    except (InvalidOperation, ValueError, OverflowError):
        raise ValueError(f"not a finite number: {multiplier!r}") from None


def times(bet: int, multiplier: float | int | Fraction | Decimal) -> int:
    """``floor(bet * multiplier)``, exactly."""
    m = exact(multiplier)
    return bet * m.numerator // m.denominator


# ---- wagers -----------------------------------------------------------------------------


_PERCENT = re.compile(r"([0-9]+)%")


def parse_wager(text: str, balance: int) -> int:
    """A wager as typed: ``<amount>``, ``all``, ``half`` or ``N%`` of ``balance``.

    ``half`` and ``N%`` round down; keywords are case-insensitive. An explicit amount is
    only parsed (amount rules of SPEC §5); whether the balance covers it is decided in
    the transaction that takes it. Bet limits are :func:`check_bet`'s.

    Raises:
        InvalidAmount: not a keyword, a percentage or an amount (from ``parse_amount``).
        BadPercent: ``N%`` with N outside 1..100.
        NothingToWager: a keyword or percentage that comes to 0 points.
    """
    word = text.strip().casefold()
    if word == "all":
        wager = balance
    elif word == "half":
        wager = balance // 2
    elif word.endswith("%"):
        match = _PERCENT.fullmatch(word)
        if not match or not 1 <= int(match[1]) <= 100:
            raise BadPercent(text)
        wager = balance * int(match[1]) // 100
    else:
        return parse_amount(text)
    if wager <= 0:
        raise NothingToWager(text, balance)
    return wager


def check_bet(amount: int, min_bet: int, max_bet: int) -> int:
    """The wager, if it lies within ``min_bet..max_bet``.

    Raises:
        WagerTooSmall, WagerTooLarge.
    """
    if amount < min_bet:
        raise WagerTooSmall(amount, min_bet)
    if amount > max_bet:
        raise WagerTooLarge(amount, max_bet)
    return amount


# ---- gamble -----------------------------------------------------------------------------


@dataclass(frozen=True)
class GambleOutcome:
    """A gamble: ``roll`` (1..100) at or above ``win_at`` wins, and doubles the bet."""

    bet: int
    roll: int
    won: bool
    returned: int

    @property
    def delta(self) -> int:
        return self.returned - self.bet


def roll_d100() -> int:
    """1..100, uniformly, from the OS."""
    return secrets.randbelow(100) + 1


def gamble(amount: int, roll: int, win_at: int) -> GambleOutcome:
    """Decide a gamble from its roll.

    Raises:
        ValueError: a roll or ``win_at`` outside 1..100, or an amount below 1.
    """
    _check_bet_amount(amount)
    if not 1 <= roll <= 100 or not 1 <= win_at <= 100:
        raise ValueError("a roll and win_at are 1..100")
    won = roll >= win_at
    return GambleOutcome(amount, roll, won, 2 * amount if won else 0)


# ---- slots ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlotsOutcome:
    """Three symbols; ``kind`` says how many are alike; ``returned`` is what comes back."""

    bet: int
    symbols: tuple[str, str, str]
    kind: Literal["triple", "pair", "none"]
    returned: int

    @property
    def delta(self) -> int:
        return self.returned - self.bet


def spin(symbols: Sequence[str]) -> tuple[str, str, str]:
    """Three symbols, each chosen uniformly and independently, from the OS."""
    return (secrets.choice(symbols), secrets.choice(symbols), secrets.choice(symbols))


def slots(amount: int, symbols_drawn: Sequence[str], pair_multiplier: float | Fraction,
          triple_multiplier: float | Fraction) -> SlotsOutcome:
    """Decide a spin: a triple returns ``floor(bet * triple)``, a pair ``floor(bet * pair)``
    (any two of the three alike), else nothing.

    Raises:
        ValueError: not three symbols, an amount below 1, or a negative multiplier.
    """
    _check_bet_amount(amount)
    if len(symbols_drawn) != 3:
        raise ValueError("a spin is three symbols")
    if exact(pair_multiplier) < 0 or exact(triple_multiplier) < 0:
        raise ValueError("multipliers are >= 0")
    a, b, c = symbols_drawn
    distinct = len({a, b, c})
    if distinct == 1:
        return SlotsOutcome(amount, (a, b, c), "triple", times(amount, triple_multiplier))
    if distinct == 2:
        return SlotsOutcome(amount, (a, b, c), "pair", times(amount, pair_multiplier))
    return SlotsOutcome(amount, (a, b, c), "none", 0)


# ---- duel -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DuelOutcome:
    """The flip's ``winner`` takes both stakes (``pot``); the loser's stake is gone."""

    stake_each: int
    winner: Side

    @property
    def pot(self) -> int:
        return 2 * self.stake_each

    @property
    def loser(self) -> Side:
        return "target" if self.winner == "challenger" else "challenger"


def coin_flip() -> Side:
    """Which side of a duel wins, from the OS."""
    return "challenger" if secrets.randbelow(2) == 0 else "target"


def duel(stake_each: int, flip: Side) -> DuelOutcome:
    """Decide an accepted duel: both stakes are held; the flip's winner gets ``pot``.

    Raises:
        ValueError: a stake below 1 or a flip that is not a side.
    """
    _check_bet_amount(stake_each)
    if flip not in ("challenger", "target"):
        raise ValueError("a flip is 'challenger' or 'target'")
    return DuelOutcome(stake_each, flip)


# ---- heist ------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeistPlayer:
    """One crew member's result. ``roll`` is None when the heist did not run."""

    user_id: str
    bet: int
    roll: int | None
    survived: bool
    returned: int

    @property
    def delta(self) -> int:
        return self.returned - self.bet


@dataclass(frozen=True)
class HeistOutcome:
    """``ran`` False: fewer than ``heist_min_players`` joined and every bet is refunded
    (``returned`` = bet, nobody is paid). Otherwise survivors get ``floor(bet *
    multiplier)`` and the caught lose their bet."""

    ran: bool
    players: tuple[HeistPlayer, ...]
    survivors: int
    caught: int
    total_bet: int
    total_returned: int


def heist_rolls(n: int) -> list[int]:
    """One roll 1..100 per player, from the OS, in the order of the entries."""
    return [secrets.randbelow(100) + 1 for _ in range(n)]


def heist(entries: Sequence[tuple[str, int]], rolls: Sequence[int], min_players: int,
          success_percent: int, payout_multiplier: float | Fraction) -> HeistOutcome:
    """Decide a heist when joining closes. ``entries`` are ``(user_id, bet)`` in join order;
    ``rolls`` one per entry, same order (ignored, and may be empty, when the crew is
    short). A player survives when their roll is at most ``success_percent``.

    A crew short of ``min_players`` never runs (Firebot ran such heists). A survivor's
    payout is set by the multiplier, not shared from the crew's bets: it is house money,
    bounded by ``floor(bet * multiplier)`` per player.

    Raises:
        ValueError: a user twice, a bet below 1, a roll outside 1..100, or the number of
            rolls is not the number of entries for a heist that runs.
    """
    users = [user for user, _ in entries]
    if len(set(users)) != len(users):
        raise ValueError("a user joined the heist twice")
    for _, bet in entries:
        _check_bet_amount(bet)
    total_bet = sum(bet for _, bet in entries)
    if len(entries) < min_players:
        players = tuple(HeistPlayer(user, bet, None, False, bet) for user, bet in entries)
        return HeistOutcome(False, players, 0, 0, total_bet, total_bet)
    if len(rolls) != len(entries):
        raise ValueError("one roll per player")
    if rolls and (min(rolls) < 1 or max(rolls) > 100):
        raise ValueError("a roll is 1..100")
    m = exact(payout_multiplier)
    if m < 0:
        raise ValueError("the multiplier is >= 0")
    num, den = m.numerator, m.denominator
    players = tuple(
        HeistPlayer(user, bet, roll, True, bet * num // den) if roll <= success_percent
        else HeistPlayer(user, bet, roll, False, 0)
        for (user, bet), roll in zip(entries, rolls, strict=True)
    )
    survivors = sum(1 for p in players if p.survived)
    return HeistOutcome(True, players, survivors, len(players) - survivors, total_bet,
                        sum(p.returned for p in players))


def _check_bet_amount(amount: int) -> None:
    if type(amount) is not int or not 1 <= amount <= MAX_POINTS:
        raise ValueError(f"a bet is a whole number from 1 to {MAX_POINTS}")


# ---- the house edge ---------------------------------------------------------------------


def house_edge(settings: GameSettings, game: Game) -> Fraction:
    """The expected share of each bet the house keeps, by configuration (before the
    floors of payouts, which only ever add to it; negative: the viewers are favoured).

    gamble: a roll of ``win_at``..100 doubles the bet: ``1 - 2 * (101 - win_at) / 100``.
    slots: with k symbols, a triple has chance ``1/k^2`` and a pair (exactly two alike)
    ``3(k-1)/k^2``: ``1 - triple/k^2 - 3(k-1) pair/k^2``. duel: 0, a fair coin between
    viewers. heist: ``1 - success_percent/100 * payout_multiplier`` (a heist short of
    players refunds and keeps nothing).
    """
    if game == "gamble":
        return 1 - Fraction(2 * (101 - settings.gamble_win_at), 100)
    if game == "slots":
        k = len(settings.slots_symbols)
        back = (exact(settings.slots_triple_multiplier)
                + 3 * (k - 1) * exact(settings.slots_pair_multiplier)) / (k * k)
        return 1 - back
    if game == "duel":
        return Fraction(0)
    if game == "heist":
        return 1 - Fraction(settings.heist_success_percent, 100) * exact(
            settings.heist_payout_multiplier)
    raise ValueError(f"unknown game {game!r}")
