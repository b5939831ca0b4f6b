"""The rules of contests: opening one, accepting bets, odds, and the exact settlement.

Pure functions over integers (SPEC §10.3). The pool is shared parimutuel-style: the
house takes nothing and adds nothing, so the payouts of a settled contest add up to the
pool exactly, to the point, and no winner ever gets back less than their stake.

Settlement. With winning pool W (every stake on the winning option) and losing pool L
(every other stake), a winner who staked s gets ``s + floor(L * s / W)``. The floors
leave ``L - sum(floor(L * s / W))`` points over (fewer than the number of winners);
they go one each to the winners with the largest remainders ``(L * s) mod W``; equal
remainders go first to the viewer whose first bet came earliest (the smallest
``first_at``), and then, if those are equal too, by user id (shorter first, then by
characters). Nobody on the winning option, or a cancel: every stake comes back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from operator import itemgetter
from typing import Literal, NamedTuple

from loyaltybot.points.errors import LoyaltyError

MIN_OPTIONS = 2
MAX_OPTIONS = 10
QUESTION_MAX_CHARS = 200
OPTION_MAX_CHARS = 50


# ---- refusals ---------------------------------------------------------------------------


class ContestRefusal(LoyaltyError):
    """A contest request that is refused; the chat layer words it."""


class NoSuchOption(ContestRefusal):
    """``!bet n`` names an option the contest does not have (options are 1..count)."""

    def __init__(self, number: int, count: int) -> None:
        super().__init__(f"no option {number}; options are 1..{count}")
        self.number = number
        self.count = count


class WrongOption(ContestRefusal):
    """The viewer already bet on another option: one option per viewer."""

    def __init__(self, chosen: int, held: int) -> None:
        super().__init__(f"bet on option {chosen}, but already holds a bet on {held}")
        self.chosen = chosen
        self.held = held


class BetTooSmall(ContestRefusal):
    """A first bet below ``contest_min_bet``."""

    def __init__(self, amount: int, minimum: int) -> None:
        super().__init__(f"bet {amount} is below the minimum {minimum}")
        self.amount = amount
        self.minimum = minimum


class BetTooLarge(ContestRefusal):
    """A bet that takes the viewer's total past ``contest_max_bet``; ``left`` is what fits."""

    def __init__(self, total: int, maximum: int, held: int = 0) -> None:
        super().__init__(f"total bet {total} is over the maximum {maximum}")
        self.total = total
        self.maximum = maximum
        self.held = held

    @property
    def left(self) -> int:
        return max(0, self.maximum - self.held)


class NoContest(ContestRefusal):
    """Nothing runs in the channel (no contest open or waiting for its winner)."""


class ContestClosed(ContestRefusal):
    """A bet on a contest that takes no more bets (closed by a mod or by its timer)."""

    def __init__(self, contest_id: int) -> None:
        super().__init__(f"contest {contest_id} takes no more bets")
        self.contest_id = contest_id


class WrongState(ContestRefusal):
    """A moderator's ``action`` that the contest's ``state`` does not allow: opening while
    one runs, closing a closed one."""

    def __init__(self, contest_id: int, state: str, action: str) -> None:
        super().__init__(f"contest {contest_id} is {state}: cannot {action}")
        self.contest_id = contest_id
        self.state = state
        self.action = action


class CannotAfford(ContestRefusal):
    """A bet of more points than the viewer has."""

    def __init__(self, amount: int, balance: int) -> None:
        super().__init__(f"bet {amount} but has {balance}")
        self.amount = amount
        self.balance = balance


class NotEligible(ContestRefusal):
    """The broadcaster, the bot and ignored users do not bet (they earn nothing either)."""

    def __init__(self, login: str) -> None:
        super().__init__(f"{login} may not bet")
        self.login = login


class BadLimits(ContestRefusal):
    """The channel's ``contest_min_bet`` is above its ``contest_max_bet``: no bet could
    be accepted, so no contest opens until the settings are fixed."""

    def __init__(self, min_bet: int, max_bet: int) -> None:
        super().__init__(f"contest_min_bet {min_bet} is above contest_max_bet {max_bet}")
        self.min_bet = min_bet
        self.max_bet = max_bet


class BadContest(ContestRefusal):
    """``!contest open`` text that does not make a contest."""


class TooFewOptions(BadContest):
    def __init__(self, count: int, minimum: int = MIN_OPTIONS) -> None:
        super().__init__(f"{count} options; at least {minimum} needed")
        self.count = count
        self.minimum = minimum


class TooManyOptions(BadContest):
    def __init__(self, count: int, maximum: int = MAX_OPTIONS) -> None:
        super().__init__(f"{count} options; at most {maximum} allowed")
        self.count = count
        self.maximum = maximum


class EmptyPart(BadContest):
    """An empty question (``index`` 0) or option (``index`` = its number)."""

    def __init__(self, index: int) -> None:
        super().__init__("empty question" if index == 0 else f"option {index} is empty")
        self.index = index


class PartTooLong(BadContest):
    """A question (``index`` 0) or option (``index`` = its number) over its length limit."""

    def __init__(self, index: int, length: int, maximum: int) -> None:
        super().__init__(f"part {index} has {length} characters; at most {maximum}")
        self.index = index
        self.length = length
        self.maximum = maximum


class DuplicateOption(BadContest):
    """Option ``index`` repeats option ``first`` (compared case-insensitively)."""

    def __init__(self, index: int, first: int) -> None:
        super().__init__(f"option {index} is the same as option {first}")
        self.index = index
        self.first = first


# ---- opening ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ContestSpec:
    """A question and its options; option n (1-based, as viewers type it) is options[n-1]."""

    question: str
    options: tuple[str, ...]


def parse_contest(text: str) -> ContestSpec:
    """Read ``<question> | <option 1> | <option 2> [| ...]`` (what follows ``!contest open``).

    Parts are trimmed; the question and each option must be non-empty and at most
    QUESTION_MAX_CHARS / OPTION_MAX_CHARS long; 2 to 10 options, no two alike
    (case-insensitively, so ``!bet`` replies and the overlay are never ambiguous).

    Raises:
        EmptyPart, PartTooLong, TooFewOptions, TooManyOptions, DuplicateOption.
    """
    parts = [part.strip() for part in text.split("|")]
    question, options = parts[0], parts[1:]
    if not question:
        raise EmptyPart(0)
    if len(question) > QUESTION_MAX_CHARS:
        raise PartTooLong(0, len(question), QUESTION_MAX_CHARS)
    if len(options) < MIN_OPTIONS:
        raise TooFewOptions(len(options))
    if len(options) > MAX_OPTIONS:
        raise TooManyOptions(len(options))
    seen: dict[str, int] = {}
    for number, option in enumerate(options, start=1):
        if not option:
            raise EmptyPart(number)
        if len(option) > OPTION_MAX_CHARS:
            raise PartTooLong(number, len(option), OPTION_MAX_CHARS)
        folded = option.casefold()
        if folded in seen:
            raise DuplicateOption(number, seen[folded])
        seen[folded] = number
    return ContestSpec(question, tuple(options))


# ---- betting ----------------------------------------------------------------------------


def check_bet(option: int, amount: int, *, option_count: int, held_option: int | None,
              held_amount: int, min_bet: int, max_bet: int) -> int:
    """Decide a ``!bet <option> <amount>``; returns the viewer's new total stake.

    One option per viewer; a bet on the option already held adds to it. The minimum
    applies to the stake a viewer holds, so a first bet must reach it and top-ups of any
    size are fine; the maximum applies to the total. Checks, in order: the option
    exists, it is the one held, the minimum, the maximum.

    Raises:
        NoSuchOption, WrongOption, BetTooSmall, BetTooLarge.
        ValueError: ``amount`` below 1 (amounts are parsed before this).
    """
    if amount < 1:
        raise ValueError("amount must be >= 1")
    if not 1 <= option <= option_count:
        raise NoSuchOption(option, option_count)
    if held_option is not None and held_option != option:
        raise WrongOption(option, held_option)
    held = held_amount if held_option is not None else 0
    total = held + amount
    if total < min_bet:
        raise BetTooSmall(amount, min_bet)
    if total > max_bet:
        raise BetTooLarge(total, max_bet, held)
    return total


def odds(pools: Sequence[int]) -> tuple[Fraction | None, ...]:
    """What one point on each option would bring back if it won now (stake included).

    For option i: (sum of all pools) / pool_i, exact, before the floors of settlement.
    An option nobody has backed yet has no ratio (``None``): its first bettor would take
    the whole losing pool, however small their stake.
    """
    total = sum(pools)
    return tuple(Fraction(total, pool) if pool > 0 else None for pool in pools)


def format_odds(ratio: Fraction | None) -> str:
    """``1:2.35`` (hundredths, rounded down so a ratio is never overstated); ``-`` for none."""
    if ratio is None:
        return "-"
    hundredths = ratio.numerator * 100 // ratio.denominator
    return f"1:{hundredths // 100}.{hundredths % 100:02d}"


# ---- settling ---------------------------------------------------------------------------


class Bet(NamedTuple):
    """One accepted bet. ``first_at`` orders viewers by their first bet: a sequence
    number or a timestamp (any integers that compare); for a viewer with several bet
    rows the smallest counts."""

    user_id: str
    option: int
    amount: int
    first_at: int


@dataclass(frozen=True)
class Settlement:
    """How a contest's pool goes back to the viewers, ready to record.

    ``outcome`` ``paid``: ``payouts`` holds every winner's payout (stake + share), the
    losers get nothing back. ``refunded`` (nobody backed the winner, or a cancel):
    ``refunds`` holds every stake. ``stakes`` is each viewer's total stake;
    ``extra_points`` how many points the largest remainders received.
    """

    outcome: Literal["paid", "refunded"]
    winning_option: int | None
    winning_pool: int
    losing_pool: int
    stakes: Mapping[str, int]
    payouts: Mapping[str, int] = field(default_factory=dict)
    refunds: Mapping[str, int] = field(default_factory=dict)
    extra_points: int = 0

    @property
    def pool(self) -> int:
        return self.winning_pool + self.losing_pool

    @property
    def paid_out(self) -> int:
        """Everything returned; always equal to ``pool``."""
        return sum(self.payouts.values()) + sum(self.refunds.values())


def settle(bets: Iterable[Bet | tuple[str, int, int, int]], winning_option: int) -> Settlement:
    """Settle a contest whose ``winning_option`` came true (see the module docstring).

    Raises:
        ValueError: a viewer on two options, or an amount below 1 (the bets break the
            acceptance rules: settle nothing rather than guess).
    """
    stakes, options, first_at = _gather(bets)
    winners = [user for user, option in options.items() if option == winning_option]
    total = sum(stakes.values())
    winning_pool = sum(stakes[user] for user in winners)
    losing_pool = total - winning_pool
    if winning_pool == 0:
        return Settlement("refunded", winning_option, 0, losing_pool, stakes,
                          refunds=dict(stakes))
    scaled = [losing_pool * stakes[user] for user in winners]
    shares = [value // winning_pool for value in scaled]
    payouts = {user: stakes[user] + share for user, share in zip(winners, shares, strict=True)}
    extra = losing_pool - sum(shares)
    if extra:
        for user in _largest_remainders(winners, scaled, winning_pool, first_at, extra):
            payouts[user] += 1
    return Settlement("paid", winning_option, winning_pool, losing_pool, stakes,
                      payouts=payouts, extra_points=extra)


def refund_all(bets: Iterable[Bet | tuple[str, int, int, int]]) -> Settlement:
    """A cancelled contest: every stake back.

    Raises:
        ValueError: as for :func:`settle`.
    """
    stakes, _options, _first = _gather(bets)
    return Settlement("refunded", None, 0, sum(stakes.values()), stakes, refunds=dict(stakes))


def _largest_remainders(winners: list[str], scaled: list[int], winning_pool: int,
                        first_at: Mapping[str, int], count: int) -> list[str]:
    """The ``count`` winners with the largest ``scaled mod winning_pool``, ties broken by
    first bet then user id. Sorting plain remainders finds the cut; only the winners tied
    at the cut are ranked by the full key (cheaper than sorting tuples for everyone)."""
    remainders = [value % winning_pool for value in scaled]
    cut = sorted(remainders, reverse=True)[count - 1]  # count < winners with a remainder
    above = [user for user, r in zip(winners, remainders, strict=True) if r > cut]
    tied = [user for user, r in zip(winners, remainders, strict=True) if r == cut]
    tied.sort(key=lambda user: (first_at[user], len(user), user))
    return above + tied[: count - len(above)]


def _gather(bets: Iterable[Bet | tuple[str, int, int, int]]
            ) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """Per viewer: total stake, option, first bet.

    The usual input has one row per viewer (the service keeps totals), which is built
    with C-level zips; several rows for one viewer take the slower, general loop.
    """
    rows = list(bets)
    if not rows:
        return {}, {}, {}
    if set(map(len, rows)) != {4}:
        raise ValueError("each bet must be (user_id, option, amount, first_at)")
    users, options, amounts, first = (list(map(itemgetter(i), rows)) for i in range(4))
    if not set(map(type, amounts)) <= {int} or min(amounts) < 1:
        raise ValueError("bet amounts must be whole numbers >= 1")
    stakes = dict(zip(users, amounts, strict=True))
    if len(stakes) == len(rows):
        return (stakes, dict(zip(users, options, strict=True)),
                dict(zip(users, first, strict=True)))
    stakes = {}
    held: dict[str, int] = {}
    first_at: dict[str, int] = {}
    for user, option, amount, at in rows:
        if user not in held:
            held[user] = option
            stakes[user] = amount
            first_at[user] = at
            continue
        if held[user] != option:
            raise ValueError(f"{user} has bets on options {held[user]} and {option}")
        stakes[user] += amount
        first_at[user] = min(first_at[user], at)
    return stakes, held, first_at
