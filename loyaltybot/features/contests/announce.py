"""What the bot says in chat about contests, and the summary lines that acknowledge bursts.

Every announcement names the contest's number (``Contest #3 is open: …``). The sentences
are pure functions of the service's results; the dashboard's buttons announce with the
same words as the chat commands.

**Bursts** (SPEC §10.6). A contest on a big channel draws thousands of ``!bet`` in
seconds, and the bot may send at most 20 (or 100) lines per 30 s. So an accepted bet gets
no line of its own: ``BetSummary`` gathers them and says them in one line per channel,
the first a moment after the first bet and then at most one every ``every`` seconds while
bets keep coming ("Contest #3: +214 bets, pool 51,320 cookies (1: 30,000 · 2: 21,320)").
With three bettors or fewer it names them, so a viewer in a quiet channel sees their own
bet counted. Refusals are answered by ``!bet`` only while the send budget has room.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from loyaltybot.chat.summaries import Summaries
from loyaltybot.clock import Clock
from loyaltybot.features.contests.rules import (
    OPTION_MAX_CHARS,
    QUESTION_MAX_CHARS,
    BadLimits,
    BetTooLarge,
    BetTooSmall,
    CannotAfford,
    ContestClosed,
    ContestRefusal,
    DuplicateOption,
    EmptyPart,
    NoContest,
    NoSuchOption,
    NotEligible,
    PartTooLong,
    TooFewOptions,
    TooManyOptions,
    WrongOption,
    WrongState,
    format_odds,
    odds,
)
from loyaltybot.features.contests.service import Contest, Ended, Placed
from loyaltybot.points.amounts import format_points
from loyaltybot.settings import ChannelSettings

log = structlog.get_logger(__name__)

MAX_LINE = 500
NAMED_BETTORS = 3  # a summary names the bettors when there are at most this many
OPEN_USAGE = "!contest open <question> | <option 1> | <option 2> [| …]"

Say = Callable[[str, str], Awaitable[bool]]
"""(channel, text) -> queued? A line the bot says on its own, within the send limits."""


def _points(amount: int, settings: ChannelSettings) -> str:
    return f"{format_points(amount)} {settings.currency(amount)}"


def _n(count: int, word: str) -> str:
    return f"{format_points(count)} {word}{'' if count == 1 else 's'}"


def _seconds(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 120:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} min" if not rest else f"{minutes} min {rest} s"


def option_line(contest: Contest, *, with_pools: bool = True) -> str:
    """``1) Yes 12,300 (1:1.83) · 2) No 10,200 (1:2.21)``: each option, its pool and ratio."""
    ratios = odds(contest.pools)
    parts = []
    for option, ratio in zip(contest.options, ratios, strict=True):
        text = f"{option.number}) {option.text}"
        if with_pools:
            text += f" {format_points(option.pool)} ({format_odds(ratio)})"
        parts.append(text)
    return " · ".join(parts)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_LINE else text[: MAX_LINE - 1] + "…"


# ---- announcements ------------------------------------------------------------------------


def opened(contest: Contest, settings: ChannelSettings, now_ms: int) -> str:
    closes = ""
    if contest.closes_at is not None:
        closes = f"; bets close in {_seconds((contest.closes_at - now_ms) / 1000)}"
    choices = option_line(contest, with_pools=False)
    return _cut(
        f"Contest #{contest.id} is open: {contest.question} {choices}."
        f" Bet with !bet <option> <amount> ({format_points(contest.min_bet)} to"
        f" {_points(contest.max_bet, settings)} each{closes})."
    )


def closed(contest: Contest, settings: ChannelSettings) -> str:
    return _cut(
        f"Contest #{contest.id} is closed: no more bets. Pool {_points(contest.pool, settings)}"
        f" from {_n(contest.bettors, 'bettor')}: {option_line(contest)}."
    )


def ended(done: Ended, settings: ChannelSettings) -> str:
    c = done.contest
    back = f"{_points(done.paid, settings)} back to {_n(done.viewers, 'viewer')}"
    lost = (
        f" ({_points(done.lost, settings)} did not fit under a balance's maximum)"
        if done.lost else ""
    )
    if done.outcome == "canceled":
        if not done.paid:
            return f"Contest #{c.id} is canceled."
        return f"Contest #{c.id} is canceled: every bet refunded ({back}){lost}."
    winner = c.option(c.winner or 1)
    won = f"option {winner.number} ({winner.text}) wins"
    if done.outcome == "refunded":
        if not done.paid:
            return f"Contest #{c.id}: {won}; nobody bet, so nothing to pay."
        return f"Contest #{c.id}: {won}, but nobody bet on it: every bet refunded ({back}){lost}."
    best = ", ".join(f"@{p.login} {format_points(p.paid)}" for p in done.top)
    biggest = f"; biggest payout{'s' if len(done.top) > 1 else ''}: {best}" if best else ""
    return _cut(
        f"Contest #{c.id}: {won}! {_n(done.winners, 'winner')} share"
        f" {_points(done.paid, settings)}{biggest}{lost}."
    )


def status(contest: Contest | None, mine: tuple[int, int] | None, settings: ChannelSettings,
           now_ms: int) -> str:  # fmt: skip
    """``!contest``: the question, the options with pools and ratios, and the asker's bet."""
    if contest is None:
        return "no contest is running right now."
    c = contest
    if not c.running:
        if c.state == "canceled":
            return f"no contest is running; Contest #{c.id} was canceled."
        winner = c.option(c.winner or 1)
        return (
            f"no contest is running; Contest #{c.id} ({c.question}) was won by option"
            f" {winner.number} ({winner.text})."
        )[:MAX_LINE]
    if c.takes_bets(now_ms):
        when = "open"
        if c.closes_at is not None:
            when += f", closes in {_seconds((c.closes_at - now_ms) / 1000)}"
    else:
        when = "closed, the winner comes next"
    if mine is None:
        yours = "You have no bet." + (" !bet <option> <amount>" if c.takes_bets(now_ms) else "")
    else:
        option = c.option(mine[0])
        yours = f"Your bet: {_points(mine[1], settings)} on {option.number} ({option.text})."
    return _cut(
        f"Contest #{c.id} ({when}): {c.question} {option_line(c)}. Pool"
        f" {_points(c.pool, settings)}. {yours}"
    )


# ---- refusals -----------------------------------------------------------------------------


def explain(exc: ContestRefusal, settings: ChannelSettings) -> str:
    """A refused contest action in one short sentence (chat and the dashboard)."""
    match exc:
        case NoSuchOption():
            return f"there is no option {exc.number}: the options are 1 to {exc.count}."
        case WrongOption():
            return (
                f"you bet on option {exc.held} already: one option per viewer"
                f" (add to it with !bet {exc.held} <amount>)."
            )
        case BetTooSmall():
            return f"the smallest bet is {_points(exc.minimum, settings)}."
        case BetTooLarge():
            if exc.left == 0:
                return f"you bet the most allowed already ({_points(exc.maximum, settings)})."
            return (
                f"you can bet at most {_points(exc.left, settings)} more on this contest"
                f" ({format_points(exc.maximum)} in all)."
            )
        case CannotAfford():
            return (
                f"a bet of {_points(exc.amount, settings)} is more than you have"
                f" ({_points(exc.balance, settings)})."
            )
        case NoContest():
            return "no contest is running right now."
        case ContestClosed():
            return f"Contest #{exc.contest_id} is closed: it takes no more bets."
        case NotEligible():
            return "the broadcaster, the bot and ignored users cannot bet."
        case WrongState():
            if exc.action == "open":
                return (
                    f"Contest #{exc.contest_id} is still {exc.state}: pick its winner or"
                    " cancel it before opening another."
                )
            return f"Contest #{exc.contest_id} is {exc.state} already."
        case BadLimits():
            return (
                f"contest_min_bet ({format_points(exc.min_bet)}) is above contest_max_bet"
                f" ({format_points(exc.max_bet)}): fix the settings first."
            )
        case TooFewOptions() | TooManyOptions():
            return f"a contest has 2 to 10 options, {exc.count} given: {OPEN_USAGE}."
        case EmptyPart():
            part = "the question" if exc.index == 0 else f"option {exc.index}"
            return f"{part} is empty: {OPEN_USAGE}."
        case PartTooLong():
            if exc.index == 0:
                return f"the question is too long (at most {QUESTION_MAX_CHARS} characters)."
            return f"option {exc.index} is too long (at most {OPTION_MAX_CHARS} characters)."
        case DuplicateOption():
            return f"option {exc.index} is the same as option {exc.first}."
        case _:
            return "that did not work."


# ---- summaries ----------------------------------------------------------------------------


@dataclass
class _Pending:
    contest_id: int
    bets: int = 0
    points: int = 0
    # user id -> (login, option, their whole stake)
    bettors: dict[str, tuple[str, int, int]] = field(default_factory=dict)
    pool: int = 0
    total_bettors: int = 0


class BetSummary(Summaries[_Pending]):
    """Accepted bets, acknowledged in one line per channel at most every ``every`` s."""

    def __init__(
        self, say: Say, clock: Clock, settings_for: Callable[[str], ChannelSettings], *,
        first_after: float = 1.0, every: float = 5.0,
    ) -> None:  # fmt: skip
        super().__init__(
            say, clock, lambda channel, pending: summary_line(pending, settings_for(channel)),
            name="contest-summary", first_after=first_after, every=every,
        )

    async def add(self, channel: str, placed: Placed) -> None:
        pending = await self.pending(
            channel, placed.contest_id, lambda: _Pending(placed.contest_id)
        )
        pending.bets += 1
        pending.points += placed.amount
        pending.bettors[placed.user_id] = (placed.login, placed.option, placed.total)
        pending.pool = max(pending.pool, placed.pool)
        pending.total_bettors = max(pending.total_bettors, placed.bettors)


def summary_line(pending: _Pending, settings: ChannelSettings) -> str:
    head = f"Contest #{pending.contest_id}: "
    pool = f"pool {_points(pending.pool, settings)} from {_n(pending.total_bettors, 'bettor')}."
    if len(pending.bettors) <= NAMED_BETTORS:
        named = ", ".join(
            f"@{login} on {option} (holds {format_points(total)})"
            for login, option, total in pending.bettors.values()
        )
        return _cut(f"{head}{named}; {pool}")
    return (
        f"{head}+{_n(pending.bets, 'bet')} ({_points(pending.points, settings)}) from"
        f" {_n(len(pending.bettors), 'viewer')}; {pool}"
    )
