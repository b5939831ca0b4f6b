"""What the bot says about games: each roll stated in the reply, duels and heists in one or
a few lines, the joins of a busy heist in summary lines, and every refusal in one short
sentence. Pure functions of the service's results (and one summary timer)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import structlog

from loyaltybot.clock import Clock
from loyaltybot.features.games.rules import (
    BadPercent,
    CannotAfford,
    GameRefusal,
    GameSettings,
    HeistCooldown,
    HeistStarting,
    InDuel,
    InHeist,
    NoDuel,
    NotEligible,
    NothingToWager,
    OnCooldown,
    SelfDuel,
    SlotsOutcome,
    WagerTooLarge,
    WagerTooSmall,
)
from loyaltybot.features.games.service import (
    Challenge,
    DuelEnded,
    DuelResult,
    HeistResult,
    Joined,
    Played,
)
from loyaltybot.points.amounts import format_points
from loyaltybot.settings import ChannelSettings

log = structlog.get_logger(__name__)

MAX_LINE = 500
HEIST_LINES = 3  # a heist's result takes at most this many lines

Say = Callable[[str, str], Awaitable[bool]]


def _points(amount: int, settings: ChannelSettings) -> str:
    return f"{format_points(amount)} {settings.currency(amount)}"


def _seconds(seconds: float) -> str:
    seconds = max(1, round(seconds))
    if seconds < 120:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} min" if not rest else f"{minutes} min {rest} s"


def _times(value: float) -> str:
    return f"{value:g}×"


def pack(head: str, items: Iterable[str], tail: str = "", limit: int = MAX_LINE,
         lines: int = HEIST_LINES) -> list[str]:  # fmt: skip
    """``head``, the items and ``tail`` in at most ``lines`` chat lines; items that do not
    fit are counted (``… and 12 more``), never split."""
    items = list(items)
    out: list[str] = []
    line = head
    for i, item in enumerate(items):
        piece = item if line in (head, "… ") else ", " + item
        if len(line) + len(piece) + len(tail) + 20 > limit:
            if len(out) + 1 >= lines:
                line += f" … and {len(items) - i} more"
                break
            out.append(line)
            line = "… "
            piece = item
        line += piece
    out.append(line + tail)
    return [text[:limit] for text in out]


# ---- gamble and slots ---------------------------------------------------------------------


def played(result: Played, games: GameSettings, settings: ChannelSettings) -> str:
    """The reply to ``!gamble`` or ``!slots``: the roll, the outcome and the new balance."""
    now = f"you have {_points(result.balance, settings)}"
    if result.game == "gamble":
        rule = f"{games.gamble_win_at} or more wins"
        if result.outcome == "win":
            return (f"rolled {result.roll} ({rule}): you win {_points(result.delta, settings)}"
                    f" and {now}.")  # fmt: skip
        return (f"rolled {result.roll} ({rule}): you lose {_points(result.bet, settings)};"
                f" {now}.")  # fmt: skip
    reels = f"[ {' | '.join(result.roll.split())} ]"
    kind = result.detail.kind if isinstance(result.detail, SlotsOutcome) else "none"
    if kind == "triple":
        what = f"three alike! {_times(games.slots_triple_multiplier)} the bet"
    elif kind == "pair":
        what = f"a pair: {_times(games.slots_pair_multiplier)} the bet"
    else:
        what = "no match"
    if result.delta > 0:
        change = f"you win {_points(result.delta, settings)}"
    elif result.delta < 0:
        change = f"you lose {_points(-result.delta, settings)}"
    else:
        change = "your bet comes back"
    return f"{reels} {what}: {change}; {now}."


# ---- duels --------------------------------------------------------------------------------


def challenged(c: Challenge, settings: ChannelSettings, now_ms: int) -> str:
    return (
        f"@{c.target}, @{c.challenger} challenges you to a duel for"
        f" {_points(c.stake, settings)}! Type !accept or !deny within"
        f" {_seconds((c.deadline_ms - now_ms) / 1000)}."
    )


def dueled(d: DuelResult, settings: ChannelSettings) -> str:
    return (
        f"Duel #{d.round_id}: the coin flip went to the {d.flip}: @{d.winner} beats @{d.loser}"
        f" and takes {_points(2 * d.stake, settings)}!"
    )


def duel_ended(d: DuelEnded, settings: ChannelSettings) -> str:
    back = f"{_points(d.stake, settings)} back to @{d.challenger}"
    if d.why == "denied":
        return f"@{d.target} declined @{d.challenger}'s duel: {back}."
    if d.why == "withdrawn":
        return f"@{d.challenger} withdrew the duel with @{d.target}: {back}."
    return f"@{d.target} did not answer @{d.challenger}'s duel in time: {back}."


# ---- heists -------------------------------------------------------------------------------


def heist_opened(j: Joined, games: GameSettings, settings: ChannelSettings, now_ms: int) -> str:
    return (
        f"@{j.login} is planning heist #{j.round_id} with {_points(j.bet, settings)}! Type"
        f" !heist <amount> within {_seconds((j.deadline_ms - now_ms) / 1000)} to join (at least"
        f" {games.heist_min_players} players; each gets away with a"
        f" {games.heist_success_percent}% chance and {_times(games.heist_payout_multiplier)}"
        " the bet)."
    )


def heist_result(h: HeistResult, settings: ChannelSettings) -> list[str]:
    """One to three lines: who got away with what, and what the caught lost."""
    head = f"Heist #{h.round_id}: "
    if not h.ran:
        return [
            f"{head}only {h.players} joined, {h.min_players} needed: it is called off and every"
            f" bet is refunded ({_points(h.paid, settings)})."
        ]
    caught = (f" {h.caught} caught, {_points(h.lost, settings)} lost." if h.caught
              else " Nobody was caught.")  # fmt: skip
    if not h.survivors:
        return [f"{head}the whole crew of {h.players} was caught (rolls above"
                f" {h.success_percent}):{caught}"]  # fmt: skip
    escaped = (
        f"{head}{format_points(h.players - h.caught)} of {format_points(h.players)} got"
        f" away (rolls of {h.success_percent} or less) with {_points(h.paid, settings)}: "
    )
    hauls = [f"@{s.login} {format_points(s.returned)} (rolled {s.roll})" for s in h.survivors]
    return pack(escaped, hauls, "." + caught)


@dataclass
class _Pending:
    round_id: int
    joined: int = 0
    players: int = 0
    pot: int = 0
    deadline_ms: int = 0


class JoinSummary:
    """A busy heist's joins, acknowledged in one line per channel at most every ``every``
    seconds ("Heist #4: +25 joined; a crew of 40 with 6,200 cookies, leaving in 35 s")."""

    def __init__(self, say: Say, clock: Clock, settings_for: Callable[[str], ChannelSettings],
                 now_ms: Callable[[], int], *, first_after: float = 1.0,
                 every: float = 5.0) -> None:  # fmt: skip
        self._say = say
        self._clock = clock
        self._settings = settings_for
        self._now_ms = now_ms
        self._first_after = first_after
        self._every = every
        self._pending: dict[str, _Pending] = {}
        self._last_sent: dict[str, float] = {}
        self._timers: dict[str, asyncio.Task[None]] = {}
        self.lines = 0

    async def add(self, channel: str, joined: Joined) -> None:
        pending = self._pending.get(channel)
        if pending is None or pending.round_id != joined.round_id:
            pending = self._pending[channel] = _Pending(joined.round_id)
        pending.joined += 1
        pending.players = max(pending.players, joined.players)
        pending.pot = max(pending.pot, joined.pot)
        pending.deadline_ms = joined.deadline_ms
        if channel not in self._timers:
            now = self._clock.monotonic()
            due = max(now + self._first_after, self._last_sent.get(channel, -1e9) + self._every)
            self._timers[channel] = asyncio.create_task(
                self._later(channel, due - now), name=f"heist-summary-{channel}"
            )

    def drop(self, channel: str) -> None:
        """The heist ran: its joins need no summary any more."""
        self._pending.pop(channel, None)
        timer = self._timers.pop(channel, None)
        if timer is not None:
            timer.cancel()

    async def close(self) -> None:
        for channel in list(self._timers):
            timer = self._timers.pop(channel)
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer

    async def _later(self, channel: str, delay: float) -> None:
        try:
            await self._clock.sleep(max(0.0, delay))
        finally:
            if self._timers.get(channel) is asyncio.current_task():
                del self._timers[channel]
        pending = self._pending.pop(channel, None)
        if pending is None or not pending.joined:
            return
        left = (pending.deadline_ms - self._now_ms()) / 1000
        if left <= 0:
            return
        self._last_sent[channel] = self._clock.monotonic()
        self.lines += 1
        settings = self._settings(channel)
        try:
            await self._say(
                channel,
                f"Heist #{pending.round_id}: +{format_points(pending.joined)} joined; a crew of"
                f" {format_points(pending.players)} with {_points(pending.pot, settings)},"
                f" leaving in {_seconds(left)}. !heist <amount> to join.",
            )
        except Exception:
            log.exception("heist_summary_failed", channel=channel)


# ---- refusals -----------------------------------------------------------------------------


def explain(exc: GameRefusal, settings: ChannelSettings) -> str:
    match exc:
        case OnCooldown():
            return f"you can play {exc.game} again in {_seconds(exc.seconds)}."
        case CannotAfford():
            return (f"a bet of {_points(exc.amount, settings)} is more than you have"
                    f" ({_points(exc.balance, settings)}).")  # fmt: skip
        case WagerTooSmall():
            return f"the smallest bet is {_points(exc.minimum, settings)}."
        case WagerTooLarge():
            return f"the largest bet is {_points(exc.maximum, settings)}."
        case BadPercent():
            return "a percentage is from 1% to 100%, like 50%."
        case NothingToWager():
            return f"{exc.text} of {_points(exc.balance, settings)} is nothing to bet."
        case NotEligible():
            return f"{exc.login} cannot play games here (the broadcaster, the bot, ignored users)."
        case SelfDuel():
            return "you cannot duel yourself."
        case InDuel():
            if exc.yourself:
                return "you are in a duel already: answer it (!accept or !deny) or wait for it."
            return f"@{exc.login} is in a duel already."
        case NoDuel():
            return "you have no open duel to answer (or it ran out of time)."
        case InHeist():
            return f"you are in this heist already, with {_points(exc.bet, settings)}."
        case HeistCooldown():
            return f"the crew is lying low: the next heist can start in {_seconds(exc.seconds)}."
        case HeistStarting():
            return "the heist is leaving: too late to join this one."
        case _:
            return "that did not work."
